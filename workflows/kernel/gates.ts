/**
 * Gates and decisions: a gate opens with a fresh nonce and waits for its
 * approvers (two distinct ones for a two-person gate), escalates, then times
 * out; a parent run's approval is taken, or set aside with the reason. Who may
 * decide is decided by decisions.ts; this room applies what it allows.
 */
import { ApplicationFailure, condition, isCancellation, proxyLocalActivities, uuid4, workflowInfo } from '@temporalio/workflow';
import type { GovernanceActivities } from '../../activities/governance';
import { FailureType } from '../../contract/failures';
import { lookup } from '../../contract/records';
import type { PreApproval, VerifiedPreApproval, VerifiedSentinel } from '../../contract/governance';
import { describeVotes } from '../../contract/sentinel';
import type { DecideRequest, DecideResult, GateStatus } from '../../contract/runbook';
import { afterLocalActivity } from './admission';
import { refuseDecision } from './decisions';
import { definitionError, failureMessage } from './failures';
import type { RunLedger } from './ledger';
import type { Notifier } from './notifications';

/** Local, like admission: nobody outside this worker can answer for the parent. */
const governance = proxyLocalActivities<GovernanceActivities>({ startToCloseTimeout: '30 seconds', retry: { maximumAttempts: 3 } });

export type { PreApproval } from '../../contract/governance';

/** The gates a sentinel's quorum may decide under policy auto: the promotion of a lost primary's standby. */
const QUORUM_GATES: ReadonlySet<string> = new Set(['promote']);

export interface GateOptions {
  /** Decided at a parent run's gate: verified with the parent at admission, then counted (unless `setAside`). */
  preApproved?: PreApproval;
  /** Why the parent's approval does not cover what this run found (e.g. an RPO beyond the target): a person decides here, paged at once. */
  setAside?: string;
  /** What the approver should see, added to the gate-opened event. */
  briefing?: string;
  /** Why a sentinel's quorum may not decide this gate (e.g. an RPO beyond the target): a person decides, paged at once. */
  needsPerson?: string;
}

export class Gates {
  /** Set at admission: pre-approvals are then taken only as the parent's verified record. */
  private admitted: { preApproval?: VerifiedPreApproval; sentinel?: VerifiedSentinel } | undefined;

  constructor(
    private readonly ledger: RunLedger,
    private readonly notifier: Notifier,
  ) {}

  /** The parent's decision as the parent reported it at admission (undefined: the run has no pre-approval). */
  admit(preApproval: VerifiedPreApproval | undefined, sentinel?: VerifiedSentinel): void {
    this.admitted = { preApproval, ...(sentinel ? { sentinel } : {}) };
  }

