/**
 * The runbook kernel: steps, gates, compensation, the RTO budget and the
 * status, so a runbook file reads as the DR procedure and not as Temporal
 * plumbing. Deterministic orchestration only: every side effect is an activity.
 */
import {
  ApplicationFailure,
  CancellationScope,
  condition,
  isCancellation,
  log,
  patched,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  sleep,
  TemporalFailure,
  upsertSearchAttributes,
  uuid4,
  workflowInfo,
} from '@temporalio/workflow';
import { defineSearchAttributeKey, SearchAttributeType, type SearchAttributeUpdatePair } from '@temporalio/common';
import type { NotificationActivities } from '../../activities/notify';
import type { EvidenceActivities } from '../../activities/evidence';
import { GENESIS, sealRecord, type EvidenceHead, type EvidenceRecord } from '../../contract/evidence';
import type { Notification } from '../../contract/database';
import { FailureType } from '../../contract/failures';
import {
  approveSignal,
  decideUpdate,
  rejectSignal,
  requestCancelUpdate,
  resolveSignal,
  searchAttributes,
  statusQuery,
  type DecideRequest,
  type DecideResult,
  type GateDecision,
  type GatePolicy,
  type GateStatus,
  type ResolveRequest,
  type DatabaseRpoStatus,
  type RpoStatus,
  type RtoPolicy,
  type RunbookStatus,
  type RunContext,
  type RunEvent,
  type RunState,
  type StepStatus,
  type ChildStatus,
  isFinalState,
  type SkippedRun,
  type RunArtifact,
} from '../../contract/runbook';
import { lookup } from '../../contract/records';
import { describeReplication, judgeRpo, type RpoVerdict } from '../../contract/rpo';
import { refuseDecision, refuseOperator, refuseResolve } from './decisions';
import { claimHolds, releaseHolds, type ClaimedHold } from './holds';
import { leaveReturnWatch } from './return-watches';
import type { ReturnDuty } from '../../contract/return-watch';
import { renderStatusMarkdown } from './status-markdown';
import { describe, failureType, ignoreCancellation, wrapStepFailure } from './failures';
import type { RunbookRunOptions } from './plan';

export { describe, isDeadline } from './failures';
export type { GateDefinition, Plan, RunbookRunOptions, StepDefinition } from './plan';

/** A gate decided in a parent run, passed to a child run. */
export interface PreApproval {
  by: string;
  at: string;
  comment: string;
}

/** An undo: idempotent, because it may run after a half-applied step. */
export type Undo = () => Promise<unknown>;

export interface StepOptions<T> {
  /** Registered before the action runs, for a step that can half-apply (e.g. a fence that timed out). */
  undoIfInterrupted?: Undo;
  /** The undo once the step succeeded; may depend on what it did (undefined: nothing to undo). */
  compensate?: (result: T) => Undo | undefined;
}

interface Compensation {
  stepId: string;
  undo: Undo;
}

/** Runs from before the Schedule's own record was required trusted `run.scheduled` alone. */
const PATCH_SCHEDULED_BY_SERVER = 'lifeboat-scheduled-by-server';
const SCHEDULED_BY_ID = defineSearchAttributeKey('TemporalScheduledById', SearchAttributeType.KEYWORD);

/** The server sets TemporalScheduledById on a run a Schedule started; a client start cannot pass it off as one. */
function startedBySchedule(): boolean {
  const info = workflowInfo();
  const typed = info.typedSearchAttributes.get(SCHEDULED_BY_ID);
  // The untyped map also carries it when the payload has no type metadata.
  const untyped = info.searchAttributes?.TemporalScheduledById;
  return (typeof typed === 'string' && typed.length > 0) || (Array.isArray(untyped) && untyped.length > 0);
}

/** Escalations must be delivered even while the run is being cancelled. */
const NOTIFY_BACKOFF_MS = 5_000;
const DELIVERY_FLUSH_MS = 60_000;
const NOTIFY_BACKOFF_MAX_MS = 5 * 60_000;

/** A notification as a runbook writes it; the kernel adds the run's identity and link. */
export type Outgoing = Pick<Notification, 'audience' | 'severity' | 'kind' | 'subject' | 'body'>;

/** Storing evidence retries until it works: records must not be lost while a bucket is down. */
const evidenceStore = proxyActivities<EvidenceActivities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '2 seconds', backoffCoefficient: 2, maximumInterval: '1 minute' },
});

const notifications = proxyActivities<NotificationActivities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '2 seconds', backoffCoefficient: 2, maximumAttempts: 5 },
});

export class RunbookRun {
  private readonly status: RunbookStatus;
  private readonly options: RunbookRunOptions;
  private compensations: Compensation[] = [];
  /**
   * The procedure and the watchers run under a shield, not under the root scope:
   * a cancel of the workflow is forwarded to the procedure only while rollback is
   * still possible (see onCancelRequested), and never stops the RTO clock.
   */
  private readonly shield = new CancellationScope({ cancellable: false });
  private readonly mainScope = new CancellationScope({ cancellable: true, parent: this.shield });
  private readonly watchers = new CancellationScope({ cancellable: true, parent: this.shield });
  /** Deliveries in flight; the run waits a little for them before it ends, or they would never be sent. */
  private readonly deliveries = new Set<Promise<unknown>>();
  private recovering = false;
  private pendingResolution: ResolveRequest | undefined;
  private rollbackForRtoBreach = false;
  private lastPublishedPhase: string | undefined;
  /** The evidence chain (runs started before it existed replay without it). */
  private readonly evidenceEnabled: boolean;
  private evidenceHead = GENESIS;
  private evidenceSealed = false;
  private evidenceCount = 0;
  private unstoredEvidence: EvidenceRecord[] = [];
  private evidenceWriter: Promise<void> | undefined;
  /** Target holds (runs started before holds existed replay without them). */
  private readonly holdsEnabled: boolean;
  private claimed: ClaimedHold[] = [];
  private refusedByHold: TemporalFailure | undefined;
  /** Started by a Schedule (the context is rewritten below, so this is kept apart). */
  private readonly scheduledRun: boolean;

