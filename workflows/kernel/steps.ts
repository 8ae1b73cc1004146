/**
 * Steps and compensation: each named step with its state and timing, the undo
 * registered beside it (before the action, for a step that can half-apply),
 * the point of no return that seals the undos before it, and how a failed run
 * ends: its undos run in reverse (needs-attention while one keeps failing), or,
 * past the point of no return, it ends failed and pages.
 */
import { ApplicationFailure, CancellationScope, condition, isCancellation, type TemporalFailure } from '@temporalio/workflow';
import { FailureType } from '../../contract/failures';
import type { ResolveRequest, StepStatus } from '../../contract/runbook';
import type { Clocks } from './clocks';
import { definitionError, failureMessage, failureType, wrapStepFailure } from './failures';
import type { RunLedger } from './ledger';
import type { Notifier } from './notifications';

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

export class Steps {
  private compensations: Compensation[] = [];
  private pendingResolution: ResolveRequest | undefined;
  /** Failed undos so far: each one a person resolves has its own attention id. */
  private attentions = 0;
  private recovering = false;

  constructor(
    private readonly ledger: RunLedger,
    private readonly notifier: Notifier,
    private readonly clocks: Clocks,
  ) {}

  /** Runs one named step; its activity carries its own summary for the UI. */
  async run<T>(id: string, action: () => Promise<T>, options: StepOptions<T> = {}): Promise<T> {
    const step = this.ledger.stepStatus(id);
    if (step.irreversible) this.passPointOfNoReturn(step);
    step.state = 'running';
    step.startedAt = this.ledger.now();
    this.ledger.setPhase(id);
    if (options.undoIfInterrupted) this.compensations.push({ stepId: id, undo: options.undoIfInterrupted });
    const budget = this.clocks.watchStepBudget(step);
    try {
      const result = await action();
      step.state = 'done';
      step.endedAt = this.ledger.now();
      this.ledger.witness({ kind: 'step-done', step: id, detail: `step ${id} done`, outcome: { startedAt: step.startedAt, endedAt: step.endedAt } });
      this.compensations = this.compensations.filter((c) => c.stepId !== id);
      const undo = options.compensate?.(result);
      if (undo) this.compensations.push({ stepId: id, undo });
      return result;
    } catch (err) {
      step.state = 'failed';
      step.endedAt = this.ledger.now();
      step.note = isCancellation(err) ? 'cancelled' : failureMessage(err);
      this.ledger.record('step-failed', `step ${id} failed: ${step.note}`, { step: id });
      throw wrapStepFailure(id, err);
    } finally {
      budget.cancel();
      this.ledger.publish();
    }
  }

  /** A word on a step for the status and the UI (what it measured, why it waits). */
  note(id: string, text: string): void {
    this.ledger.stepStatus(id).note = text;
    this.ledger.publish();
  }

  /** Marks a done step as skipped, with the reason (e.g. the old primary was unreachable). */
  skipped(id: string, reason: string): void {
    const step = this.ledger.stepStatus(id);
    step.state = 'skipped';
    step.note = reason;
    this.ledger.publish();
  }

  /** Whether the run has begun to end on a failure (a cancel or an RTO breach then changes nothing). */
  get rollingBack(): boolean {
    return this.recovering;
  }

  /** Whether the run waits for a person to resolve a failed undo (and none has yet). */
  get awaitingResolution(): boolean {
    return this.ledger.status.state === 'needs-attention' && this.pendingResolution === undefined;
  }

  /** A person's resolution of the failed undo the run waits on (checked by the handler). */
  resolve(request: ResolveRequest): void {
    this.pendingResolution = request;
  }