  /**
   * Waits for an authorised approver. Escalates after `escalateAfterSeconds`, rejects
   * as timed out after `timeoutSeconds`; a rejection throws GateRejected.
   */
  async open(id: string, options: GateOptions = {}): Promise<GateStatus> {
    const { ledger } = this;
    const gate = ledger.gateStatus(id);
    const policy = lookup(ledger.options.gates, id);
    if (!policy) throw definitionError(`no policy configured for gate '${id}'`);
    gate.nonce = uuid4();
    gate.openedAt = ledger.now();
    gate.decidedBy = gate.decidedAt = gate.comment = gate.escalatedAt = undefined;
    gate.approvals = [];
    // An admitted pre-approval is checked again now: the parent may have ended, or this child be a reset one.
    const stale = options.preApproved && options.setAside === undefined && this.admitted?.preApproval ? await this.parentWithdrew(this.admitted.preApproval) : undefined;
    const setAside = options.setAside ?? (stale ? `the parent run no longer vouches for it (${stale})` : undefined);
    if (options.preApproved && setAside !== undefined) {
      // Who approved at the parent: its own record when the run was admitted with it, else (older runs) the input's word.
      const by = this.admitted?.preApproval?.approvers.join(' + ') ?? options.preApproved.by;
      ledger.record('pre-approval-set-aside', `gate ${id}: the approval by ${by} at the parent run's gate does not cover this: ${setAside}; a person must approve here`, { by, gate: id });
    } else if (options.preApproved && this.admitted) {
      // The parent's own record, checked at admission; its approvers count here only if they may decide this gate.
      const pre = this.admitted.preApproval;
      if (!pre) throw definitionError(`gate ${id} was given a pre-approval the run was not admitted with`);
      if (this.takeParentApprovals(gate, pre)) return { ...gate };
    } else if (options.preApproved) {
      // Runs from before admission: decided at the parent run's gate, recorded, not asked again.
      const { by, at, comment } = options.preApproved;
      Object.assign(gate, { state: 'approved', decidedBy: by, decidedAt: at, comment });
      ledger.record('gate-approved', `gate ${id} approved by ${by} at the parent run's gate: ${comment}`, { by, gate: id });
      ledger.publish();
      return { ...gate };
    }
    gate.state = 'waiting';
    ledger.status.state = 'waiting-approval';
    ledger.setPhase(`gate ${id}`);
    // Only a run the sentinel itself started (verified with it at admission) is decided by its quorum; a person can always reject.
    const sentinel = this.admitted?.sentinel;
    const quorumMay = sentinel?.policy === 'auto' && QUORUM_GATES.has(id) && !options.preApproved;
    const byQuorum = quorumMay && options.needsPerson === undefined ? sentinel : undefined;
    const votes = sentinel ? `Declared by ${sentinel.sentinel}: ${describeVotes(sentinel.trigger)}.` : '';
    const quorumLine = byQuorum
      ? ` The sentinel's quorum approves it in ${byQuorum.vetoSeconds}s unless an approver vetoes (lifeboat veto) or rejects it.`
      : quorumMay ? ` The sentinel's quorum may not decide it: ${options.needsPerson}; a person must.` : '';
    ledger.record('gate-opened', `gate ${id} waits for one of: ${gate.approvers.join(', ') || '(nobody is allowed: fix the config)'}${options.briefing ? `. ${options.briefing}` : ''}${votes ? ` ${votes}` : ''}${quorumLine}`, { gate: id });
    if (options.preApproved && setAside !== undefined) {
      // The parent's approver believes this promotion is under way: someone must come now, not after the escalation delay.
      this.notifier.escalate('escalation', 'critical', `gate ${id} needs a person: the parent run's approval does not cover it`, `${setAside}. Approve or reject gate ${id} of this run (approvers: ${gate.approvers.join(', ')}).`, { gate: id });
    }
    if (quorumMay && !byQuorum) {
      this.notifier.escalate('escalation', 'critical', `gate ${id} needs a person: the sentinel's quorum may not decide it`, `${options.needsPerson}. Approve or reject gate ${id} of this run (approvers: ${gate.approvers.join(', ')}).`, { gate: id });
    }
    ledger.publish();

    const decided = () => gate.state !== 'waiting';
    if (byQuorum && !(await condition(decided, byQuorum.vetoSeconds * 1000, { summary: `gate ${id} veto window` }))) {
      const voters = byQuorum.trigger.votes.filter((v) => v.saw === 'failing').map((v) => v.region);
      Object.assign(gate, { state: 'approved', decidedBy: `${byQuorum.sentinel} (quorum ${voters.join(', ')})`, decidedAt: ledger.now(), comment: `no veto within ${byQuorum.vetoSeconds}s` });
      ledger.record('gate-approved', `gate ${id} approved by the quorum of ${byQuorum.sentinel} (policy auto: ${voters.length} of ${byQuorum.trigger.votes.length} regions, ${voters.join(', ')}, saw the failure), no veto within ${byQuorum.vetoSeconds}s`, { by: byQuorum.sentinel, gate: id });
      ledger.status.state = 'running';
      ledger.publish();
      return { ...gate };
    }
    const escalateAfterMs = Math.min(policy.escalateAfterSeconds, policy.timeoutSeconds) * 1000;
    let done = await condition(decided, escalateAfterMs, { summary: `gate ${id} escalation` });
    if (!done) {
      gate.escalatedAt = ledger.now();
      this.notifier.escalate('escalation', 'warning', `gate ${id} still waiting`, `Gate ${id} has waited ${policy.escalateAfterSeconds}s for an approver (${gate.approvers.join(', ')}).`, { gate: id });
      const rest = (policy.timeoutSeconds * 1000) - escalateAfterMs;
      done = rest > 0 ? await condition(decided, rest, { summary: `gate ${id} timeout` }) : false;
    }
    if (!done) {
      gate.state = 'timed-out';
      gate.decidedAt = ledger.now();
      ledger.record('gate-timed-out', `gate ${id} timed out after ${policy.timeoutSeconds}s without a decision`, { gate: id });
    }
    ledger.status.state = 'running';
    ledger.publish();
    const outcome = ledger.gateStatus(id).state; // set by the handlers while we waited
    if (outcome !== 'approved') {
      const why = gate.state === 'timed-out' ? 'timed out' : `rejected by ${gate.decidedBy ?? '?'}: ${gate.comment ?? ''}`;
      throw ApplicationFailure.create({
        type: FailureType.GateRejected,
        message: `gate ${id} ${why}`,
        nonRetryable: true,
        details: [{ gate: id, state: gate.state, decidedBy: gate.decidedBy, comment: gate.comment }],
      });
    }
    return { ...gate };
  }

