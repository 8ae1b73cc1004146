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
import { parsePromotionTarget, type PromotionTarget } from '../contract/database';
import { chooseStandby, residencyRefusal, type Residency, type StandbyChoice, type StandbyReading } from '../contract/standby-choice';
import { FailureType } from '../contract/failures';
import { refusePromotion } from '../contract/preflight';
import { lsnToBigInt } from '../contract/lsn';

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
  /**
   * Read-only, before the gate and right before the promotion: refuses (StandbyNotHealthy) when another node
   * takes writes, when the standby is on a newer timeline than `oldTimeline` (the fenced node's: a later
   * primary exists), or when it streams from another node of the database than this primary.
   */
  confirmPromotable(oldTimeline?: number): Promise<void>;
  /** Idempotent: an already promoted standby is success. */
  promoteStandby(): Promise<PromotionOutcome>;
  verifyWrite(runId: string): Promise<WriteCheck>;
  /** The same database with the roles swapped: promote the configured primary (failback). */
  reversed(): DatabaseProvider;
  /** Every node of the database (the primary, the standby, the further standbys: their order is their priority). */
  readonly nodes: readonly NodeEndpoint[];
  /** Regions the database may and may not be promoted in (absent: anywhere it has a node). */
  readonly residency?: Residency;
  /** The same database oriented between two of its nodes by region: `standbyRegion`'s node is the one to promote. */
  oriented(primaryRegion: string, standbyRegion: string): DatabaseProvider;
  /** After a promotion of `standby`: every other standby (neither primary nor standby here) re-pointed to stream from it. Never throws for one node: each outcome says. */
  followNewPrimary(): Promise<FollowOutcome[]>;
  /** Makes the old primary a streaming standby of the promoted one (pg_rewind, else a full copy). Idempotent. */
  rebuildOldPrimary(): Promise<RebuildOutcome>;
}

export interface FollowOutcome {
  node: NodeEndpoint;
  /** The new primary it is to follow. */
  source: NodeEndpoint;
  slot: string;
  following: boolean;
  method?: string;
  /** Why it does not follow (it is then less protection, reported; never a rollback: the promotion stands). */
  reason?: string;
}

export interface RebuildOutcome {
  method: 'pg_rewind' | 'pg_basebackup' | 'already-a-standby';
  node: NodeEndpoint;
  source: NodeEndpoint;
  /** Why pg_rewind was not enough, when a full copy was made. */
  rewindError?: string;
}


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

/**
 * A promotion fences the node it replaces (the orientation's primary) and promotes its standby. A further node
 * that takes writes (an earlier promotion chose it) is the real primary: promoting anything now would leave it
 * writable beside the new one. Refused, non-retryable; nodes that do not answer are not counted (the preflight
 * of the target and the fence deal with those).
 */
async function refuseOtherWritable(p: DatabaseProvider, database: string): Promise<void> {
  const others = p.nodes.filter((n) => n.region !== p.primary.region && n.region !== p.standby.region);
  const writable = (await Promise.all(others.map((n) => p.oriented(p.primary.region, n.region).inspect())))
    .filter((i) => i.standby.reachable && i.standby.inRecovery === false)
    .map((i) => `${i.standby.region} (${i.standby.host}:${i.standby.port})`);
  if (writable.length === 0) return;
  throw ApplicationFailure.nonRetryable(
    `${database} takes writes in ${writable.join(', ')}: that node is the primary now, not ${p.primary.region}; promoting ${p.standby.region} would leave it writable beside the new primary (two writable primaries). Nothing was changed`,
    FailureType.StandbyNotHealthy,
  );
}