  constructor(options: RunbookRunOptions) {
    // A scheduled run's input was written when the schedule was: its clock starts with the run. The input's
    // word is not enough (anyone may start a run with `scheduled: true`): the server's record of the Schedule is.
    const scheduled = options.context.scheduled === true && (!patched(PATCH_SCHEDULED_BY_SERVER) || startedBySchedule());
    const context = scheduled ? { ...options.context, scheduled: false, detectedAt: workflowInfo().runStartTime.toISOString() } : options.context.scheduled ? { ...options.context, scheduled: false } : options.context;
    this.options = { ...options, context };
    this.evidenceEnabled = patched('lifeboat-evidence-chain');
    this.scheduledRun = scheduled;
    this.holdsEnabled = (options.holds?.length ?? 0) > 0 && patched('lifeboat-target-holds');
    const { plan } = options;
    const budget = options.rto.budgetSeconds;
    this.status = {
      workflowId: workflowInfo().workflowId,
      runbook: options.runbook,
      phase: 'starting',
      state: 'running',
      initiator: context.initiator,
      incident: context.incident,
      detectedAt: context.detectedAt,
      drill: context.drill,
      target: options.target,
      steps: plan.steps.map((s) => ({
        id: s.id,
        title: s.title,
        state: 'pending',
        irreversible: s.irreversible === true,
        budgetSeconds: lookup(options.stepBudgets, s.id),
        budgetBreached: false,
        pastPointOfNoReturn: false,
      })),
      gates: plan.gates.map((g) => ({
        id: g.id,
        title: g.title,
        state: 'pending',
        approvers: Object.entries(context.people)
          .filter(([name, roles]) => roles.includes('approver') && name !== context.initiator)
          .map(([name]) => name),
        required: lookup(options.gates, g.id)?.twoPerson ? 2 : 1,
        approvals: [],
      })),
      rto: { budgetSeconds: budget, elapsedSeconds: 0, remainingSeconds: budget, breached: false, onBreach: options.rto.onBreach },
      rpo: { targetSeconds: options.rpoTargetSeconds },
      pointOfNoReturnPassed: false,
      rollbackAvailable: true,
      events: [],
      children: [],
      notifications: { delivered: 0, pending: 0, failedRounds: 0 },
    };
    this.registerHandlers();
  }

  /**
   * Runs the procedure. On a failure, a rejection or a cancel before the point of
   * no return, the registered undos run in reverse and the run ends rolled back;
   * after it, the run ends failed and pages, because undoing would split the brain.
   */
  async execute<T extends object>(procedure: () => Promise<T>): Promise<T & { evidence?: EvidenceHead }> {
    const outcome = await this.run(procedure, 'fail');
    if ('skipped' in outcome) throw ApplicationFailure.nonRetryable('a run that may not skip was skipped', 'RunbookDefinitionError');
    return outcome;
  }

  /**
   * As execute, but a scheduled run (a drill) that finds its target held by another run
   * (a real incident) ends `skipped`, recorded, instead of failing or queueing behind it.
   */
  async executeOrSkip<T extends object>(procedure: () => Promise<T>): Promise<(T & { evidence?: EvidenceHead }) | SkippedRun> {
    return this.run(procedure, this.scheduledRun ? 'skip' : 'fail');
  }

  private async run<T extends object>(procedure: () => Promise<T>, whenHeld: 'fail' | 'skip'): Promise<(T & { evidence?: EvidenceHead }) | SkippedRun> {
    this.record('started', `${this.options.runbook} on ${this.options.target} started by ${this.options.context.initiator}`);
    this.upsertStartAttributes();
    // A run with holds starts its RTO clock once it holds its targets: a refused run never pages a breach.
    if (!this.holdsEnabled) this.startRtoBudget();
    this.publish();
    CancellationScope.current().cancelRequested.catch(() => this.onCancelRequested());
    try {
      if (this.holdsEnabled) {
        await this.mainScope.run(() => this.claimTargets());
        this.startRtoBudget();
      }
      const result = await this.mainScope.run(procedure);
      this.finish('completed', 'completed', { result });
      // The chain head in the result: editing or truncating the stored log is detected against it.
      return this.evidenceEnabled ? { ...result, evidence: this.evidenceHeadNow() } : result;
    } catch (err) {
      if (!(err instanceof TemporalFailure)) throw err; // a bug: fail the workflow task, keep the run for a fixed worker
      if (this.refusedByHold === err) {
        this.status.error = { type: FailureType.TargetHeld, message: describe(err) };
        if (whenHeld === 'skip') {
          this.finish('skipped', 'skipped: target held');
          return { skipped: { reason: describe(err) } };
        }
        this.finish('refused', 'refused: target held');
        throw err;
      }
      throw await this.recover(err);
    } finally {
      this.watchers.cancel();
      this.publish();
      // The targets are free for the next run as soon as this one can change nothing more.
      if (this.claimed.length > 0) await CancellationScope.nonCancellable(() => releaseHolds(this.claimed));
      await this.flushDeliveries();
      await this.flushEvidence();
    }
  }

