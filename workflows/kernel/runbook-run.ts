/**
 * The runbook kernel as a runbook sees it: steps, gates, compensation, the RTO
 * budget and the status, so a runbook file reads as the DR procedure and not
 * as Temporal plumbing. RunbookRun composes the kernel's rooms (ledger.ts at
 * the bottom; evidence, notifications, clocks, steps, gates, messages above
 * it) and keeps the run's lifecycle: its admission under the worker's policy
 * (admission.ts), the targets it holds, the scopes its
 * procedure and watchers run in, and how a cancel and the end are handled.
 * Deterministic orchestration only: every side effect is an activity.
 */
import { ApplicationFailure, CancellationScope, patched, sleep, TemporalFailure, workflowInfo } from '@temporalio/workflow';
import { FailureType } from '../../contract/failures';
import type { TargetRef } from '../../contract/holds';
import type { ReturnDuty } from '../../contract/return-watch';
import type { RpoVerdict } from '../../contract/rpo';
import type { ChildStatus, DatabaseRpoStatus, GateStatus, RpoStatus, RtoPolicy, RunArtifact, RunbookStatus, RunContext, SkippedRun } from '../../contract/runbook';
import type { RtoOutcome, RunOutcome } from '../../contract/outcome';
import { admit } from './admission';
import type { PreApproval } from '../../contract/governance';
import { clockedContext, Clocks } from './clocks';
import { EvidenceChain } from './evidence';
import { failureMessage } from './failures';
import { Gates, type GateOptions } from './gates';
import { claimHolds, releaseHolds, type ClaimedHold } from './holds';
import { RunLedger } from './ledger';
import { registerHandlers } from './messages';
import { Notifier, type Outgoing } from './notifications';
import type { GateId, Plan, RunbookRunOptions, StepId } from './plan';
import { leaveReturnWatch } from './return-watches';
import { Steps, type StepOptions } from './steps';

/** Runs started before records outlived their run replay the old close: waiting for the bucket, a minute for the channels. */
const PATCH_RECORDS_OUTLIVE_RUN = 'lifeboat-records-outlive-run';
/** Runs started before the ledger replay a close that anchors nothing. */
const PATCH_EVIDENCE_ANCHOR = 'lifeboat-evidence-anchor';
/** How long a closing run gives its last evidence records and pages before it hands them over. */
const CLOSE_GRACE_MS = 5_000;

export { failureMessage, isDeadline } from './failures';
export type { GateDefinition, GateId, Plan, RunbookRunOptions, StepDefinition, StepId } from './plan';
export type { GateOptions, PreApproval } from './gates';

/** Runs admitted under the worker's policy at start; earlier histories replay without the admission activity. */
const PATCH_WORKER_POLICY = 'lifeboat-worker-policy';
export type { Outgoing } from './notifications';
export type { StepOptions, Undo } from './steps';

/** What RunbookRun.of reads from every runbook's input: who started it and its policy's budgets and gates. */
export interface RunbookInputShape<P extends Plan> {
  run: RunContext;
  policy: { rto: RtoPolicy; stepBudgets: RunbookRunOptions<P>['stepBudgets']; gates?: RunbookRunOptions<P>['gates'] };
  /** A parent run's gate decision (a child promotion's): checked with that parent at admission. */
  preApproved?: PreApproval;
}

/**
 * One run of a runbook, typed by its plan `P`: a step, gate or step budget the plan does not
 * name does not compile (test/workflows/kernel/plan-ids.typecheck.ts).
 */
export class RunbookRun<P extends Plan = Plan> {
  /**
   * The procedure and the watchers run under a shield, not under the root scope:
   * a cancel of the workflow is forwarded to the procedure only while rollback is
   * still possible (see onCancelRequested), and never stops the RTO clock.
   */
  private readonly shield = new CancellationScope({ cancellable: false });
  private readonly mainScope = new CancellationScope({ cancellable: true, parent: this.shield });
  private readonly watchers = new CancellationScope({ cancellable: true, parent: this.shield });
  private readonly ledger: RunLedger;
  private readonly evidence: EvidenceChain;
  private readonly notifier: Notifier;
  private readonly clocks: Clocks;
  private readonly steps: Steps;
  private readonly gates: Gates;
  /** Target holds (runs started before holds existed replay without them). */
  private readonly holdsEnabled: boolean;
  private claimed: ClaimedHold[] = [];
  private closing: Promise<void> | undefined;
  /** What refused the run before it changed anything: a held target, or admission. */
  private refusal: { failure: TemporalFailure; by: 'hold' | 'admission' } | undefined;
  /** Admitted under the worker's policy at start (runs started before admission existed replay without it). */
  private readonly governed: boolean;
  private cancelledByUpdate = false;
  /** Started by a Schedule (the context is rewritten, so this is kept apart). */
  private readonly scheduledRun: boolean;

