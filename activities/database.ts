/**
 * Database activities used by the runbooks. Each call names a database; the
 * provider behind it (PostgreSQL today, Cloud SQL later) comes from the
 * worker's config, so connection details and secrets never enter history.
 */
import { activityInfo, Context as ActivityContext, heartbeat, log } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type {
  CatchUpResult,
  ConfirmStreamingInput,
  FenceResult,
  MeasureReplicationInput,
  NodeEndpoint,
  PromotionOutcome,
  ReplicationInspection,
  ReplicationReading,
  RpoMeasurement,
  WriteCheck,
} from '../contract/database';
import type { PromotionMode } from '../contract/db-promotion';
import { FailureType } from '../contract/failures';
import { refusePromotion } from '../contract/preflight';
import { lsnToBigInt } from './postgres';

/** What a runbook needs from one replicated database, whatever runs it. */
export interface DatabaseProvider {
  readonly name: string;
  readonly primary: NodeEndpoint;
  readonly standby: NodeEndpoint;
  inspect(): Promise<ReplicationInspection>;
  /**
   * Makes the old primary refuse writes. `required`: an unreachable primary is an error, not a skip. `owner`: the run fencing it.
   * `supersededOnly` (a return watch, long after the promotion): fence it only if the world shows it is the node that was
   * replaced, never one that is itself the newest primary (FenceRefused).
   */
  fencePrimary(required: boolean, owner?: string, supersededOnly?: boolean): Promise<FenceResult>;
  /** Idempotent undo of `owner`'s fence: a fence another run put in place is left alone. */
  unfencePrimary(owner?: string): Promise<void>;
  replayedUpTo(lsn: string): Promise<{ caughtUp: boolean; replayLsn: string }>;
  /** Figures it cannot take stay undefined (never 0); `inspection`: measure from this reading instead of a new one. */
  measureRpo(detectedAt: string, inspection?: ReplicationInspection): Promise<RpoMeasurement>;
  /** Idempotent: an already promoted standby is success. */
  promoteStandby(): Promise<PromotionOutcome>;
  verifyWrite(runId: string): Promise<WriteCheck>;
  /** The same database with the roles swapped: promote the configured primary (failback). */
  reversed(): DatabaseProvider;
  /** Makes the old primary a streaming standby of the promoted one (pg_rewind, else a full copy). Idempotent. */
  rebuildOldPrimary(): Promise<RebuildOutcome>;
}

export interface RebuildOutcome {
  method: 'pg_rewind' | 'pg_basebackup' | 'already-a-standby';
  node: NodeEndpoint;
  source: NodeEndpoint;
  /** Why pg_rewind was not enough, when a full copy was made. */
  rewindError?: string;
}

/** Which configured node a promotion makes the primary: the standby (failover) or the primary (failback). */
export type PromotionTarget = 'standby' | 'primary';

const HEARTBEAT_MS = 1000;

/** What a return watch learns of an old primary from the main worker (read-only). */
export interface OldPrimaryProbe {
  answers: boolean;
  writable: boolean;
  node: NodeEndpoint;
  error?: string;
}


/** The run an activity acts for (workflow id and run id): what a fence's marker names as its owner. */
function runOwner(): string | undefined {
  const run = activityInfo().workflowExecution;
  return run ? `${run.workflowId}/${run.runId}` : undefined;
}

