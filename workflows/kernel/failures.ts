/**
 * How the kernel reads a failure: its innermost message, the type a run ends
 * with, a step's failure named after the step, a poll that ran out of time.
 * Pure functions over the SDK's failure classes: no commands.
 */
import { ActivityFailure, ApplicationFailure, ChildWorkflowFailure, isCancellation, TemporalFailure, TimeoutFailure } from '@temporalio/workflow';
import { RetryState } from '@temporalio/common';
import { FailureType } from '../../contract/failures';

/**
 * A poll loop that ran out of its schedule-to-close budget (e.g. a catch-up deadline). The server
 * does not always attach the last attempt's error, so the caller says what was not reached.
 */
export function isDeadline(err: unknown): boolean {
  if (!(err instanceof ActivityFailure)) return false;
  if (err.cause instanceof TimeoutFailure) return true;
  // When the next retry would start past the schedule-to-close deadline, the server ends the activity with the
  // last attempt's own (retryable) failure instead of a timeout: the poll ran out of time all the same.
  return err.cause instanceof ApplicationFailure && err.cause.nonRetryable !== true && err.retryState === RetryState.TIMEOUT;
}

/** The innermost message: an activity failure's cause says what went wrong; a timeout keeps the last attempt's error. */
export function failureMessage(err: unknown): string {
  if ((err instanceof ActivityFailure || err instanceof ChildWorkflowFailure) && err.cause) return failureMessage(err.cause);
  if (err instanceof ApplicationFailure && err.type === FailureType.StepFailed && err.cause) return failureMessage(err.cause);
  if (err instanceof TimeoutFailure) return err.cause ? `${err.message}: ${failureMessage(err.cause)}` : err.message;
  return err instanceof Error ? err.message : String(err);
}

/** The type a failed run reports: the first application failure's own type, past the step that wrapped it. */
export function failureType(err: unknown): string {
  let current: unknown = err;
  while (current instanceof TemporalFailure) {
    if (current instanceof ApplicationFailure && current.type && current.type !== FailureType.StepFailed) return current.type;
    current = current.cause;
  }
  return err instanceof Error ? err.name : 'Error';
}

/** A step's failure as the run reports it: named after the step, with the original kept as its cause. */
export function wrapStepFailure(id: string, err: unknown): unknown {
  if (isCancellation(err) || !(err instanceof TemporalFailure)) return err;
  if (err instanceof ApplicationFailure) return err;
  return ApplicationFailure.create({
    type: FailureType.StepFailed,
    message: `step ${id} failed: ${failureMessage(err)}`,
    nonRetryable: true,
    cause: err,
  });
}

/** Background work (watchers, deliveries) ends by cancellation when the run ends; any other error is real. */
export function ignoreCancellation(err: unknown): void {
  if (!isCancellation(err)) throw err;
}

/** A runbook that does not match its plan or policy: a bug in the runbook, never an outage. */
export function definitionError(message: string): ApplicationFailure {
  return ApplicationFailure.nonRetryable(message, 'RunbookDefinitionError');
}
