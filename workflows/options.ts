/**
 * The runbooks' activity option profiles, one table per adapter: each
 * activity kind names its timeouts and retries here once, and every call
 * passes its profile through call(). A profile is complete: the proxies carry
 * no defaults that a profile could silently inherit (see proxyFor).
 */
import { proxyActivities, type ActivityOptions } from '@temporalio/workflow';
import { ActivityCancellationType } from '@temporalio/workflow';
import { FailureType } from '../contract/failures';

/**
 * The activities of one adapter, without defaults. proxyActivities requires a timeout, and
 * executeWithOptions deep-merges the proxy's options into every call, so a default here would
 * leak into a profile that leaves a field out; every profile below sets startToCloseTimeout.
 */
export function proxyFor<A>(): ReturnType<typeof proxyActivities<A>> {
  return proxyActivities<A>({ startToCloseTimeout: '1 minute' });
}

/**
 * Polls a check that fails until its condition holds, at a steady pace, for at most `seconds` in all: the
 * deadline is the bound, not a count.
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

/** The database adapter (activities/database.ts): inspections, the fence, the promotion and the rebuilds. */
export const databaseProfiles = {
  read: {
    startToCloseTimeout: '30 seconds',
    retry: { initialInterval: '1 second', maximumAttempts: 3, nonRetryableErrorTypes: [FailureType.UnknownDatabase] },
  },
  /** Reading replication before a parent's gate changes nothing: a few quick attempts, then the database is shown as not measured. */
  readBeforeGate: {
    startToCloseTimeout: '30 seconds',
    retry: { initialInterval: '1 second', maximumAttempts: 3, nonRetryableErrorTypes: [FailureType.UnknownDatabase, FailureType.NotConfigured] },
  },
  /** A clean shutdown may take a while (the shutdown checkpoint): the fence heartbeats, and a cancel waits for it to end. */
  fence: {
    startToCloseTimeout: '3 minutes',
    heartbeatTimeout: '20 seconds',
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    retry: { initialInterval: '1 second', maximumAttempts: 3, nonRetryableErrorTypes: [FailureType.UnknownDatabase] },
  },
  /** The base of the unfence undo (undoProfile sets its attempts). */
  unfence: {
    startToCloseTimeout: '30 seconds',
    retry: { initialInterval: '1 second', nonRetryableErrorTypes: [FailureType.UnknownDatabase] },
  },
  /** pg_promote(wait => true) blocks up to 60 s; heartbeats let a lost worker be noticed in seconds. */
  promote: {
    startToCloseTimeout: '90 seconds',
    heartbeatTimeout: '10 seconds',
    retry: { initialInterval: '1 second', maximumAttempts: 5, nonRetryableErrorTypes: [FailureType.UnknownDatabase] },
  },
  /** Re-pointing the other standbys waits up to 30 s per node (in parallel) for each to stream; it heartbeats. */
  follow: {
    startToCloseTimeout: '2 minutes',
    heartbeatTimeout: '10 seconds',
    retry: { initialInterval: '1 second', maximumAttempts: 3, nonRetryableErrorTypes: [FailureType.UnknownDatabase, FailureType.NotConfigured] },
  },
  /** A new primary may need a moment to accept writes: poll at a steady pace. */
  verifyWrite: {
    startToCloseTimeout: '20 seconds',
    retry: { initialInterval: '1 second', backoffCoefficient: 1, maximumAttempts: 10, nonRetryableErrorTypes: [FailureType.UnknownDatabase] },
  },
  /** Not streaming may be a WAL receiver restarting: a few checks a second apart, then the refusal stands. */
  streaming: {
    startToCloseTimeout: '15 seconds',
    retry: { initialInterval: '1 second', backoffCoefficient: 1, maximumAttempts: 5, nonRetryableErrorTypes: [FailureType.UnknownDatabase] },
  },
  /** pg_rewind or a full copy of a cluster; heartbeats while it runs. */
  rebuild: {
    startToCloseTimeout: '30 minutes',
    heartbeatTimeout: '30 seconds',
    retry: { initialInterval: '5 seconds', maximumAttempts: 3, nonRetryableErrorTypes: [FailureType.NotConfigured, FailureType.StandbyNotHealthy] },
  },
} as const satisfies Record<string, ActivityOptions>;