export function createDatabaseActivities(deps: { providers: ReadonlyMap<string, DatabaseProvider> }) {
  const provider = (database: string, towards: PromotionTarget = 'standby'): DatabaseProvider => {
    const p = deps.providers.get(database);
    if (!p) {
      throw ApplicationFailure.nonRetryable(
        `unknown database '${database}': the worker's config has ${[...deps.providers.keys()].join(', ') || 'none'}`,
        FailureType.UnknownDatabase,
      );
    }
    return towards === 'primary' ? p.reversed() : p;
  };

  return {
    /** Read-only: the target must be a standby in recovery (streaming, in planned mode). */
    async preflightPromotion({ database, mode, towards }: { database: string; mode: PromotionMode; towards?: PromotionTarget }): Promise<ReplicationInspection> {
      const inspection = await provider(database, towards).inspect();
      const refusal = refusePromotion(inspection, database, mode);
      if (refusal) throw refusal.retryable ? ApplicationFailure.retryable(refusal.message, refusal.type) : ApplicationFailure.nonRetryable(refusal.message, refusal.type);
      log.info('preflight passed', { database, mode, lagBytes: inspection.lagBytes, lagSeconds: inspection.lagSeconds });
      return inspection;
    },

    /** `supersededOnly`: see DatabaseProvider.fencePrimary (a return watch's fence). */
    async fencePrimary({ database, mode, towards, supersededOnly }: { database: string; mode: PromotionMode; towards?: PromotionTarget; supersededOnly?: boolean }): Promise<FenceResult> {
      const timer = setInterval(() => heartbeat(), HEARTBEAT_MS);
      try {
        return await provider(database, towards).fencePrimary(mode === 'planned', runOwner(), supersededOnly === true);
      } finally {
        clearInterval(timer);
      }
    },

    async unfencePrimary({ database, towards }: { database: string; towards?: PromotionTarget }): Promise<void> {
      await provider(database, towards).unfencePrimary(runOwner());
    },

    /** One check of the poll loop: fails with ReplayBehind (retried by policy) until caught up. */
    async waitForReplay({ database, targetLsn, towards }: { database: string; targetLsn: string; towards?: PromotionTarget }): Promise<CatchUpResult> {
      const { caughtUp, replayLsn } = await provider(database, towards).replayedUpTo(targetLsn);
      if (!caughtUp) throw ApplicationFailure.retryable(`standby of ${database} replayed to ${replayLsn}, needs ${targetLsn}`, FailureType.ReplayBehind);
      return { targetLsn, replayLsn };
    },

    /**
     * Unplanned, after the fence shut the old primary down cleanly: its end of WAL (`finalLsn`) is known, so the
     * loss is exact: the WAL between the standby's replay position and it. Seconds are not measured.
     */
    async measureLossAfterShutdown(input: { database: string; towards?: PromotionTarget; finalLsn: string }): Promise<RpoMeasurement> {
      const { caughtUp, replayLsn } = await provider(input.database, input.towards).replayedUpTo(input.finalLsn);
      if (caughtUp) {
        return { measuredBytes: 0, measuredSeconds: 0, method: `unplanned: the old primary was shut down cleanly by the fence and the standby replayed to ${replayLsn}, at or past its final LSN ${input.finalLsn}` };
      }
      const bytes = Number(lsnToBigInt(input.finalLsn) - lsnToBigInt(replayLsn));
      return {
        measuredBytes: bytes,
        method: `unplanned: the old primary was shut down cleanly by the fence at ${input.finalLsn}; the standby replayed only to ${replayLsn}: ${bytes} bytes of WAL it never received are lost; seconds unknown (not measured for WAL the standby never saw)`,
      };
    },

    async measureRpo({ database, detectedAt, towards }: { database: string; detectedAt: string; towards?: PromotionTarget }): Promise<RpoMeasurement> {
      return provider(database, towards).measureRpo(detectedAt);
    },

    /**
     * Read-only, for a return watch: does the node a promotion left behind answer, and does it take
     * writes (not in recovery)? From this worker, over the network: it changes nothing.
     */
    async probeOldPrimary(input: { database: string; towards?: PromotionTarget }): Promise<OldPrimaryProbe> {
      const p = provider(input.database, input.towards);
      const { primary } = await p.inspect();
      return { answers: primary.reachable, writable: primary.reachable && primary.currentLsn !== undefined, node: p.primary, error: primary.error };
    },

    /**
     * Long-running, read-only: probes the old primary every `everySeconds` and returns once it is (`until: 'writable'`)
     * or is no longer (`'not-writable'`) taking writes. One activity for days of watching: the history does not grow.
     */
    async awaitOldPrimary(input: { database: string; towards?: PromotionTarget; everySeconds: number; until: 'writable' | 'not-writable' }): Promise<OldPrimaryProbe> {
      const p = provider(input.database, input.towards);
      for (;;) {
        const { primary } = await p.inspect();
        const probe = { answers: primary.reachable, writable: primary.reachable && primary.currentLsn !== undefined, node: p.primary, error: primary.error };
        if (probe.writable === (input.until === 'writable')) return probe;
        heartbeat();
        // Rejects when the watch cancels this (its fence ran): the probe ends with it.
        await ActivityContext.current().sleep(input.everySeconds * 1000);
      }
    },

    /**
     * Read-only, for a parent run before its gate: the standby's streaming state and the RPO a
     * promotion now would have. Nodes that do not answer are reported as such, never thrown.
     */
    async measureReplication(input: MeasureReplicationInput): Promise<ReplicationReading> {
      const p = provider(input.database, input.towards);
      const inspection = await p.inspect();
      const { standby, primary } = inspection;
      const rpo: RpoMeasurement = standby.reachable
        ? await p.measureRpo(input.detectedAt, inspection)
        : { method: `standby ${standby.region} (${standby.host}:${standby.port}) unreachable: ${standby.error ?? ''}; not measured` };
      return {
        database: input.database,
        standby: { region: standby.region, host: standby.host, port: standby.port, reachable: standby.reachable, inRecovery: standby.inRecovery, streaming: standby.streaming, walReceiver: standby.walReceiver, error: standby.error },
        primary: { region: primary.region, host: primary.host, port: primary.port, reachable: primary.reachable, error: primary.error },
        rpo,
        inspectedAt: inspection.inspectedAt,
      };
    },

    /**
     * Read-only: a planned promotion promotes only a standby that streams from its primary. Run
     * again after catch-up and right before promotion, because streaming can stop after preflight.
     * Not streaming is retried (a WAL receiver restarting), then refused with the reason.
     */
    async confirmStreaming(input: ConfirmStreamingInput): Promise<ReplicationInspection> {
      const inspection = await provider(input.database, input.towards).inspect();
      const { standby } = inspection;
      const node = `${input.database} ${standby.region} (${standby.host}:${standby.port})`;
      if (!standby.reachable) throw ApplicationFailure.retryable(`standby ${node} unreachable ${input.stage}: ${standby.error ?? ''}`, FailureType.StandbyNotHealthy);
      if (standby.inRecovery !== true) {
        throw ApplicationFailure.nonRetryable(`${node} is no longer a standby (not in recovery) ${input.stage}: refusing to promote`, FailureType.StandbyNotHealthy);
      }
      if (standby.streaming !== true) {
        throw ApplicationFailure.retryable(
          `standby ${node} stopped streaming from the primary ${input.stage} (WAL receiver ${standby.walReceiver ?? 'not running'}): a planned promotion promotes only a streaming standby`,
          FailureType.StandbyNotHealthy,
        );
      }
      return inspection;
    },

    async promoteStandby({ database, towards }: { database: string; towards?: PromotionTarget }): Promise<PromotionOutcome> {
      const timer = setInterval(() => heartbeat(), HEARTBEAT_MS);
      try {
        const outcome = await provider(database, towards).promoteStandby();
        log.info('standby promoted', { database, alreadyPromoted: outcome.alreadyPromoted, timeline: outcome.timeline });
        return outcome;
      } finally {
        clearInterval(timer);
      }
    },

    async verifyWrite({ database, runId, towards }: { database: string; runId: string; towards?: PromotionTarget }): Promise<WriteCheck> {
      return provider(database, towards).verifyWrite(runId);
    },

    /** Rebuilds the old primary as a streaming standby of the promoted node (`towards: 'primary'` swaps the configured roles). */
    async rebuildAsStandby({ database, towards }: { database: string; towards?: PromotionTarget }): Promise<RebuildOutcome> {
      const timer = setInterval(() => heartbeat(), HEARTBEAT_MS);
      try {
        const outcome = await provider(database, towards).rebuildOldPrimary();
        log.info('old primary rebuilt as a standby', { database, method: outcome.method, node: outcome.node.region });
        return outcome;
      } finally {
        clearInterval(timer);
      }
    },

    /** One check of the poll loop: fails with ReplayBehind until the standby is within `maxLagBytes` of the primary. */
    async waitForCatchUp({ database, maxLagBytes, towards }: { database: string; maxLagBytes: number; towards?: PromotionTarget }): Promise<ReplicationInspection> {
      const inspection = await provider(database, towards).inspect();
      if (inspection.standby.inRecovery !== true || inspection.lagBytes === undefined) {
        throw ApplicationFailure.retryable(`standby of ${database} is not replicating yet (${inspection.standby.error ?? inspection.primary.error ?? 'no lag figure'})`, FailureType.ReplayBehind);
      }
      if (inspection.lagBytes > maxLagBytes) {
        throw ApplicationFailure.retryable(`standby of ${database} is ${inspection.lagBytes} bytes behind (allowed ${maxLagBytes})`, FailureType.ReplayBehind);
      }
      return inspection;
    },
  };
}

export type DatabaseActivities = ReturnType<typeof createDatabaseActivities>;