  /**
   * Ends a failed run: before the point of no return the undos run in reverse and the run ends
   * rolled back; after it the run ends failed and pages, because undoing would split the brain.
   * Returns the failure the workflow ends with.
   */
  async recover(err: TemporalFailure): Promise<TemporalFailure> {
    const { status, options } = this.ledger;
    this.recovering = true;
    for (const gate of status.gates) if (gate.state === 'waiting') gate.state = 'cancelled';
    status.error = { type: failureType(err), message: failureMessage(err) };
    if (status.pointOfNoReturnPassed) {
      this.ledger.record('finished', `failed past the point of no return: no rollback offered (${failureMessage(err)})`);
      this.notifier.escalate('needs-attention', 'critical', 'failed past the point of no return', `The run failed after an irreversible step; finish the procedure by hand. Cause: ${failureMessage(err)}`);
      this.ledger.finish('failed', 'failed');
      return err;
    }
    await this.compensate();
    this.ledger.finish('rolled-back', 'rolled back');
    if (options.announceFailure) {
      const subject = `${options.runbook} of ${options.target} FAILED`;
      const body = `${failureMessage(err)}. Every undo ran (${status.steps.filter((s) => s.state === 'compensated').map((s) => s.id).join(', ') || 'nothing to undo'}).`;
      this.notifier.deliver({ audience: 'incident', kind: 'final', severity: 'critical', subject, body });
      this.notifier.escalate('final', 'critical', subject, body);
    }
    if (this.clocks.rolledBackForBreach) {
      return ApplicationFailure.create({
        type: FailureType.RtoBudgetExceeded,
        message: `RTO budget of ${options.rto.budgetSeconds}s exceeded; policy rollback: the run was rolled back`,
        nonRetryable: true,
      });
    }
    return err;
  }

  /** Runs the undos in reverse; a failed undo waits for a person instead of ending the run silently. */
  private async compensate(): Promise<void> {
    const { status } = this.ledger;
    status.state = 'compensating';
    this.ledger.setPhase('compensating');
    this.ledger.publish();
    await CancellationScope.nonCancellable(async () => {
      for (const compensation of [...this.compensations].reverse()) {
        const step = this.ledger.stepStatus(compensation.stepId);
        for (;;) {
          try {
            await compensation.undo();
            step.state = 'compensated';
            step.endedAt = this.ledger.now();
            this.ledger.witness({ kind: 'step-compensated', step: step.id, detail: `undo of step ${step.id} done` });
            break;
          } catch (err) {
            status.state = 'needs-attention';
            // A resolution names this failed undo (and a signed one is bound to it): a stale one is refused.
            this.attentions += 1;
            status.attention = { id: `${step.id}#${this.attentions}`, step: step.id };
            this.ledger.setPhase(`needs-attention: undo ${step.id}`);
            this.ledger.record('compensation-failed', `undo of step ${step.id} failed: ${failureMessage(err)}; waiting for a 'resolve' signal`, { step: step.id });
            this.notifier.escalate('needs-attention', 'critical', `undo of ${step.id} failed`, `The undo of step ${step.id} failed (${failureMessage(err)}). Fix it, then send 'resolve' with action retry or done-by-hand.`, { step: step.id });
            this.ledger.publish();
            this.pendingResolution = undefined;
            await condition(() => this.pendingResolution !== undefined);
            const resolution = this.pendingResolution as ResolveRequest | undefined;
            status.state = 'compensating';
            status.attention = undefined;
            this.ledger.setPhase('compensating');
            if (resolution?.action === 'done-by-hand') {
              step.state = 'compensated';
              step.note = `undone by hand by ${resolution.by}: ${resolution.comment}`;
              break;
            }
          }
        }
        this.ledger.publish();
      }
      this.compensations = [];
    });
  }

  /** An irreversible step starts: it must follow its approved gate, and the undos before it are no longer offered. */
  private passPointOfNoReturn(step: StepStatus): void {
    const { status, options } = this.ledger;
    const guard = options.plan.gates.find((g) => g.before === step.id);
    const gate = guard && this.ledger.gateStatus(guard.id);
    if (!gate || gate.state !== 'approved') {
      throw definitionError(`irreversible step ${step.id} is not preceded by an approved gate`);
    }
    const sealed = this.compensations.map((c) => c.stepId);
    this.compensations = [];
    status.pointOfNoReturnPassed = true;
    status.rollbackAvailable = false;
    for (const s of status.steps) if (s.state === 'done' || s.state === 'skipped') s.pastPointOfNoReturn = true;
    step.pastPointOfNoReturn = true;
    this.ledger.record('point-of-no-return', `step ${step.id} is irreversible; undos no longer offered: ${sealed.join(', ') || 'none'}`, { step: step.id });
  }
}
