/**
 * The run's clocks: the RTO budget counted from detection (a durable timer;
 * on a breach, policy `continue` or `rollback` while rollback is possible),
 * per-step budgets that page when a step overruns, the measured RTO, and when
 * a scheduled run's clock starts.
 */
import { CancellationScope, patched, sleep, workflowInfo } from '@temporalio/workflow';
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
import type { RtoOutcome } from '../../contract/outcome';
import type { RunContext, StepStatus } from '../../contract/runbook';
import { ignoreCancellation } from './failures';
import type { RunLedger } from './ledger';
import type { Notifier } from './notifications';

/** Runs from before the Schedule's own record was required trusted `run.scheduled` alone. */
const PATCH_SCHEDULED_BY_SERVER = 'lifeboat-scheduled-by-server';
const SCHEDULED_BY_ID = defineSearchAttributeKey('TemporalScheduledById', SearchAttributeType.KEYWORD);

/**
 * The server sets TemporalScheduledById on a run a Schedule started. A client may set it too, so
 * admission (admission.ts) checks with the Schedule itself that it started this run.
 */
function startedBySchedule(): boolean {
  return scheduleIdOf() !== undefined;
}

/** The Schedule id the run carries (TemporalScheduledById), if any. */
export function scheduleIdOf(): string | undefined {
  const info = workflowInfo();
  const typed = info.typedSearchAttributes.get(SCHEDULED_BY_ID);
  if (typeof typed === 'string' && typed.length > 0) return typed;
  // The untyped map also carries it when the payload has no type metadata.
  const untyped = info.searchAttributes?.TemporalScheduledById;
  return Array.isArray(untyped) && typeof untyped[0] === 'string' && untyped[0].length > 0 ? untyped[0] : undefined;
}

/**
 * The run's own context: a scheduled run's input was written when the schedule was, so its clock starts with
 * the run. The input's word is not enough (anyone may start a run with `scheduled: true`): the server's record
 * of the Schedule is. `scheduled` is kept apart, since the context it returns no longer says so.
 */
export function clockedContext(given: RunContext): { context: RunContext; scheduled: boolean } {
  const scheduled = given.scheduled === true && (!patched(PATCH_SCHEDULED_BY_SERVER) || startedBySchedule());
  const context = scheduled ? { ...given, scheduled: false, detectedAt: workflowInfo().runStartTime.toISOString() } : given.scheduled ? { ...given, scheduled: false } : given;
  return { context, scheduled };
}

/** What an RTO breach under policy rollback may do to the procedure, decided where the procedure runs. */
export interface BreachRollback {
  /** False once the run is already rolling back: a breach then changes nothing. */
  possible(): boolean;
  /** Cancels the procedure, so the run rolls back. */
  start(): void;
}

export class Clocks {
  private rolledBack = false;

  /** `watchers`: the scope of the run's background work, cancelled when the run ends. */
  constructor(
    private readonly ledger: RunLedger,
    private readonly notifier: Notifier,
    private readonly watchers: CancellationScope,
    private readonly rollback: BreachRollback,
  ) {}

  /** Whether the run was rolled back because its RTO budget ran out. */
  get rolledBackForBreach(): boolean {
    return this.rolledBack;
  }

  /** A durable timer to the end of the RTO budget, from detection (never a workflow timeout: that would kill the undos). */
  startRtoBudget(): void {
    const deadline = Date.parse(this.ledger.context.detectedAt) + this.ledger.options.rto.budgetSeconds * 1000;
    void this.watchers
      .run(async () => {
        const remaining = deadline - Date.now();
        if (remaining > 0) await sleep(remaining, { summary: 'RTO budget' });
        this.onRtoBreach();
      })
      .catch(ignoreCancellation);
  }

  /** A timer for a step with a budget, cancelled when the step ends; it pages when the step overruns. */
  watchStepBudget(step: StepStatus): CancellationScope {
    const scope = new CancellationScope();
    const seconds = step.budgetSeconds;
    if (seconds !== undefined) {
      void scope
        .run(async () => {
          await sleep(seconds * 1000, { summary: `step ${step.id} budget` });
          step.budgetBreached = true;
          this.ledger.record('step-budget-breach', `step ${step.id} exceeded its budget of ${seconds}s`, { step: step.id });
          this.notifier.escalate('rto-breach', 'warning', `step ${step.id} over budget`, `Step ${step.id} has run longer than its ${seconds}s budget.`, { step: step.id });
          this.ledger.publish();
        })
        .catch(ignoreCancellation);
    }
    return scope;
  }

  /** Measured RTO: from detection to now (call when the service is verified). */
  recordRecovery(): RtoOutcome {
    const { budgetSeconds } = this.ledger.options.rto;
    const measuredSeconds = (Date.now() - Date.parse(this.ledger.context.detectedAt)) / 1000;
    this.ledger.status.rto.measuredSeconds = measuredSeconds;
    this.ledger.publish();
    return { budgetSeconds, measuredSeconds, met: measuredSeconds <= budgetSeconds };
  }

  private onRtoBreach(): void {
    const rto = this.ledger.rtoBreached();
    // Once the run is rolling back, a breach is recorded but changes nothing (the real failure stays the cause).
    const rollback = rto.onBreach === 'rollback' && !this.ledger.status.pointOfNoReturnPassed && this.rollback.possible();
    const action = rollback ? 'policy rollback: rolling back' : rto.onBreach === 'rollback' ? 'policy rollback, but past the point of no return: continuing' : 'policy continue';
    this.ledger.record('rto-breach', `RTO budget of ${rto.budgetSeconds}s exceeded; ${action}`);
    this.notifier.escalate('rto-breach', 'critical', `RTO budget exceeded (${rto.budgetSeconds}s)`, `The recovery-time budget of ${rto.budgetSeconds}s from detection is spent; ${action}.`);
    this.ledger.publish();
    if (rollback) {
      this.rolledBack = true;
      this.rollback.start();
    }
  }
}
