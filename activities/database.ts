/**
 * Database activities used by the runbooks. Each call names a database; the
 * provider behind it (PostgreSQL today, Cloud SQL later) comes from the
 * worker's config, so connection details and secrets never enter history.
 */
import { heartbeat, log } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type {
  CatchUpResult,
  FenceResult,
  NodeEndpoint,
  PromotionOutcome,
  ReplicationInspection,
  RpoMeasurement,
  WriteCheck,
} from '../contract/database';
import type { PromotionMode } from '../contract/db-promotion';
import { FailureType } from '../contract/failures';

/** What a runbook needs from one replicated database, whatever runs it. */
export interface DatabaseProvider {
  readonly name: string;
  readonly primary: NodeEndpoint;
  readonly standby: NodeEndpoint;
  inspect(): Promise<ReplicationInspection>;
  /** Makes the old primary refuse writes. `required`: an unreachable primary is an error, not a skip. */
  fencePrimary(required: boolean): Promise<FenceResult>;
  /** Idempotent undo of the fence. */
  unfencePrimary(): Promise<void>;
  replayedUpTo(lsn: string): Promise<{ caughtUp: boolean; replayLsn: string }>;
  measureRpo(detectedAt: string): Promise<RpoMeasurement>;
  /** Idempotent: an already promoted standby is success. */
  promoteStandby(): Promise<PromotionOutcome>;
  verifyWrite(runId: string): Promise<WriteCheck>;
}

const HEARTBEAT_MS = 1000;

export function createDatabaseActivities(deps: { providers: ReadonlyMap<string, DatabaseProvider> }) {
  const provider = (database: string): DatabaseProvider => {
    const p = deps.providers.get(database);
    if (!p) {
      throw ApplicationFailure.nonRetryable(
        `unknown database '${database}': the worker's config has ${[...deps.providers.keys()].join(', ') || 'none'}`,
        FailureType.UnknownDatabase,
      );
    }
    return p;
  };

  return {
    /** Read-only: the target must be a standby in recovery (streaming, in planned mode). */
    async preflightPromotion(database: string, mode: PromotionMode): Promise<ReplicationInspection> {
      const inspection = await provider(database).inspect();
      const { standby, primary } = inspection;
      if (!standby.reachable) throw ApplicationFailure.retryable(`standby of ${database} unreachable: ${standby.error ?? ''}`, FailureType.StandbyNotHealthy);
      if (standby.inRecovery !== true) {
        throw ApplicationFailure.nonRetryable(`${database} ${standby.region} (${standby.host}:${standby.port}) is not a standby (not in recovery): nothing to promote`, FailureType.StandbyNotHealthy);
      }
      if (mode === 'planned') {
        if (!primary.reachable) {
          throw ApplicationFailure.nonRetryable(`planned promotion needs the primary of ${database}, which is unreachable (${primary.error ?? ''}); use mode=unplanned if it is lost`, FailureType.PrimaryUnreachable);
        }
        if (standby.streaming !== true) {
          throw ApplicationFailure.nonRetryable(`standby of ${database} is not streaming from the primary: a planned promotion could not prove zero data loss`, FailureType.StandbyNotHealthy);
        }
      }
      log.info('preflight passed', { database, mode, lagBytes: inspection.lagBytes, lagSeconds: inspection.lagSeconds });
      return inspection;
    },

    async fencePrimary(database: string, mode: PromotionMode): Promise<FenceResult> {
      return provider(database).fencePrimary(mode === 'planned');
    },

    async unfencePrimary(database: string): Promise<void> {
      await provider(database).unfencePrimary();
    },

    /** One check of the poll loop: fails with ReplayBehind (retried by policy) until caught up. */
    async waitForReplay(database: string, targetLsn: string): Promise<CatchUpResult> {
      const { caughtUp, replayLsn } = await provider(database).replayedUpTo(targetLsn);
      if (!caughtUp) throw ApplicationFailure.retryable(`standby of ${database} replayed to ${replayLsn}, needs ${targetLsn}`, FailureType.ReplayBehind);
      return { targetLsn, replayLsn };
    },

    async measureRpo(database: string, detectedAt: string): Promise<RpoMeasurement> {
      return provider(database).measureRpo(detectedAt);
    },

    async promoteStandby(database: string): Promise<PromotionOutcome> {
      const timer = setInterval(() => heartbeat(), HEARTBEAT_MS);
      try {
        const outcome = await provider(database).promoteStandby();
        log.info('standby promoted', { database, alreadyPromoted: outcome.alreadyPromoted, timeline: outcome.timeline });
        return outcome;
      } finally {
        clearInterval(timer);
      }
    },

    async verifyWrite(database: string, runId: string): Promise<WriteCheck> {
      return provider(database).verifyWrite(runId);
    },
  };
}

export type DatabaseActivities = ReturnType<typeof createDatabaseActivities>;
