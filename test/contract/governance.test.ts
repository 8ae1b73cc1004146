/**
 * admitRun, the pure judgement of a run's admission: every way a starter could
 * write the rules (wider people, roles, keys, signature mode, gate rules; an
 * unsigned, borrowed or altered start; a Schedule or parent that is not one; a
 * forged pre-approval) is refused with its reason, and a narrower input runs
 * under the narrower rules.
 */
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { startDigest, startMessage } from '../../contract/approvals';
import { admitRun, type AdmissionFacts, type GivenRun, type RunOrigin, type TrustedPolicy } from '../../contract/governance';
import type { RunContext } from '../../contract/runbook';
import { generateApprovalKey, loadApprovalKey, signMessage } from '../../lib/approval-keys';

const keys = mkdtempSync(path.join(os.tmpdir(), 'lifeboat-governance-'));
const keyFile = (who: string) => path.join(keys, `${who}.pem`);
const publicKeys = { alice: generateApprovalKey(keyFile('alice')), carol: generateApprovalKey(keyFile('carol')) };

const gate = { escalateAfterSeconds: 60, timeoutSeconds: 300 };
const policy = (changes: Partial<TrustedPolicy> = {}): TrustedPolicy => ({
  people: { alice: ['commander'], bob: ['approver'], carol: ['commander', 'approver'] },
  approvalKeys: publicKeys,
  signatures: 'optional',
  gates: { promote: gate },
  ...changes,
});
const context = (changes: Partial<RunContext> = {}): RunContext => ({
  initiator: 'alice',
  detectedAt: '2026-12-02T05:00:00.000Z',
  drill: false,
  people: { alice: ['commander'], bob: ['approver'], carol: ['commander', 'approver'] },
  ...changes,
});
const START = new Date('2026-12-02T05:01:00.000Z');
const given = (changes: Partial<GivenRun> = {}): GivenRun => ({
  context: context(),
  gates: { promote: gate },
  workflowId: 'db-promotion:orders',
  workflowType: 'dbPromotion',
  startTime: START,
  ...changes,
});
const facts = (changes: Partial<TrustedPolicy> = {}, origin: RunOrigin = { kind: 'client' }, extra: Partial<AdmissionFacts> = {}): AdmissionFacts => ({ policy: policy(changes), origin, ...extra });

/** The input a signed start carries, signed by `signer` for `initiator`. */
function signedInput(signer: 'alice' | 'carol', run: RunContext, workflowId = 'db-promotion:orders', signedAt = '2026-12-02T05:00:30.000Z') {
  const input = { database: 'orders', mode: 'planned', run: { ...run, signedAt } };
  const message = startMessage({ workflowId, workflowType: 'dbPromotion', initiator: run.initiator, inputDigest: startDigest(input) });
  return { ...input, run: { ...input.run, startSignature: signMessage(loadApprovalKey(keyFile(signer)), message) } };
}

