/**
 * Who may decide a gate or resolve a run: the pure checks behind the `decide`
 * Update's validator and the approve/reject/resolve signal handlers.
 */
import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { verifyApproval } from '../../../contract/approvals';
import { rawPublicKey, signApproval } from '../../../lib/approval-keys';
import type { GateStatus, RunContext } from '../../../contract/runbook';
import { ROLE_SETS } from '../../../contract/runbook';
import { refuseDecision, refuseOperator, refuseResolve } from '../../../workflows/kernel/decisions';

const context: RunContext = {
  initiator: 'alice',
  detectedAt: '2026-11-23T03:00:00.000Z',
  drill: false,
  people: {
    alice: ['commander'],
    bob: ['approver'],
    carol: ['commander', 'approver'],
    dave: ['viewer'],
    erin: ['admin'],
    frank: [],
  },
};

function gate(overrides: Partial<GateStatus> = {}): GateStatus {
  return {
    id: 'promote',
    title: 'Approve promotion (point of no return)',
    state: 'waiting',
    nonce: 'n-2',
    openedAt: '2026-11-23T03:02:00.000Z',
    approvers: ['bob', 'carol'],
    required: 1,
    approvals: [],
    ...overrides,
  };
}

const gates: GateStatus[] = [gate(), gate({ id: 'failback', title: 'Approve failback', state: 'pending', nonce: undefined })];

const approval = { gate: 'promote', approver: 'bob', decision: 'approve', comment: 'lag 0, go' } as const;

/** refuseDecision for `approval` with `changes` applied (a key set to undefined is removed). */
function decide(changes: Record<string, unknown> = {}, on: readonly GateStatus[] = gates, ctx: RunContext = context): string | undefined {
  const request: Record<string, unknown> = { ...approval, ...changes };
  for (const key of Object.keys(request)) if (request[key] === undefined) delete request[key];
  return refuseDecision(request, on, ctx);
}

describe('refuseDecision', () => {
  it('accepts an approval by a configured approver who is not the initiator', () => {
    expect(decide()).toBeUndefined();
  });

  it('accepts an approval without a comment, a decision field (signals) or a nonce', () => {
    expect(decide({ comment: undefined, decision: undefined, nonce: undefined })).toBeUndefined();
  });

  it('accepts the current nonce and a rejection with a reason', () => {
    expect(decide({ nonce: 'n-2' })).toBeUndefined();
    expect(decide({ decision: 'reject', comment: 'east is back' })).toBeUndefined();
  });

  it('accepts a comment of exactly 2000 characters', () => {
    expect(decide({ comment: 'x'.repeat(2000) })).toBeUndefined();
  });

  describe('refuses a malformed payload', () => {
    it.each([undefined, null, 'approve', 42])('%j is not an object', (payload) => {
      expect(refuseDecision(payload, gates, context)).toBe('a decision must be an object {gate, approver, comment?, nonce?}');
    });

    it('a missing or empty gate', () => {
      const message = 'a decision must name the gate (string field "gate")';
      expect(decide({ gate: undefined })).toBe(message);
      expect(decide({ gate: '' })).toBe(message);
      expect(decide({ gate: 7 })).toBe(message);
    });

    it('a missing or empty approver', () => {
      const message = 'a decision must name the approver (string field "approver")';
      expect(decide({ approver: undefined })).toBe(message);
      expect(decide({ approver: '' })).toBe(message);
    });

    it('a comment that is not a string', () => {
      expect(decide({ comment: { text: 'go' } })).toBe('the comment must be a string');
    });

    it('a comment over 2000 characters', () => {
      expect(decide({ comment: 'x'.repeat(2001) })).toBe('the comment is longer than 2000 characters');
    });

    it('a nonce that is not a string', () => {
      expect(decide({ nonce: 2 })).toBe('the nonce must be a string');
    });

    it('a decision other than approve or reject', () => {
      expect(decide({ decision: 'maybe' })).toBe('decision must be "approve" or "reject", not "maybe"');
      expect(decide({ decision: true })).toBe('decision must be "approve" or "reject", not true');
    });
  });

  describe('refuses by the gate', () => {
    it('an unknown gate, listing the gates', () => {
      expect(decide({ gate: 'fence' })).toBe("unknown gate 'fence': this runbook's gates are promote, failback");
    });

    it('a gate already approved (a duplicate approval), saying by whom and when', () => {
      const approved = [gate({ state: 'approved', decidedBy: 'bob', decidedAt: '2026-11-23T03:05:00.000Z' })];
      expect(decide({}, approved)).toBe("gate 'promote' is not waiting for a decision (it is approved by bob at 2026-11-23T03:05:00.000Z)");
    });

    it('a gate not open yet, or timed out without a decider', () => {
      expect(decide({ gate: 'failback' })).toBe("gate 'failback' is not waiting for a decision (it is pending)");
      expect(decide({}, [gate({ state: 'timed-out' })])).toBe("gate 'promote' is not waiting for a decision (it is timed-out)");
    });

    it('a decision for an earlier opening (stale nonce)', () => {
      expect(decide({ nonce: 'n-1' })).toBe("the decision is for an earlier opening of gate 'promote' (nonce n-1; the current one is n-2)");
    });

    it('a nonce when the gate has none', () => {
      expect(decide({ nonce: 'n-1' }, [gate({ nonce: undefined })])).toBe(
        "the decision is for an earlier opening of gate 'promote' (nonce n-1; the current one is none)",
      );
    });
  });

  describe('refuses by the person', () => {
    it('a person not in the config', () => {
      expect(decide({ approver: 'mallory' })).toBe("'mallory' is not a configured person: add them under people: in the config");
    });

    it('a person without the approver role, listing their roles', () => {
      expect(decide({ approver: 'dave' })).toBe("'dave' does not have the approver role (roles: viewer)");
      expect(decide({ approver: 'erin' })).toBe("'erin' does not have the approver role (roles: admin)");
      expect(decide({ approver: 'frank' })).toBe("'frank' does not have the approver role (roles: none)");
    });

    it('the initiator deciding their own run (separation of duties), even with the approver role', () => {
      const byCarol: RunContext = { ...context, initiator: 'carol' };
      expect(decide({ approver: 'carol' }, gates, byCarol)).toBe(
        "'carol' started this run and may not decide its gates (separation of duties)",
      );
      expect(decide({ approver: 'bob' }, gates, byCarol)).toBeUndefined();
    });

    // Regression: people were looked up with `context.people[name]`, so a name that is an
    // Object.prototype member resolves to a function/object and `.includes` throws.
    // In the approve/reject signal handlers that TypeError fails the workflow task
    // instead of recording a refused decision.
    it.each(['constructor', 'toString', '__proto__'])('a person named %s, refused rather than thrown', (name) => {
      expect(decide({ approver: name })).toBe(`'${name}' is not a configured person: add them under people: in the config`);
    });
  });

  it('refuses a rejection without a reason', () => {
    const message = 'a rejection needs a reason (comment)';
    expect(decide({ decision: 'reject', comment: undefined })).toBe(message);
    expect(decide({ decision: 'reject', comment: '   ' })).toBe(message);
  });
});