  /** Claims every target before the first step; a held target refuses the run with the holder named. */
  private async claimTargets(): Promise<void> {
    this.setPhase('claiming targets');
    const { runStartTime } = workflowInfo();
    try {
      await claimHolds(
        this.options.holds ?? [],
        { runbook: this.options.runbook, initiator: this.options.context.initiator, startedAt: runStartTime.toISOString() },
        (detail) => this.record('hold', detail),
        this.claimed,
      );
    } catch (err) {
      if (err instanceof ApplicationFailure && err.type === FailureType.TargetHeld) {
        this.refusedByHold = err;
        this.record('refused', describe(err));
      }
      throw err;
    }
  }

  private evidenceHeadNow(): EvidenceHead {
    return { head: this.evidenceHead, records: this.evidenceCount };
  }

  /** Seals the next record of the chain and hands it to the writer, in order. */
  private witness(fields: Pick<EvidenceRecord, 'kind' | 'detail'> & Partial<Pick<EvidenceRecord, 'by' | 'step' | 'gate' | 'outcome'>>): void {
    if (!this.evidenceEnabled || this.evidenceSealed) return;
    const { workflowId, runId } = workflowInfo();
    const nonce = fields.gate ? this.status.gates.find((g) => g.id === fields.gate)?.nonce : undefined;
    const record = sealRecord({ seq: this.evidenceCount + 1, at: this.now(), workflowId, runId, runbook: this.options.runbook, ...fields, ...(nonce ? { nonce } : {}) }, this.evidenceHead);
    this.evidenceHead = record.hash;
    this.evidenceCount = record.seq;
    this.status.evidence = this.evidenceHeadNow();
    this.unstoredEvidence.push(record);
    this.evidenceWriter ??= CancellationScope.nonCancellable(() => this.writeEvidence());
  }

  /** One writer at a time, batching what accumulated while the last append ran. */
  private async writeEvidence(): Promise<void> {
    while (this.unstoredEvidence.length > 0) {
      const batch = this.unstoredEvidence;
      this.unstoredEvidence = [];
      await evidenceStore.appendEvidence.executeWithOptions(
        { startToCloseTimeout: '30 seconds', retry: { initialInterval: '2 seconds', backoffCoefficient: 2, maximumInterval: '1 minute' }, summary: `evidence: records ${batch[0]?.seq}-${batch.at(-1)?.seq}` },
        [batch],
      );
    }
    this.evidenceWriter = undefined;
  }

  /** The run ends once its evidence is stored (the records are also in this history, as the activity's input). */
  private async flushEvidence(): Promise<void> {
    if (this.evidenceWriter) await this.evidenceWriter.catch(() => undefined);
  }

  /** Who the run is, with a scheduled run's clock set to its start: what child runs inherit. */
  get context(): RunContext {
    return this.options.context;
  }

  /** A cancel (CLI, UI, `temporal workflow cancel`) rolls back only before the point of no return. */
  private onCancelRequested(): void {
    if (this.status.pointOfNoReturnPassed || this.recovering) {
      this.record('cancel-requested', 'cancel ignored: the run is past its point of no return (or already rolling back); it carries on');
      this.escalate('escalation', 'warning', 'cancel ignored past the point of no return', 'Someone cancelled the run after its irreversible step; the run carries on to leave a consistent state.');
      this.publish();
      return;
    }
    this.mainScope.cancel();
  }

  /** Gives deliveries started near the end (the last page) up to a minute to go out. */
  private async flushDeliveries(): Promise<void> {
    if (this.deliveries.size === 0) return;
    await CancellationScope.nonCancellable(() => Promise.race([Promise.allSettled([...this.deliveries]), sleep(DELIVERY_FLUSH_MS, { summary: 'last notifications' })]));
  }

  /** Runs one named step; its activity carries its own summary for the UI. */
  async step<T>(id: string, action: () => Promise<T>, options: StepOptions<T> = {}): Promise<T> {
    const step = this.stepStatus(id);
    if (step.irreversible) this.passPointOfNoReturn(step);
    step.state = 'running';
    step.startedAt = this.now();
    this.setPhase(id);
    if (options.undoIfInterrupted) this.compensations.push({ stepId: id, undo: options.undoIfInterrupted });
    const budget = this.watchStepBudget(step);
    try {
      const result = await action();
      step.state = 'done';
      step.endedAt = this.now();
      this.witness({ kind: 'step-done', step: id, detail: `step ${id} done`, outcome: { startedAt: step.startedAt, endedAt: step.endedAt } });
      this.compensations = this.compensations.filter((c) => c.stepId !== id);
      const undo = options.compensate?.(result);
      if (undo) this.compensations.push({ stepId: id, undo });
      return result;
    } catch (err) {
      step.state = 'failed';
      step.endedAt = this.now();
      step.note = isCancellation(err) ? 'cancelled' : describe(err);
      this.record('step-failed', `step ${id} failed: ${step.note}`, { step: id });
      throw wrapStepFailure(id, err);
    } finally {
      budget.cancel();
      this.publish();
    }
  }

  /** A word on a step for the status and the UI (what it measured, why it waits). */
  note(id: string, text: string): void {
    this.stepStatus(id).note = text;
    this.publish();
  }