/** The traffic adapter (activities/traffic.ts): the service, its write freeze, DNS and the synthetic checks. */
export const trafficProfiles = {
  control: {
    startToCloseTimeout: '30 seconds',
    retry: { initialInterval: '1 second', maximumAttempts: 3, nonRetryableErrorTypes: [FailureType.NotConfigured] },
  },
  /** After re-pointing, poll the checks at a steady pace until the surviving region answers. */
  verify: {
    startToCloseTimeout: '30 seconds',
    retry: { initialInterval: '1 second', backoffCoefficient: 1, maximumAttempts: 30, nonRetryableErrorTypes: [FailureType.NotConfigured] },
  },
  /** A DNS change includes waiting for INSYNC. */
  dns: {
    startToCloseTimeout: '11 minutes',
    retry: { initialInterval: '2 seconds', maximumAttempts: 3, nonRetryableErrorTypes: [FailureType.NotConfigured] },
  },
  /** While traffic ramps up, one red check stops the ramp: no retry hides it. */
  canaryCheck: {
    startToCloseTimeout: '30 seconds',
    retry: { initialInterval: '2 seconds', maximumAttempts: 1, nonRetryableErrorTypes: [FailureType.NotConfigured] },
  },
  /** The base of the evacuation's undos (unfreeze, restore the DNS weights; undoProfile sets their attempts). */
  undo: {
    startToCloseTimeout: '11 minutes',
    retry: { initialInterval: '1 second', nonRetryableErrorTypes: [FailureType.NotConfigured] },
  },
} as const satisfies Record<string, ActivityOptions>;

/** The divergence adapter (activities/divergence.ts): a former primary's stop, its WAL past the fork, its copy. */
export const divergenceProfiles = {
  /** Stopping a former primary: a fast shutdown, up to a minute. */
  stop: {
    startToCloseTimeout: '3 minutes',
    heartbeatTimeout: '30 seconds',
    retry: { initialInterval: '2 seconds', maximumAttempts: 3, nonRetryableErrorTypes: [FailureType.NotConfigured] },
  },
  /** pg_waldump over the WAL past the fork: long only when much diverged. */
  measure: {
    startToCloseTimeout: '30 minutes',
    heartbeatTimeout: '30 seconds',
    retry: { initialInterval: '5 seconds', maximumAttempts: 3, nonRetryableErrorTypes: [FailureType.NotConfigured, FailureType.FormerPrimaryRunning, FailureType.StandbyNotHealthy] },
  },
  /** Copying a data directory and reading every keyed table: hours on a large database. */
  keep: {
    startToCloseTimeout: '12 hours',
    heartbeatTimeout: '1 minute',
    retry: { initialInterval: '10 seconds', maximumAttempts: 3, nonRetryableErrorTypes: [FailureType.NotConfigured, FailureType.FormerPrimaryRunning, FailureType.NoRoomForCopy] },
  },
} as const satisfies Record<string, ActivityOptions>;

/** The evidence adapter (activities/evidence.ts), as the runbooks use it. */
export const evidenceProfiles = {
  /** Nothing is discarded before its report is stored: a store that stays down fails the step (and rolls back). */
  artifact: {
    startToCloseTimeout: '1 minute',
    retry: { initialInterval: '2 seconds', backoffCoefficient: 2, maximumInterval: '30 seconds', maximumAttempts: 10, nonRetryableErrorTypes: ['EvidenceConflict'] },
  },
} as const satisfies Record<string, ActivityOptions>;

/**
 * The backup adapter (activities/backup.ts): `transfer` streams a whole backup (a dump, a copy, a
 * read or a restore; heartbeats carry the bytes, so a lost worker is noticed in a minute, and deliver
 * a cancel), `short` is everything else. `nonRetryableErrorTypes`: the failures a runbook does not retry.
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