describe('admitRun: the input may narrow the worker’s policy, never widen it', () => {
  it('admits an input equal to the policy, with the worker’s keys', () => {
    const admission = admitRun(facts(), given());
    expect(admission.refusals).toEqual([]);
    expect(admission.context.approvalKeys).toEqual(publicKeys);
    expect(admission.gates).toEqual({ promote: gate });
  });

  it('refuses every widening with its difference', () => {
    const wide = given({
      context: context({ people: { alice: ['commander', 'approver'], bob: ['approver'], mallory: ['approver'] }, approvalKeys: { bob: publicKeys.alice } }),
      gates: { promote: { escalateAfterSeconds: 120, timeoutSeconds: 900, twoPerson: false } },
    });
    expect(admitRun(facts({ signatures: 'required', gates: { promote: { ...gate, twoPerson: true } } }), wide).refusals[0]).toBe(
      "the run's input disagrees with the worker's policy (it may narrow it, never widen it): " +
        "people.alice: role approver is not theirs in the worker's config (commander); people.mallory: not a person in the worker's config; " +
        "approvalKeys.bob: not the key the worker's config has for them; " +
        'signatures: the worker requires signed decisions (approvals.signatures: required), the input says optional; ' +
        "gates.promote: the worker's config requires two approvers; gates.promote.timeoutSeconds: 900 is longer than the worker's 300; gates.promote.escalateAfterSeconds: 120 is longer than the worker's 60",
    );
  });

  it('runs a narrower input under the narrower rules; a gate the input leaves out takes the worker’s rule', () => {
    const narrow = given({ context: context({ people: { alice: ['commander'], bob: ['approver'] }, signatures: 'required' }), gates: { promote: { escalateAfterSeconds: 30, timeoutSeconds: 60, twoPerson: true } } });
    const signedNarrow = { ...narrow, input: signedInput('alice', narrow.context) };
    const admission = admitRun(facts({ gates: { promote: gate, 'discard-divergence': gate } }), { ...signedNarrow, context: signedNarrow.input.run });
    expect(admission.refusals).toEqual([]);
    expect(admission.context.people).toEqual({ alice: ['commander'], bob: ['approver'] });
    expect(admission.context.signatures).toBe('required');
    expect(admission.context.approvalKeys).toEqual({ alice: publicKeys.alice });
    expect(admission.context.startSignature).toBeUndefined();
    expect(admission.gates).toEqual({ promote: { escalateAfterSeconds: 30, timeoutSeconds: 60, twoPerson: true }, 'discard-divergence': gate });
  });

  it('refuses an initiator the worker’s config does not let start runs', () => {
    expect(admitRun(facts(), given({ context: context({ initiator: 'bob' }) })).refusals).toEqual(["'bob' may not start runs by the worker's config (needs the commander or admin role; has approver)"]);
  });
});