describe('refuseOperator', () => {
  it('lets the commander and admin roles act', () => {
    expect(ROLE_SETS.operate).toEqual(['commander', 'admin']);
    expect(refuseOperator('alice', context, 'cancel a run')).toBeUndefined();
    expect(refuseOperator('erin', context, 'cancel a run')).toBeUndefined();
    expect(refuseOperator('carol', context, 'cancel a run')).toBeUndefined();
  });

  it('refuses a viewer or an approver, listing their roles', () => {
    expect(refuseOperator('dave', context, 'cancel a run')).toBe("'dave' may not cancel a run (needs the commander or admin role; has viewer)");
    expect(refuseOperator('bob', context, 'resolve a run')).toBe("'bob' may not resolve a run (needs the commander or admin role; has approver)");
    expect(refuseOperator('frank', context, 'cancel a run')).toBe("'frank' may not cancel a run (needs the commander or admin role; has none)");
  });

  it('refuses an unknown person', () => {
    expect(refuseOperator('mallory', context, 'cancel a run')).toBe("'mallory' is not a configured person: add them under people: in the config");
  });

  it('refuses a missing name', () => {
    expect(refuseOperator(undefined, context, 'cancel a run')).toBe('cancel a run must name who does it');
    expect(refuseOperator('', context, 'cancel a run')).toBe('cancel a run must name who does it');
  });

  // Regression: same Object.prototype lookup as refuseDecision; `.some` throws a TypeError.
  it('refuses a person named toString rather than throwing', () => {
    expect(refuseOperator('toString', context, 'cancel a run')).toBe("'toString' is not a configured person: add them under people: in the config");
  });
});

