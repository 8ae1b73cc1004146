/**
 * Option profiles shared by the runbooks' activity calls.
 */
import type { ActivityOptions } from '@temporalio/workflow';
import { FailureType } from '../contract/failures';

/**
 * Polls a check that fails until its condition holds, at a steady pace, for at most `seconds` in all: the
 * deadline is the bound, not a count (Infinity, because executeWithOptions deep-merges the proxy's attempts).
 */
export function pollUntil(seconds: number, every: string, attemptTimeout: string): ActivityOptions {
  return {
    startToCloseTimeout: attemptTimeout,
    scheduleToCloseTimeout: `${seconds} seconds`,
    retry: { initialInterval: every, backoffCoefficient: 1, maximumAttempts: Number.POSITIVE_INFINITY, nonRetryableErrorTypes: [FailureType.UnknownDatabase] },
  };
}