describe('admitRun: who started the run', () => {
  const required = { signatures: 'required' as const };

  it('with signatures required, refuses an unsigned client start and admits the initiator’s signed one', () => {
    const run = context({ signatures: 'required' });
    expect(admitRun(facts(required), given({ context: run })).refusals).toEqual([
      "this worker requires signed starts (approvals.signatures: required): start it with 'lifeboat start … --as alice --key <alice's private key>'",
    ]);
    const input = signedInput('alice', run);
    const admission = admitRun(facts(required), given({ context: input.run, input }));
    expect(admission.refusals).toEqual([]);
    expect(admission.summary).toBe("started by a client; policy from the worker's config (signatures required, start signed)");
  });

  it('refuses a borrowed key, another run’s signature, an altered input and a stale signature', () => {
    const run = context({ signatures: 'required' });
    const borrowed = signedInput('carol', run);
    expect(admitRun(facts(required), given({ context: borrowed.run, input: borrowed })).refusals[0]).toMatch(/^the start signature is not alice's signature of this start/);
    const other = signedInput('alice', run, 'db-promotion:users');
    expect(admitRun(facts(required), given({ context: other.run, input: other })).refusals[0]).toMatch(/^the start signature is not alice's/);
    const good = signedInput('alice', run);
    const altered = { ...good, mode: 'unplanned' };
    expect(admitRun(facts(required), given({ context: altered.run, input: altered })).refusals[0]).toMatch(/or the input was altered$/);
    const stale = signedInput('alice', run, 'db-promotion:orders', '2026-12-01T05:00:00.000Z');
    expect(admitRun(facts(required), given({ context: stale.run, input: stale })).refusals).toEqual(["the start was signed at 2026-12-01T05:00:00.000Z, not within the 600s before the run's start: sign it again"]);
    // Dated after the start (beyond a minute's skew): a signature made to be replayed later.
    const future = signedInput('alice', run, 'db-promotion:orders', '2026-12-02T05:08:00.000Z');
    expect(admitRun(facts(required), given({ context: future.run, input: future })).refusals).toEqual(["the start was signed at 2026-12-02T05:08:00.000Z, not within the 600s before the run's start: sign it again"]);
  });

  it('a signature is checked even when the worker does not require one', () => {
    const borrowed = signedInput('carol', context());
    expect(admitRun(facts(), given({ context: borrowed.run, input: borrowed })).refusals[0]).toMatch(/^the start signature is not alice's/);
  });

  it('a Schedule vouches for an unsigned start only when it is verified and starts as schedules.initiator', () => {
    const run = context({ signatures: 'required' });
    expect(admitRun(facts(required, { kind: 'schedule', scheduleId: 'lifeboat-drill', verified: true, initiator: 'alice' }), given({ context: run })).refusals).toEqual([]);
    expect(admitRun(facts(required, { kind: 'schedule', scheduleId: 'lifeboat-drill', verified: false, why: 'it is not among its actions' }), given({ context: run })).refusals).toEqual([
      'the run carries the Schedule id lifeboat-drill, but that Schedule does not vouch for it (it is not among its actions)',
      "this worker requires signed starts (approvals.signatures: required): start it with 'lifeboat start … --as alice --key <alice's private key>'",
    ]);
    expect(admitRun(facts(required, { kind: 'schedule', scheduleId: 'lifeboat-drill', verified: true, initiator: 'carol' }), given({ context: run })).refusals[0]).toBe(
      "a scheduled run starts as carol (schedules.initiator in the worker's config), not as 'alice'",
    );
  });

  it('a parent run of this worker vouches for its child, which starts as the parent’s initiator', () => {
    const run = context({ signatures: 'required' });
    const parent = (initiator: string): RunOrigin => ({ kind: 'parent', workflowId: 'regional-evacuation:east', workflowType: 'regionalEvacuation', verified: true, initiator });
    expect(admitRun(facts(required, parent('alice')), given({ context: run })).refusals).toEqual([]);
    expect(admitRun(facts(required, parent('carol')), given({ context: run })).refusals[0]).toBe("a child run starts as its parent's initiator (carol), not as 'alice'");
    const stranger: RunOrigin = { kind: 'parent', workflowId: 'x', workflowType: 'myWorkflow', verified: false, why: 'the parent is a myWorkflow, not a runbook of this worker' };
    expect(admitRun(facts(required, stranger), given({ context: run })).refusals).toEqual([
      "this worker requires signed starts (approvals.signatures: required): start it with 'lifeboat start … --as alice --key <alice's private key>'",
    ]);
  });
});

describe('admitRun: pre-approvals are the parent’s record, not the input’s word', () => {
  const pre = { by: 'bob', at: '2026-12-02T05:00:40.000Z', comment: 'go', parent: 'regional-evacuation:east', gate: 'promote-databases', nonce: 'n-1' };
  const parent: RunOrigin = { kind: 'parent', workflowId: 'regional-evacuation:east', workflowType: 'regionalEvacuation', verified: true, initiator: 'alice' };

  it('refuses a pre-approval without a parent, from a parent that is not a runbook, or that the parent does not confirm', () => {
    expect(admitRun(facts(), given({ preApproved: pre })).refusals).toEqual(['a pre-approval (by bob) is honoured only in a child of a Lifeboat run of this worker; this run has no parent: nothing was pre-approved']);
    const stranger: RunOrigin = { kind: 'parent', workflowId: 'x', workflowType: 'myWorkflow', verified: false, why: 'the parent is a myWorkflow, not a runbook of this worker' };
    expect(admitRun(facts({}, stranger), given({ preApproved: pre })).refusals).toEqual([
      'a pre-approval (by bob) is honoured only in a child of a Lifeboat run of this worker; this run has a parent that is not one (the parent is a myWorkflow, not a runbook of this worker): nothing was pre-approved',
    ]);
    expect(admitRun(facts({}, parent, { preApproval: { refused: 'gate promote-databases of regional-evacuation:east is waiting, not approved' } }), given({ preApproved: pre })).refusals).toEqual([
      "the pre-approval does not match the parent's record: gate promote-databases of regional-evacuation:east is waiting, not approved",
    ]);
  });

  it('passes on the parent’s verified approvers', () => {
    const verified = { parent: 'regional-evacuation:east', gate: 'promote-databases', nonce: 'n-1', at: pre.at, comment: 'go', approvers: ['bob'] };
    const admission = admitRun(facts({}, parent, { preApproval: { verified } }), given({ preApproved: pre }));
    expect(admission.refusals).toEqual([]);
    expect(admission.preApproval).toEqual(verified);
  });
});

describe('admitRun: a run a sentinel says it started', () => {
  const trigger = {
    sentinel: 'sentinel:db:orders',
    declaration: '6f1c2d3e-0000-4000-8000-000000000001',
    target: { kind: 'database' as const, database: 'orders' },
    declaredAt: '2026-12-02T05:00:40.000Z',
    detectedAt: '2026-12-02T05:00:00.000Z',
    needed: 2,
    votes: [
      { region: 'east', saw: 'no-answer' as const },
      { region: 'west', saw: 'failing' as const, since: '2026-12-02T05:00:00.000Z' },
      { region: 'central', saw: 'failing' as const, since: '2026-12-02T05:00:01.000Z' },
    ],
    policy: 'auto' as const,
  };
  const byTheSentinel = (changes: Partial<RunContext> = {}) => given({ context: context({ initiator: 'sentinel', people: { alice: ['commander'], bob: ['approver'], carol: ['commander', 'approver'], sentinel: ['commander'] }, trigger, ...changes }) });
  const people = { alice: ['commander'], bob: ['approver'], carol: ['commander', 'approver'], sentinel: ['commander'] } as TrustedPolicy['people'];
  const verified: RunOrigin = { kind: 'sentinel', workflowId: 'sentinel:db:orders', verified: true, initiator: 'sentinel', policy: 'auto', vetoSeconds: 30 };

  it('admits it when the sentinel vouches, as the configured identity, without a signature even where starts must be signed; the gate learns the policy', () => {
    const admission = admitRun(facts({ people, signatures: 'required' }, verified), byTheSentinel({ signatures: 'required' }));
    expect(admission.refusals).toEqual([]);
    expect(admission.sentinel).toEqual({ sentinel: 'sentinel:db:orders', policy: 'auto', vetoSeconds: 30, trigger });
  });

  it('refuses it when the sentinel does not vouch for it, and says why', () => {
    const unverified: RunOrigin = { kind: 'sentinel', workflowId: 'sentinel:db:orders', verified: false, why: 'the sentinel has no declaration 6f1c2d3e-0000-4000-8000-000000000001' };
    const admission = admitRun(facts({ people }, unverified), byTheSentinel());
    expect(admission.refusals.join('; ')).toMatch(/sentinel sentinel:db:orders started it .* does not vouch for it \(the sentinel has no declaration 6f1c2d3e/);
    expect(admission.sentinel).toBeUndefined();
  });

  it('refuses a trigger on a run a person started from a client: a person cannot pass a start off as the quorum', () => {
    const admission = admitRun(facts({ people }, { kind: 'client' }), given({ context: context({ trigger }) }));
    expect(admission.refusals.join('; ')).toMatch(/the run says sentinel sentinel:db:orders started it .* but it was started by a client: start it as a person, without a trigger/);
    expect(admission.sentinel).toBeUndefined();
  });

  it('refuses a vouched-for run that starts as someone other than the sentinel identity (a person borrowing the declaration)', () => {
    const admission = admitRun(facts({ people }, verified), byTheSentinel({ initiator: 'carol' }));
    expect(admission.refusals.join('; ')).toMatch(/a sentinel's run starts as sentinel \(sentinels.identity in the worker's config\), not as 'carol'/);
  });

  it('refuses a malformed trigger before anything else', () => {
    const admission = admitRun(facts({ people }, verified), byTheSentinel({ trigger: { ...trigger, votes: 'all of them' } as unknown as RunContext['trigger'] }));
    expect(admission.refusals.join('; ')).toMatch(/run.trigger must be a sentinel declaration/);
  });
});