  /**
   * A run of `definition` for `input`, with what every runbook passes the same way: its name, plan,
   * context, RTO policy, step budgets and gate policies from the input's policy, and the targets the
   * definition says a run holds. `options` gives the target and the RPO target, and overrides the rest.
   */
  static of<P extends Plan, I extends RunbookInputShape<P>>(
    definition: { readonly name: string; readonly plan: P; holds(input: I): TargetRef[] },
    input: I,
    options: Pick<RunbookRunOptions<P>, 'target' | 'rpoTargetSeconds'> & Partial<Pick<RunbookRunOptions<P>, 'stepBudgets' | 'gates' | 'announceFailure'>>,
  ): RunbookRun<P> {
    const gates = options.gates ?? input.policy.gates;
    if (gates === undefined) throw ApplicationFailure.nonRetryable(`runbook ${definition.name} gives no gate policies (neither its policy nor its run options have gates)`, 'RunbookDefinitionError');
    return new RunbookRun<P>({
      runbook: definition.name,
      plan: definition.plan,
      context: input.run,
      rto: input.policy.rto,
      stepBudgets: input.policy.stepBudgets,
      holds: definition.holds(input),
      // The whole input, which the initiator's start signature covers, and a child's pre-approval.
      input,
      ...(input.preApproved ? { preApproved: input.preApproved } : {}),
      ...options,
      gates,
    });
  }

  constructor(options: RunbookRunOptions<P>) {
    // The order of these patched() calls is part of every recorded history.
    const { context, scheduled } = clockedContext(options.context);
    this.evidence = new EvidenceChain(options.runbook, patched('lifeboat-evidence-chain'));
    this.scheduledRun = scheduled;
    this.holdsEnabled = (options.holds?.length ?? 0) > 0 && patched('lifeboat-target-holds');
    this.governed = patched(PATCH_WORKER_POLICY);
    this.ledger = new RunLedger({ ...options, context }, this.evidence);
    this.notifier = new Notifier(this.ledger, this.watchers);
    this.clocks = new Clocks(this.ledger, this.notifier, this.watchers, {
      possible: () => !this.steps.rollingBack,
      start: () => this.mainScope.cancel(),
    });
    this.steps = new Steps(this.ledger, this.notifier, this.clocks);
    this.gates = new Gates(this.ledger, this.notifier);
    registerHandlers(this.ledger, this.gates, this.steps, { governed: this.governed, cancelAccepted: () => this.cancelFromUpdate() });
  }

  /**
   * Runs the procedure. On a failure, a rejection or a cancel before the point of
   * no return, the registered undos run in reverse and the run ends rolled back;
   * after it, the run ends failed and pages, because undoing would split the brain.
   */
  async execute<T extends object>(procedure: () => Promise<T>): Promise<T & Pick<RunOutcome, 'evidence'>> {
    const outcome = await this.run(procedure, 'fail');
    if ('skipped' in outcome) throw ApplicationFailure.nonRetryable('a run that may not skip was skipped', 'RunbookDefinitionError');
    return outcome;
  }

  /**
   * As execute, but a scheduled run (a drill) that finds its target held by another run
   * (a real incident) ends `skipped`, recorded, instead of failing or queueing behind it.
   */
  async executeOrSkip<T extends object>(procedure: () => Promise<T>): Promise<(T & Pick<RunOutcome, 'evidence'>) | SkippedRun> {
    return this.run(procedure, this.scheduledRun ? 'skip' : 'fail');
  }

  /** Who the run is, with a scheduled run's clock set to its start: what child runs inherit. */
  get context(): RunContext {
    return this.ledger.context;
  }

  /** Runs one named step; its activity carries its own summary for the UI. */
  step<T>(id: StepId<P>, action: () => Promise<T>, options: StepOptions<T> = {}): Promise<T> {
    return this.steps.run(id, action, options);
  }

  /** A word on a step for the status and the UI (what it measured, why it waits). */
  note(id: StepId<P>, text: string): void {
    this.steps.note(id, text);
  }

  /** Marks a done step as skipped, with the reason (e.g. the old primary was unreachable). */
  skipped(id: StepId<P>, reason: string): void {
    this.steps.skipped(id, reason);
  }