describe('refuseResolve', () => {
  const resolution = { by: 'alice', action: 'retry', comment: 'primary reachable again' } as const;
  const resolve = (changes: Record<string, unknown> = {}, needsAttention = true) =>
    refuseResolve({ ...resolution, ...changes }, context, needsAttention);

  it('accepts a retry or done-by-hand by an operator while the run needs attention', () => {
    expect(resolve()).toBeUndefined();
    expect(resolve({ by: 'erin', action: 'done-by-hand', comment: 'unfenced east by hand' })).toBeUndefined();
  });

  it('refuses when the run is not in needs-attention', () => {
    expect(resolve({}, false)).toBe('the run is not waiting for a resolution (it is not in needs-attention)');
  });

  it('refuses an unknown action', () => {
    expect(resolve({ action: 'undo' })).toBe('action must be "retry" or "done-by-hand"');
  });

  it('refuses an empty, blank or missing comment', () => {
    const message = 'a resolution needs a comment saying what was done';
    expect(resolve({ comment: '' })).toBe(message);
    expect(resolve({ comment: ' \n ' })).toBe(message);
    expect(resolve({ comment: undefined })).toBe(message);
  });

  it('refuses a comment over 2000 characters', () => {
    expect(resolve({ comment: 'x'.repeat(2001) })).toBe('the comment is longer than 2000 characters');
  });

  it('refuses a person without an operator role', () => {
    expect(resolve({ by: 'dave' })).toBe("'dave' may not resolve a run (needs the commander or admin role; has viewer)");
    expect(resolve({ by: undefined })).toBe('resolve a run must name who does it');
  });

  it('refuses a payload that is not an object', () => {
    expect(refuseResolve('retry', context, true)).toBe('a resolution must be an object {by, comment, action}');
    expect(refuseResolve(null, context, true)).toBe('a resolution must be an object {by, comment, action}');
  });
});

describe('two-person gates', () => {
  it('refuses a second approval by the same person, accepts a different approver', () => {
    const twoPerson = [gate({ required: 2, approvals: [{ by: 'bob', at: '2026-11-23T03:03:00.000Z' }] })];
    expect(refuseDecision({ gate: 'promote', approver: 'bob', decision: 'approve' }, twoPerson, context)).toBe(
      "'bob' already approved gate 'promote': a two-person gate needs a second, different approver",
    );
    expect(refuseDecision({ gate: 'promote', approver: 'carol', decision: 'approve' }, twoPerson, { ...context, initiator: 'alice' })).toBeUndefined();
    // The first approver may still reject (with a reason).
    expect(refuseDecision({ gate: 'promote', approver: 'bob', decision: 'reject', comment: 'changed my mind' }, twoPerson, context)).toBeUndefined();
  });
});

describe('signed decisions (Ed25519, verified in the workflow)', () => {
  const bobKey = generateKeyPairSync('ed25519').privateKey;
  const malloryKey = generateKeyPairSync('ed25519').privateKey;
  const signed: RunContext = { ...context, approvalKeys: { bob: rawPublicKey(bobKey) }, signatures: 'required' };
  const RUN = 'db-promotion:orders';
  const fields = { workflowId: RUN, gate: 'promote', nonce: 'n-2', decision: 'approve' as const, approver: 'bob', comment: 'lag 0, go' };
  const check = (changes: Record<string, unknown>, ctx: RunContext = signed, workflowId = RUN) => {
    const request: Record<string, unknown> = { ...approval, ...changes };
    return refuseDecision(request, gates, ctx, { workflowId });
  };

  it("accepts bob's signature of exactly this decision, with or without the nonce field", () => {
    const signature = signApproval(bobKey, fields);
    expect(check({ signature })).toBeUndefined();
    expect(check({ signature, nonce: 'n-2' })).toBeUndefined();
    expect(verifyApproval(fields, signature, rawPublicKey(bobKey))).toBe(true);
  });

  it('refuses a missing signature when signatures are required, and accepts it when optional', () => {
    expect(check({})).toBe("gate decisions on this run must be signed (approvals.signatures: required): sign with 'lifeboat approve --key <file>'");
    expect(check({}, { ...signed, signatures: 'optional' })).toBeUndefined();
  });

  it('refuses a signature by another key, for another run, another gate opening, another decision, or an altered comment', () => {
    const because = "the signature is not bob's signature of this decision (run db-promotion:orders, gate promote, opening n-2): signed with another key, for another run or gate opening, or altered";
    expect(check({ signature: signApproval(malloryKey, fields) })).toBe(because);
    expect(check({ signature: signApproval(bobKey, { ...fields, workflowId: 'db-promotion:users' }) })).toBe(because);
    expect(check({ signature: signApproval(bobKey, { ...fields, nonce: 'n-1' }) })).toBe(because); // a replay of an earlier opening
    expect(check({ signature: signApproval(bobKey, { ...fields, decision: 'reject' }) })).toBe(because);
    expect(check({ signature: signApproval(bobKey, fields), comment: 'lag 0, go!' })).toBe(because);
    expect(check({ signature: 'not base64!' })).toBe(because);
    expect(check({ signature: 12 })).toBe('the signature must be a base64 string');
  });

  it("refuses a signed decision by someone with no public key in the config (carol)", () => {
    const carolKey = generateKeyPairSync('ed25519').privateKey;
    expect(check({ approver: 'carol', signature: signApproval(carolKey, { ...fields, approver: 'carol' }) })).toBe("'carol' has no publicKey in the config: a signed decision cannot be verified");
  });
});