  /**
   * Records a document the run stored with its evidence (via an activity): in
   * the status, and in the evidence chain with its digest, so the stored copy
   * can be checked against the sealed chain.
   */
  attach(artifact: Omit<RunArtifact, 'at'>): void {
    const entry: RunArtifact = { ...artifact, at: this.now() };
    (this.status.artifacts ??= []).push(entry);
    const detail = `${artifact.kind} ${artifact.name} stored (sha256 ${artifact.digest}): ${artifact.title}`;
    this.status.events.push({ at: entry.at, kind: 'artifact', detail, ...(artifact.step ? { step: artifact.step } : {}) });
    log.info(detail, { kind: 'artifact', step: artifact.step });
    this.witness({ kind: 'artifact', detail, ...(artifact.step ? { step: artifact.step } : {}), outcome: { name: artifact.name, kind: artifact.kind, digest: artifact.digest, locations: artifact.locations, summary: artifact.summary } });
    this.publish();
  }

  /** Marks a done step as skipped, with the reason (e.g. the old primary was unreachable). */
  skipped(id: string, reason: string): void {
    const step = this.stepStatus(id);
    step.state = 'skipped';
    step.note = reason;
    this.publish();
  }

  /**
   * Waits for an authorised approver. Escalates after `escalateAfterSeconds`, rejects
   * as timed out after `timeoutSeconds`; a rejection throws GateRejected.
   * `preApproved`: decided at a parent run's gate, recorded and not asked again, unless
   * `setAside` gives a reason why that approval does not cover what this run found
   * (e.g. an RPO beyond the target): then a person must decide here, and the on-call is paged.
   * `briefing`: what the approver should see, added to the gate-opened event.
   */
  async gate(id: string, options: { preApproved?: PreApproval; setAside?: string; briefing?: string } = {}): Promise<GateStatus> {
    const gate = this.gateStatus(id);
    const policy = lookup(this.options.gates, id);
    if (!policy) throw ApplicationFailure.nonRetryable(`no policy configured for gate '${id}'`, 'RunbookDefinitionError');
    gate.nonce = uuid4();
    gate.openedAt = this.now();
    gate.decidedBy = gate.decidedAt = gate.comment = gate.escalatedAt = undefined;
    gate.approvals = [];
    if (options.preApproved && options.setAside !== undefined) {
      this.record('pre-approval-set-aside', `gate ${id}: the approval by ${options.preApproved.by} at the parent run's gate does not cover this: ${options.setAside}; a person must approve here`, { by: options.preApproved.by, gate: id });
    } else if (options.preApproved) {
      // Decided at the parent run's gate (e.g. an evacuation's promote-databases): recorded, not asked again.
      const { by, at, comment } = options.preApproved;
      Object.assign(gate, { state: 'approved', decidedBy: by, decidedAt: at, comment });
      this.record('gate-approved', `gate ${id} approved by ${by} at the parent run's gate: ${comment}`, { by, gate: id });
      this.publish();
      return { ...gate };
    }
    gate.state = 'waiting';
    this.status.state = 'waiting-approval';
    this.setPhase(`gate ${id}`);
    this.record('gate-opened', `gate ${id} waits for one of: ${gate.approvers.join(', ') || '(nobody is allowed: fix the config)'}${options.briefing ? `. ${options.briefing}` : ''}`, { gate: id });
    if (options.preApproved && options.setAside !== undefined) {
      // The parent's approver believes this promotion is under way: someone must come now, not after the escalation delay.
      this.escalate('escalation', 'critical', `gate ${id} needs a person: the parent run's approval does not cover it`, `${options.setAside}. Approve or reject gate ${id} of this run (approvers: ${gate.approvers.join(', ')}).`, { gate: id });
    }
    this.publish();

    const decided = () => gate.state !== 'waiting';
    const escalateAfterMs = Math.min(policy.escalateAfterSeconds, policy.timeoutSeconds) * 1000;
    let done = await condition(decided, escalateAfterMs, { summary: `gate ${id} escalation` });
    if (!done) {
      gate.escalatedAt = this.now();
      this.escalate('escalation', 'warning', `gate ${id} still waiting`, `Gate ${id} has waited ${policy.escalateAfterSeconds}s for an approver (${gate.approvers.join(', ')}).`, { gate: id });
      const rest = (policy.timeoutSeconds * 1000) - escalateAfterMs;
      done = rest > 0 ? await condition(decided, rest, { summary: `gate ${id} timeout` }) : false;
    }
    if (!done) {
      gate.state = 'timed-out';
      gate.decidedAt = this.now();
      this.record('gate-timed-out', `gate ${id} timed out after ${policy.timeoutSeconds}s without a decision`, { gate: id });
    }
    this.status.state = 'running';
    this.publish();
    const outcome = this.gateStatus(id).state; // set by the handlers while we waited
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

  /**
   * Records the run's RPO and judges it by the rule of contract/rpo.ts against the run's
   * target (unknown is not met). A parent that aggregates its children passes their verdict.
   */
  recordRpo(rpo: Omit<RpoStatus, 'targetSeconds' | 'met' | 'verdict'>, verdict?: RpoVerdict): RpoStatus & { met: boolean; verdict: string } {
    const target = this.options.rpoTargetSeconds;
    const { met, reason } = verdict ?? judgeRpo(target, rpo);
    const recorded = { targetSeconds: target, ...rpo, met, verdict: reason };
    this.status.rpo = recorded;
    this.publish();
    return recorded;
  }

  /**
   * Records each database's replication as read before a point-of-no-return gate (status and
   * event), and returns the summary for the gate-opened event, so the approver decides with it.
   */
  recordReplication(rows: DatabaseRpoStatus[], note: string): string {
    this.status.replication = rows;
    const summary = `RPO per database before promotion (${note}): ${rows.map((r) => `${describeReplication(r)}: ${r.verdict}`).join('; ')}`;
    this.record('replication-measured', summary);
    this.publish();
    return summary;
  }

  /** Measured RTO: from detection to now (call when the service is verified). */
  recordRecovery(): { budgetSeconds: number; measuredSeconds: number; met: boolean } {
    const measuredSeconds = (Date.now() - Date.parse(this.options.context.detectedAt)) / 1000;
    this.status.rto.measuredSeconds = measuredSeconds;
    this.publish();
    return { budgetSeconds: this.options.rto.budgetSeconds, measuredSeconds, met: measuredSeconds <= this.options.rto.budgetSeconds };
  }

  /**
   * Sends a notification and waits for one delivery attempt round (channel failover
   * inside). If every channel fails, delivery goes on in the background with backoff
   * (shown in the status) and the run carries on: a DR run never waits on email.
   */
  async announce(n: Outgoing): Promise<'delivered' | 'retrying'> {
    const notification = this.notification(n);
    this.status.notifications.pending++;
    try {
      await notifications.notify.executeWithOptions(this.notifyOptions(notification), [notification]);
      this.delivered();
      return 'delivered';
    } catch (err) {
      if (isCancellation(err)) throw err;
      this.undelivered(notification, err, 1);
      this.retryDelivery(notification);
      return 'retrying';
    }
  }

  /** Sends a status update to the incident channel every `seconds` until the run ends. */
  startStatusUpdates(seconds: number, render: (status: RunbookStatus) => Pick<Outgoing, 'subject' | 'body'>): void {
    if (seconds <= 0) return;
    void this.watchers
      .run(async () => {
        for (;;) {
          await sleep(seconds * 1000, { summary: `status update every ${seconds}s` });
          this.deliver({ audience: 'incident', kind: 'status', severity: 'info', ...render(this.snapshot()) });
        }
      })
      .catch(ignoreCancellation);
  }

  /**
   * After the point of no return, for a part of the lost region this run could not reach: a watch
   * that fences or freezes it when it answers again, holding its target until then. Returns its id.
   */
  async leaveReturnWatch(duty: ReturnDuty, probeEverySeconds?: number): Promise<string> {
    const left = await leaveReturnWatch(duty, this.options.runbook, this.options.context, this.claimed, probeEverySeconds);
    this.record('return-watch', left.description);
    this.publish();
    return left.workflowId;
  }

  /** Records a child run (e.g. a database promotion of an evacuation) in the status. */
  trackChild(child: ChildStatus): void {
    const existing = this.status.children.findIndex((c) => c.workflowId === child.workflowId);
    if (existing >= 0) this.status.children[existing] = child;
    else this.status.children.push(child);
    this.publish();
  }

  // ---- recovery -----------------------------------------------------------

  private async recover(err: TemporalFailure): Promise<TemporalFailure> {
    this.recovering = true;
    for (const gate of this.status.gates) if (gate.state === 'waiting') gate.state = 'cancelled';
    this.status.error = { type: failureType(err), message: describe(err) };
    if (this.status.pointOfNoReturnPassed) {
      this.record('finished', `failed past the point of no return: no rollback offered (${describe(err)})`);
      this.escalate('needs-attention', 'critical', 'failed past the point of no return', `The run failed after an irreversible step; finish the procedure by hand. Cause: ${describe(err)}`);
      this.finish('failed', 'failed');
      return err;
    }
    await this.compensate();
    this.finish('rolled-back', 'rolled back');
    if (this.options.announceFailure) {
      const subject = `${this.options.runbook} of ${this.options.target} FAILED`;
      const body = `${describe(err)}. Every undo ran (${this.status.steps.filter((s) => s.state === 'compensated').map((s) => s.id).join(', ') || 'nothing to undo'}).`;
      this.deliver({ audience: 'incident', kind: 'final', severity: 'critical', subject, body });
      this.escalate('final', 'critical', subject, body);
    }
    if (this.rollbackForRtoBreach) {
      return ApplicationFailure.create({
        type: FailureType.RtoBudgetExceeded,
        message: `RTO budget of ${this.options.rto.budgetSeconds}s exceeded; policy rollback: the run was rolled back`,
        nonRetryable: true,
      });
    }
    return err;
  }

  /** Runs the undos in reverse; a failed undo waits for a person instead of ending the run silently. */
  private async compensate(): Promise<void> {
    this.status.state = 'compensating';
    this.setPhase('compensating');
    this.publish();
    await CancellationScope.nonCancellable(async () => {
      for (const compensation of [...this.compensations].reverse()) {
        const step = this.stepStatus(compensation.stepId);
        for (;;) {
          try {
            await compensation.undo();
            step.state = 'compensated';
            step.endedAt = this.now();
            this.witness({ kind: 'step-compensated', step: step.id, detail: `undo of step ${step.id} done` });
            break;
          } catch (err) {
            this.status.state = 'needs-attention';
            this.setPhase(`needs-attention: undo ${step.id}`);
            this.record('compensation-failed', `undo of step ${step.id} failed: ${describe(err)}; waiting for a 'resolve' signal`, { step: step.id });
            this.escalate('needs-attention', 'critical', `undo of ${step.id} failed`, `The undo of step ${step.id} failed (${describe(err)}). Fix it, then send 'resolve' with action retry or done-by-hand.`, { step: step.id });
            this.publish();
            this.pendingResolution = undefined;
            await condition(() => this.pendingResolution !== undefined);
            const resolution = this.pendingResolution as ResolveRequest | undefined;
            this.status.state = 'compensating';
            this.setPhase('compensating');
            if (resolution?.action === 'done-by-hand') {
              step.state = 'compensated';
              step.note = `undone by hand by ${resolution.by}: ${resolution.comment}`;
              break;
            }
          }
        }
        this.publish();
      }
      this.compensations = [];
    });
  }

  private passPointOfNoReturn(step: StepStatus): void {
    const guard = this.options.plan.gates.find((g) => g.before === step.id);
    const gate = guard && this.gateStatus(guard.id);
    if (!gate || gate.state !== 'approved') {
      throw ApplicationFailure.nonRetryable(`irreversible step ${step.id} is not preceded by an approved gate`, 'RunbookDefinitionError');
    }
    const sealed = this.compensations.map((c) => c.stepId);
    this.compensations = [];
    this.status.pointOfNoReturnPassed = true;
    this.status.rollbackAvailable = false;
    for (const s of this.status.steps) if (s.state === 'done' || s.state === 'skipped') s.pastPointOfNoReturn = true;
    step.pastPointOfNoReturn = true;
    this.record('point-of-no-return', `step ${step.id} is irreversible; undos no longer offered: ${sealed.join(', ') || 'none'}`, { step: step.id });
  }

  // ---- budgets ------------------------------------------------------------

  private startRtoBudget(): void {
    const deadline = Date.parse(this.options.context.detectedAt) + this.options.rto.budgetSeconds * 1000;
    void this.watchers
      .run(async () => {
        const remaining = deadline - Date.now();
        if (remaining > 0) await sleep(remaining, { summary: 'RTO budget' });
        this.onRtoBreach();
      })
      .catch(ignoreCancellation);
  }

  private onRtoBreach(): void {
    const rto = this.status.rto;
    rto.breached = true;
    rto.breachedAt = this.now();
    upsertSearchAttributes([{ key: searchAttributes.rtoBreached, value: true }]);
    // Once the run is rolling back, a breach is recorded but changes nothing (the real failure stays the cause).
    const rollback = rto.onBreach === 'rollback' && !this.status.pointOfNoReturnPassed && !this.recovering;
    const action = rollback ? 'policy rollback: rolling back' : rto.onBreach === 'rollback' ? 'policy rollback, but past the point of no return: continuing' : 'policy continue';
    this.record('rto-breach', `RTO budget of ${rto.budgetSeconds}s exceeded; ${action}`);
    this.escalate('rto-breach', 'critical', `RTO budget exceeded (${rto.budgetSeconds}s)`, `The recovery-time budget of ${rto.budgetSeconds}s from detection is spent; ${action}.`);
    this.publish();
    if (rollback) {
      this.rollbackForRtoBreach = true;
      this.mainScope.cancel();
    }
  }

  private watchStepBudget(step: StepStatus): CancellationScope {
    const scope = new CancellationScope();
    const seconds = step.budgetSeconds;
    if (seconds !== undefined) {
      void scope
        .run(async () => {
          await sleep(seconds * 1000, { summary: `step ${step.id} budget` });
          step.budgetBreached = true;
          this.record('step-budget-breach', `step ${step.id} exceeded its budget of ${seconds}s`, { step: step.id });
          this.escalate('rto-breach', 'warning', `step ${step.id} over budget`, `Step ${step.id} has run longer than its ${seconds}s budget.`, { step: step.id });
          this.publish();
        })
        .catch(ignoreCancellation);
    }
    return scope;
  }

  // ---- messages -----------------------------------------------------------

  private registerHandlers(): void {
    setHandler(statusQuery, () => this.snapshot());
    const onSignal = (decision: 'approve' | 'reject') => (payload: GateDecision) => {
      const request = { ...(isObject(payload) ? payload : {}), decision } as DecideRequest;
      const refusal = refuseDecision(payload === undefined ? undefined : request, this.status.gates, this.options.context, { workflowId: workflowInfo().workflowId });
      if (refusal) {
        this.record('decision-refused', `${decision} refused: ${refusal}`, { by: str(request.approver), gate: str(request.gate) });
        log.warn('gate decision refused', { decision, refusal });
        this.publish();
        return;
      }
      this.applyDecision(request);
    };
    setHandler(approveSignal, onSignal('approve'));
    setHandler(rejectSignal, onSignal('reject'));
    // The validators reject only what is not a request at all; every rule is checked in the handler,
    // so a refusal is recorded in the run (and its evidence) and the caller still gets the reason.
    setHandler(decideUpdate, (request) => {
      if (request.decision !== 'approve' && request.decision !== 'reject') return this.refuse('decide', request, 'decision must be "approve" or "reject"');
      return this.applyDecision(request);
    }, {
      validator: (request) => {
        if (!isObject(request)) throw new Error('a decision must be an object {gate, approver, decision, comment?, nonce?, signature?}');
      },
    });
    setHandler(requestCancelUpdate, (request) => {
      const refusal = refuseOperator(request.by, this.options.context, 'cancel a run')
        ?? (typeof request.reason !== 'string' || request.reason.trim() === '' ? 'a cancel needs a reason' : undefined)
        ?? (isFinalState(this.status.state) ? `the run has already ended (${this.status.state})` : undefined)
        ?? (this.status.pointOfNoReturnPassed ? 'the run is past its point of no return: cancelling would not roll it back; let it finish or resolve by hand' : undefined);
      if (refusal) return this.refuse('cancel', request, refusal);
      this.record('cancel-requested', `cancel requested: ${request.reason}`, { by: request.by });
      this.publish();
      return { accepted: true as const };
    }, {
      validator: (request) => {
        if (!isObject(request)) throw new Error('a cancel request must be an object {by, reason}');
      },
    });
    setHandler(resolveSignal, (request) => {
      const refusal = refuseResolve(request, this.options.context, this.status.state === 'needs-attention' && this.pendingResolution === undefined);
      if (refusal) {
        this.record('decision-refused', `resolve refused: ${refusal}`, { by: isObject(request) ? str(request.by) : undefined });
        this.publish();
        return;
      }
      this.record('resolved', `${request.action}: ${request.comment}`, { by: request.by });
      this.pendingResolution = request;
    });
  }

  /** Records a refused Update (who, what, which rule) and fails it with the reason. */
  private refuse(what: 'decide' | 'cancel', request: { approver?: unknown; by?: unknown; gate?: unknown; decision?: unknown }, refusal: string): never {
    const by = str(request.approver) ?? str(request.by);
    this.record('decision-refused', `${what === 'decide' ? String(request.decision ?? 'decision') : 'cancel'} refused: ${refusal}`, { by, gate: str(request.gate) });
    this.publish();
    throw ApplicationFailure.nonRetryable(refusal, 'DecisionRefused');
  }

  private applyDecision(request: DecideRequest): DecideResult {
    const refusal = refuseDecision(request, this.status.gates, this.options.context, { workflowId: workflowInfo().workflowId });
    if (refusal) return this.refuse('decide', request, refusal);
    const gate = this.gateStatus(request.gate);
    const at = this.now();
    // Verified by refuseDecision above: a signature here is the approver's, for this opening.
    const signed = request.signature !== undefined ? ' (signed)' : '';
    if (request.decision === 'approve') {
      gate.approvals.push({ by: request.approver, at, comment: request.comment, ...(signed ? { signed: true } : {}) });
      if (gate.approvals.length < gate.required) {
        // A two-person gate: the first approval is recorded, the gate keeps waiting for a different person.
        this.record('gate-approved', `gate ${gate.id}: approval ${gate.approvals.length} of ${gate.required} by ${request.approver}${signed}${request.comment ? `: ${request.comment}` : ''}`, { by: request.approver, gate: gate.id });
        this.publish();
        return { gate: gate.id, state: gate.state, decidedBy: request.approver, decidedAt: at };
      }
    }
    gate.state = request.decision === 'approve' ? 'approved' : 'rejected';
    gate.decidedBy = request.decision === 'approve' ? gate.approvals.map((a) => a.by).join(' + ') : request.approver;
    gate.decidedAt = at;
    gate.comment = request.comment;
    this.record(request.decision === 'approve' ? 'gate-approved' : 'gate-rejected', `gate ${gate.id} ${gate.state} by ${gate.decidedBy}${signed}${request.comment ? `: ${request.comment}` : ''}`, { by: request.approver, gate: gate.id });
    this.publish();
    return { gate: gate.id, state: gate.state, decidedBy: gate.decidedBy, decidedAt: at };
  }

  // ---- status -------------------------------------------------------------

  /** A copy with the RTO clock as of now (workflow time); read-only, so the query handler may call it. */
  private snapshot(): RunbookStatus {
    const copy = structuredCloneStatus(this.status);
    if (!isFinalState(copy.state)) {
      copy.rto.elapsedSeconds = Math.max(0, (Date.now() - Date.parse(copy.detectedAt)) / 1000);
      copy.rto.remainingSeconds = copy.rto.budgetSeconds - copy.rto.elapsedSeconds;
    }
    return copy;
  }

  private finish(state: RunState, phase: string, extra: { result?: object } = {}): void {
    this.status.rto = this.snapshot().rto; // freeze the clock at the end
    this.status.state = state;
    this.setPhase(phase);
    this.record('finished', `run ${state}`);
    const { rto, rpo, error } = this.status;
    const measured = (extra.result as { rto?: unknown; rpo?: unknown } | undefined) ?? {};
    this.witness({ kind: 'finished', detail: `run ${state}`, outcome: { state, rto: measured.rto ?? rto, rpo: measured.rpo ?? rpo, ...(error ? { error } : {}) } });
    // The chain ends here: its head goes into the result; a late signal is in the history, not in the chain.
    this.evidenceSealed = true;
  }

  private setPhase(phase: string): void {
    this.status.phase = phase;
  }

  /** Mirrors the status in the Temporal UI and keeps the phase search attribute current. */
  private publish(): void {
    setCurrentDetails(renderStatusMarkdown(this.snapshot()));
    if (this.status.phase !== this.lastPublishedPhase) {
      this.lastPublishedPhase = this.status.phase;
      upsertSearchAttributes([{ key: searchAttributes.phase, value: this.status.phase }]);
    }
  }

  private upsertStartAttributes(): void {
    const pairs: SearchAttributeUpdatePair[] = [
      { key: searchAttributes.runbook, value: this.options.runbook },
      { key: searchAttributes.drill, value: this.options.context.drill },
      { key: searchAttributes.rtoBreached, value: false },
    ];
    if (this.options.context.incident) pairs.push({ key: searchAttributes.incident, value: this.options.context.incident });
    upsertSearchAttributes(pairs);
  }

  private record(kind: RunEvent['kind'], detail: string, extra: Partial<Pick<RunEvent, 'by' | 'gate' | 'step'>> = {}): void {
    this.status.events.push({ at: this.now(), kind, detail, ...extra });
    log.info(detail, { kind, ...extra });
    // Every decision, refusal and failure is evidence; the end is witnessed with its outcome by finish().
    if (kind !== 'finished') this.witness({ kind, detail, ...extra });
  }

  /** Pages the on-call (SMS, then voice) without waiting; the page survives cancellation. */
  private escalate(kind: Notification['kind'], severity: Notification['severity'], subject: string, body: string, extra: Partial<Pick<RunEvent, 'gate' | 'step'>> = {}): void {
    this.record('escalation', `${severity}: ${subject}`, extra);
    this.deliver({ audience: 'oncall', kind, severity, subject, body });
  }

  /** Delivers in the background, retrying with backoff until delivered or the run ends. */
  private deliver(n: Outgoing): void {
    const notification = this.notification(n);
    this.status.notifications.pending++;
    this.track(
      CancellationScope.nonCancellable(async () => {
        try {
          await notifications.notify.executeWithOptions(this.notifyOptions(notification), [notification]);
          this.delivered();
        } catch (err) {
          this.undelivered(notification, err, 1);
          // A status update is stale by the next one: only pages and declarations keep retrying.
          if (notification.kind === 'status') return this.abandoned();
          await this.retryDeliveryLoop(notification);
        }
      }),
    );
  }

  private retryDelivery(notification: Notification): void {
    this.track(CancellationScope.nonCancellable(() => this.retryDeliveryLoop(notification)));
  }

  private track(delivery: Promise<unknown>): void {
    const tracked = delivery.catch(ignoreCancellation).finally(() => this.deliveries.delete(tracked));
    this.deliveries.add(tracked);
  }

  private abandoned(): void {
    this.status.notifications.pending--;
  }

  private async retryDeliveryLoop(notification: Notification): Promise<void> {
    for (let attempt = 2; ; attempt++) {
      const backoff = Math.min(2 ** (attempt - 2) * NOTIFY_BACKOFF_MS, NOTIFY_BACKOFF_MAX_MS);
      await sleep(backoff, { summary: `retry notification "${notification.subject}"` });
      try {
        await notifications.notify.executeWithOptions(this.notifyOptions(notification), [notification]);
        this.delivered();
        this.record('escalation', `delivered "${notification.subject}" after ${attempt} rounds`);
        this.publish();
        return;
      } catch (err) {
        this.undelivered(notification, err, attempt);
      }
    }
  }

  private notifyOptions(n: Notification) {
    return {
      startToCloseTimeout: '60 seconds',
      retry: { initialInterval: '1 second', maximumAttempts: 2 },
      summary: `notify ${n.audience}: ${n.subject}`,
    } as const;
  }

  private delivered(): void {
    this.status.notifications.pending--;
    this.status.notifications.delivered++;
  }

  private undelivered(notification: Notification, err: unknown, round: number): void {
    const counters = this.status.notifications;
    counters.failedRounds++;
    counters.lastError = describe(err);
    this.record('notification-failed', `round ${round}: could not deliver "${notification.subject}" to ${notification.audience}: ${describe(err)}; retrying`);
    this.publish();
  }

  private notification(n: Outgoing): Notification {
    const { workflowId, runId, namespace } = workflowInfo();
    const ui = this.options.context.uiUrl;
    const { rto } = this.snapshot();
    const clock = rto.breached
      ? `RTO budget of ${rto.budgetSeconds}s BREACHED (${Math.round(rto.elapsedSeconds)}s elapsed)`
      : `RTO ${Math.round(rto.elapsedSeconds)}s elapsed, ${Math.round(rto.remainingSeconds)}s left of ${rto.budgetSeconds}s`;
    return {
      ...n,
      subject: `[${this.options.runbook}${this.options.context.drill ? ' drill' : ''}] ${n.subject}`,
      // Every message says where the run stands, so a reader needs nothing else at 3 a.m.
      body: `${n.body}\n\nPhase: ${this.status.phase} (${this.status.state}). ${clock}.`,
      workflowId,
      runbook: this.options.runbook,
      incident: this.options.context.incident,
      link: ui ? `${ui.replace(/\/$/, '')}/namespaces/${namespace}/workflows/${encodeURIComponent(workflowId)}/${runId}` : undefined,
    };
  }

  private stepStatus(id: string): StepStatus {
    const step = this.status.steps.find((s) => s.id === id);
    if (!step) throw ApplicationFailure.nonRetryable(`unknown step '${id}' (not in the runbook plan)`, 'RunbookDefinitionError');
    return step;
  }

  private gateStatus(id: string): GateStatus {
    const gate = this.status.gates.find((g) => g.id === id);
    if (!gate) throw ApplicationFailure.nonRetryable(`unknown gate '${id}' (not in the runbook plan)`, 'RunbookDefinitionError');
    return gate;
  }

  private now(): string {
    return new Date().toISOString();
  }
}


function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}

function str(value: unknown): string | undefined {
  return typeof value === 'string' ? value.slice(0, 200) : undefined;
}

function structuredCloneStatus(status: RunbookStatus): RunbookStatus {
  return JSON.parse(JSON.stringify(status)) as RunbookStatus;
}
