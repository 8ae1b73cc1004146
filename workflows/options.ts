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

/**
 * An undo's options: the profile it runs with, retried `attempts` times in all (the policy's
 * compensationAttempts); then the kernel asks a person (needs-attention).
 */
export function undoProfile(base: ActivityOptions, attempts: number): ActivityOptions {
  return { ...base, retry: { ...base.retry, maximumAttempts: attempts } };
}

/**
 * The backup adapter's profiles, for the backup runbooks: `transfer` streams a whole backup (a dump, a
 * copy, a read or a restore; heartbeats carry the bytes and deliver a cancel), `short` is everything else.
 * `nonRetryableErrorTypes` are the failures a runbook does not retry.
 */
export function backupProfiles(nonRetryableErrorTypes: readonly string[]) {
  return {
    transfer: {
      startToCloseTimeout: '6 hours',
      heartbeatTimeout: '1 minute',
      retry: { initialInterval: '10 seconds', backoffCoefficient: 2, maximumAttempts: 3, nonRetryableErrorTypes: [...nonRetryableErrorTypes] },
    },
    short: {
      startToCloseTimeout: '5 minutes',
      retry: { initialInterval: '2 seconds', maximumAttempts: 5, nonRetryableErrorTypes: [...nonRetryableErrorTypes] },
    },
  } as const satisfies Record<string, ActivityOptions>;
}