  /**
   * Waits for an authorised approver. Escalates after `escalateAfterSeconds`, rejects
   * as timed out after `timeoutSeconds`; a rejection throws GateRejected.
   * `preApproved`: decided at a parent run's gate, recorded and not asked again, unless
   * `setAside` gives a reason why that approval does not cover what this run found
   * (e.g. an RPO beyond the target): then a person must decide here, and the on-call is paged.
   * `briefing`: what the approver should see, added to the gate-opened event.
   */
  gate(id: GateId<P>, options: GateOptions = {}): Promise<GateStatus> {
    return this.gates.open(id, options);
  }

  /** A document the run stored with its evidence, sealed in the chain by its digest (see RunLedger.attach). */
  attach(artifact: Omit<RunArtifact, 'at' | 'step'> & { step?: StepId<P> }): void {
    this.ledger.attach(artifact);
  }

  /** The run's RPO, judged by contract/rpo.ts against the run's target (unknown is not met). */
  recordRpo(rpo: Omit<RpoStatus, 'targetSeconds' | 'met' | 'verdict'>, verdict?: RpoVerdict): RpoStatus & { met: boolean; verdict: string } {
    return this.ledger.recordRpo(rpo, verdict);
  }

  /** Each database's replication before a point-of-no-return gate; returns the gate's briefing. */
  recordReplication(rows: DatabaseRpoStatus[], note: string): string {
    return this.ledger.recordReplication(rows, note);
  }

  /** Measured RTO: from detection to now (call when the service is verified). */
  recordRecovery(): RtoOutcome {
    return this.clocks.recordRecovery();
  }

  /** Sends a notification and waits for one delivery round; delivery goes on in the background if it failed. */
  announce(n: Outgoing): Promise<'delivered' | 'retrying'> {
    return this.notifier.announce(n);
  }

  /** Sends a status update to the incident channel every `seconds` until the run ends. */
  startStatusUpdates(seconds: number, render: (status: RunbookStatus) => Pick<Outgoing, 'subject' | 'body'>): void {
    this.notifier.startStatusUpdates(seconds, render);
  }

  /** Records a child run (e.g. a database promotion of an evacuation) in the status. */
  trackChild(child: ChildStatus): void {
    this.ledger.trackChild(child);
  }

  /**
   * After the point of no return, for a part of the lost region this run could not reach: a watch
   * that fences or freezes it when it answers again, holding its target until then. Returns its id.
   */
  async leaveReturnWatch(duty: ReturnDuty, probeEverySeconds?: number): Promise<string> {
    const left = await leaveReturnWatch(duty, this.ledger.runbook, this.ledger.context, this.claimed, probeEverySeconds);
    this.ledger.record('return-watch', left.description);
    this.ledger.publish();
    return left.workflowId;
  }

  private async run<T extends object>(procedure: () => Promise<T>, whenHeld: 'fail' | 'skip'): Promise<(T & Pick<RunOutcome, 'evidence'>) | SkippedRun> {
    const { ledger } = this;
    const { runbook, target } = ledger.options;
    ledger.record('started', `${runbook} on ${target} started by ${ledger.context.initiator}`);
    ledger.upsertStartAttributes();
    // A run with holds starts its RTO clock once it holds its targets: a refused run never pages a breach.
    if (!this.holdsEnabled) this.clocks.startRtoBudget();
    ledger.publish();
    CancellationScope.current().cancelRequested.catch(() => this.onCancelRequested());
    try {
      if (this.governed) await this.mainScope.run(() => this.admit());
      if (this.holdsEnabled) {
        await this.mainScope.run(() => this.claimTargets());
        this.clocks.startRtoBudget();
      }
      const result = await this.mainScope.run(procedure);
      ledger.finish('completed', 'completed', { result });
      await this.close();
      // The chain head in the result (and what is still pending): editing or truncating the stored log is detected against it.
      return this.evidence.enabled ? { ...result, evidence: this.evidence.current() } : result;
    } catch (err) {
      if (!(err instanceof TemporalFailure)) throw err; // a bug: fail the workflow task, keep the run for a fixed worker
      if (this.refusal?.failure === err) {
        const held = this.refusal.by === 'hold';
        ledger.status.error = { type: held ? FailureType.TargetHeld : FailureType.RunRefused, message: failureMessage(err) };
        if (held && whenHeld === 'skip') {
          ledger.finish('skipped', 'skipped: target held');
          return { skipped: { reason: failureMessage(err) } };
        }
        ledger.finish('refused', held ? 'refused: target held' : "refused by the worker's policy");
        throw err;
      }
      throw await this.steps.recover(err);
    } finally {
      await this.close();
    }
  }