export function createDatabaseActivities(deps: { providers: ReadonlyMap<string, DatabaseProvider> }) {
  const configured = (database: string): DatabaseProvider => {
    const p = deps.providers.get(database);
    if (!p) {
      throw ApplicationFailure.nonRetryable(
        `unknown database '${database}': the worker's config has ${[...deps.providers.keys()].join(', ') || 'none'}`,
        FailureType.UnknownDatabase,
      );
    }
    return p;
  };
  /** The database oriented for `towards`: its `standby` is the node the promotion makes the primary. */
  const provider = (database: string, towards: PromotionTarget = 'standby'): DatabaseProvider => {
    const p = configured(database);
    const { becomes, region } = parsePromotionTarget(towards);
    if (region === undefined) return becomes === 'primary' ? p.reversed() : p;
    return becomes === 'standby' ? p.oriented(p.primary.region, region) : p.oriented(region, p.primary.region);
  };

  return {
    /**
     * Read-only: reads every standby of the database (from the configured primary's side) and chooses the
     * promotion target (contract/standby-choice.ts). The run promotes the target it returns, or none.
     */
    async chooseStandby({ database, mode }: { database: string; mode: PromotionMode }): Promise<StandbyChoice> {
      const p = configured(database);
      const standbys = p.nodes.filter((n) => n.region !== p.primary.region);
      const inspections = await Promise.all(standbys.map((n) => p.oriented(p.primary.region, n.region).inspect()));
      const readings = inspections.map((i, priority): StandbyReading => ({
        region: i.standby.region, host: i.standby.host, port: i.standby.port, priority, reachable: i.standby.reachable,
        inRecovery: i.standby.inRecovery, streaming: i.standby.streaming, receiveLsn: i.standby.receiveLsn, replayLsn: i.standby.replayLsn, error: i.standby.error,
      }));
      const primaryLsn = inspections.find((i) => i.primary.currentLsn !== undefined)?.primary.currentLsn;
      const choice = chooseStandby(readings, { mode, primaryLsn, residency: p.residency, database });
      log.info('standby chosen', { database, target: choice.target, reason: choice.reason });
      return choice;
    },

    /** Read-only: the regions of the database's nodes that take writes now (answering and not in recovery). */
    async writableNodes({ database }: { database: string }): Promise<string[]> {
      const p = configured(database);
      const inspections = await Promise.all(p.nodes.filter((n) => n.region !== p.primary.region).map((n) => p.oriented(p.primary.region, n.region).inspect()));
      const primaryWritable = inspections[0]?.primary.reachable === true && inspections[0].primary.currentLsn !== undefined;
      return [...(primaryWritable ? [p.primary.region] : []), ...inspections.filter((i) => i.standby.reachable && i.standby.inRecovery === false).map((i) => i.standby.region)];
    },

    /** Read-only: the target must be a standby in recovery (streaming, in planned mode) in a region the residency rules allow. */
    async preflightPromotion({ database, mode, towards }: { database: string; mode: PromotionMode; towards?: PromotionTarget }): Promise<ReplicationInspection> {
      const p = provider(database, towards);
      const denied = residencyRefusal(p.residency, p.standby.region);
      if (denied) throw ApplicationFailure.nonRetryable(`${database} is not promoted in ${p.standby.region}: ${denied}`, FailureType.ResidencyDenied);
      const inspection = await p.inspect();
      await refuseOtherWritable(p, database);
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

    /** Read-only: see DatabaseProvider.confirmPromotable; `oldTimeline`: the fenced old primary's, when the fence read it. */
    async confirmPromotable({ database, towards, oldTimeline }: { database: string; towards?: PromotionTarget; oldTimeline?: number }): Promise<void> {
      await provider(database, towards).confirmPromotable(oldTimeline);
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

    /** After a promotion: the other standbys re-pointed to stream from the new primary, so the database is protected again. */
    async followNewPrimary({ database, towards }: { database: string; towards?: PromotionTarget }): Promise<FollowOutcome[]> {
      const timer = setInterval(() => heartbeat(), HEARTBEAT_MS);
      try {
        const outcomes = await provider(database, towards).followNewPrimary();
        log.info('standbys re-pointed', { database, following: outcomes.filter((o) => o.following).map((o) => o.node.region), not: outcomes.filter((o) => !o.following).map((o) => o.node.region) });
        return outcomes;
      } finally {
        clearInterval(timer);
      }
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