  /** Why the parent no longer vouches for `pre` (asked through a local activity), or undefined. */
  private async parentWithdrew(pre: VerifiedPreApproval): Promise<string | undefined> {
    const parent = workflowInfo().parent;
    if (!parent) return 'the run has no parent';
    let refused: string | undefined;
    try {
      refused = (await governance.confirmPreApproval({ parent: { workflowId: parent.workflowId, runId: parent.runId }, child: workflowInfo().workflowId, preApproval: pre })).refused;
    } catch (err) {
      if (isCancellation(err)) throw err;
      refused = `the parent could not be asked: ${failureMessage(err)}`;
    }
    await afterLocalActivity();
    return refused;
  }

  /**
   * Counts the parent's approvers who may decide this gate; true when they are enough (the gate is approved).
   * Otherwise their approvals stand and the gate waits for the rest: a two-person gate fed one approval
   * at the parent waits for a second, different approver here.
   */
  private takeParentApprovals(gate: GateStatus, pre: VerifiedPreApproval): boolean {
    const { ledger } = this;
    const where = `gate ${pre.gate} of ${pre.parent}`;
    const counted = pre.approvers.filter((a) => gate.approvers.includes(a)).slice(0, gate.required);
    gate.approvals = counted.map((by) => ({ by, at: pre.at, comment: `at ${where}${pre.comment ? `: ${pre.comment}` : ''}` }));
    if (counted.length >= gate.required) {
      Object.assign(gate, { state: 'approved', decidedBy: counted.join(' + '), decidedAt: pre.at, comment: pre.comment });
      ledger.record('gate-approved', `gate ${gate.id} approved by ${gate.decidedBy} at ${where} (checked with the parent run): ${pre.comment}`, { by: counted[0], gate: gate.id });
      ledger.publish();
      return true;
    }
    const ignored = pre.approvers.filter((a) => !counted.includes(a));
    ledger.record(
      'gate-approved',
      `gate ${gate.id}: ${counted.length} of ${gate.required} approvals from ${where} (${counted.join(', ') || 'none'})${ignored.length ? `; not counted here: ${ignored.join(', ')} (not an approver of this gate)` : ''}; waiting for ${gate.required - counted.length} more, from a different approver`,
      { gate: gate.id, ...(counted[0] ? { by: counted[0] } : {}) },
    );
    return false;
  }

  /** Why a decision may not be applied now (decisions.ts), or undefined. */
  refusal(request: unknown): string | undefined {
    return refuseDecision(request, this.ledger.status.gates, this.ledger.context, { workflowId: workflowInfo().workflowId });
  }

  /** Applies a decision `refusal` allowed: an approval (the first of two, or the one that opens the gate) or a rejection. */
  apply(request: DecideRequest): DecideResult {
    const { ledger } = this;
    const gate = ledger.gateStatus(request.gate);
    const at = ledger.now();
    // Verified by refusal(): a signature here is the approver's, for this opening.
    const signed = request.signature !== undefined ? ' (signed)' : '';
    if (request.decision === 'approve') {
      gate.approvals.push({ by: request.approver, at, comment: request.comment, ...(signed ? { signed: true } : {}) });
      if (gate.approvals.length < gate.required) {
        // A two-person gate: the first approval is recorded, the gate keeps waiting for a different person.
        ledger.record('gate-approved', `gate ${gate.id}: approval ${gate.approvals.length} of ${gate.required} by ${request.approver}${signed}${request.comment ? `: ${request.comment}` : ''}`, { by: request.approver, gate: gate.id });
        ledger.publish();
        return { gate: gate.id, state: gate.state, decidedBy: request.approver, decidedAt: at };
      }
    }
    gate.state = request.decision === 'approve' ? 'approved' : 'rejected';
    gate.decidedBy = request.decision === 'approve' ? gate.approvals.map((a) => a.by).join(' + ') : request.approver;
    gate.decidedAt = at;
    gate.comment = request.comment;
    ledger.record(request.decision === 'approve' ? 'gate-approved' : 'gate-rejected', `gate ${gate.id} ${gate.state} by ${gate.decidedBy}${signed}${request.comment ? `: ${request.comment}` : ''}`, { by: request.approver, gate: gate.id });
    ledger.publish();
    return { gate: gate.id, state: gate.state, decidedBy: gate.decidedBy, decidedAt: at };
  }
}