  /** The run's end, once whichever way it ends: free the targets, then the last records and pages. */
  private close(): Promise<void> {
    this.closing ??= (async () => {
      this.watchers.cancel();
      this.ledger.publish();
      // The targets are free for the next run as soon as this one can change nothing more.
      if (this.claimed.length > 0) await CancellationScope.nonCancellable(() => releaseHolds(this.claimed));
      if (!patched(PATCH_RECORDS_OUTLIVE_RUN)) {
        await this.notifier.flush();
        await this.evidence.settled();
        return;
      }
      await CancellationScope.nonCancellable(() => this.handOffRecords());
    })();
    return this.closing;
  }

  /**
   * A parent waits on this run's outcome, not on a bucket or a phone: the last evidence records and
   * final pages get a few seconds, then what is left goes to workflows that outlive the run (its
   * evidence keeper, its pager) and the run closes; its result and status say what is pending.
   * The sealed chain's head is anchored in the Object Lock ledger within the same grace.
   */
  private async handOffRecords(): Promise<void> {
    const anchoring = this.evidence.enabled && patched(PATCH_EVIDENCE_ANCHOR) ? this.evidence.anchor() : undefined;
    if (!this.notifier.idle || !this.evidence.stored || anchoring) {
      await Promise.race([Promise.all([this.notifier.settled(), this.evidence.settled(), anchoring]), sleep(CLOSE_GRACE_MS, { summary: 'last evidence records and pages' })]);
    }
    // Never a reason to fail a run that has ended (or to replace its failure): a handover that fails is recorded.
    for (const handover of await Promise.allSettled([this.notifier.handOff(), this.evidence.handOff()])) {
      if (handover.status === 'rejected') this.ledger.record('escalation', `could not hand the run's last records or pages to a workflow that outlives it: ${failureMessage(handover.reason)}`);
    }
    const refused = this.evidence.anchorRefused;
    if (refused) this.ledger.record('escalation', `the evidence ledger refused the run's head, which is not anchored: ${refused}`);
    if (this.evidence.enabled) this.ledger.status.evidence = this.evidence.current();
    this.ledger.publish();
  }

  /** Admission under the worker's policy (admission.ts); a refusal ends the run before it claims or changes anything. */
  private async admit(): Promise<void> {
    try {
      const admission = await admit(this.ledger);
      this.gates.admit(admission.preApproval, admission.sentinel);
    } catch (err) {
      if (err instanceof ApplicationFailure && err.type === FailureType.RunRefused) this.refusal = { failure: err, by: 'admission' };
      throw err;
    }
  }

  /** Claims every target before the first step; a held target refuses the run with the holder named. */
  private async claimTargets(): Promise<void> {
    const { ledger } = this;
    ledger.setPhase('claiming targets');
    const { runStartTime } = workflowInfo();
    const targets: readonly TargetRef[] = ledger.options.holds ?? [];
    try {
      await claimHolds(
        targets,
        { runbook: ledger.runbook, initiator: ledger.context.initiator, startedAt: runStartTime.toISOString() },
        (detail) => ledger.record('hold', detail),
        this.claimed,
      );
    } catch (err) {
      if (err instanceof ApplicationFailure && err.type === FailureType.TargetHeld) {
        this.refusal = { failure: err, by: 'hold' };
        ledger.record('refused', failureMessage(err));
      }
      throw err;
    }
  }

  /** A cancel the run accepted through requestCancel (who, why, signed when required) rolls it back at once. */
  private cancelFromUpdate(): void {
    if (this.cancelledByUpdate) return;
    this.cancelledByUpdate = true;
    this.mainScope.cancel();
  }

  /** A cancel (CLI, UI, `temporal workflow cancel`) rolls back only before the point of no return. */
  private onCancelRequested(): void {
    if (this.cancelledByUpdate) return; // already rolling back on the accepted request
    if (this.governed && this.ledger.context.signatures === 'required') {
      // Nobody signed this one: a raw `temporal workflow cancel` must not roll a run back where the worker requires signatures.
      this.ledger.record('cancel-requested', "cancel ignored: this run's cancels must be signed ('lifeboat cancel … --key'); a raw workflow cancel names nobody");
      this.notifier.escalate('escalation', 'warning', 'unsigned cancel ignored', 'Someone cancelled the run without a signed cancel request; it carries on. Cancel it with lifeboat cancel --key if it must stop.');
      this.ledger.publish();
      return;
    }
    if (this.ledger.status.pointOfNoReturnPassed || this.steps.rollingBack) {
      this.ledger.record('cancel-requested', 'cancel ignored: the run is past its point of no return (or already rolling back); it carries on');
      this.notifier.escalate('escalation', 'warning', 'cancel ignored past the point of no return', 'Someone cancelled the run after its irreversible step; the run carries on to leave a consistent state.');
      this.ledger.publish();
      return;
    }
    this.mainScope.cancel();
  }
}
