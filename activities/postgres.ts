/**
 * PostgreSQL adapter (self-managed streaming replication) behind the
 * DatabaseProvider interface: fencing with a read-only default, replay checks by
 * LSN, `pg_promote()`, and a write check. Only this file speaks to PostgreSQL.
 */
import type { Client, ClientConfig } from 'pg';
import { withPgSession } from '../lib/pg';
import { ApplicationFailure } from '@temporalio/common';
import type { PostgresDatabaseConfig } from '../config/schema';
import type {
  FenceResult,
  NodeEndpoint,
  PromotionOutcome,
  ReplicationInspection,
  RpoMeasurement,
  WriteCheck,
} from '../contract/database';
import { FailureType } from '../contract/failures';
import { lsnToBigInt } from '../contract/lsn';
import type { DatabaseProvider, FollowOutcome, RebuildOutcome } from './database';
import { addressFrom, databaseNodes } from '../config/load';
import { asOwner, clusterOwner, clusterPid, prepareDir, startCluster, stopCluster, type ClusterLocation } from './postgres-host';
import { clearFenceMarker, controlData, fenceByShutdown, fenceOwner, isFencedHere, liftShutdownFence, prepareForRewind } from './postgres-fence';
import { log } from '@temporalio/activity';
import { waitFor } from '../lib/processes';
import { appendFileSync, chownSync, existsSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/** How a PostgreSQL node is reached; the password comes from the environment, never from history. */
export interface PostgresCredentials {
  user: string;
  password?: string;
}

const CONNECT_TIMEOUT_MS = 3000;
const STATEMENT_TIMEOUT_MS = 15000;


/** Where each node's cluster lives, when this worker runs on that host (needed only to rebuild a node). */
export interface NodeLocations {
  primary?: ClusterLocation;
  standby?: ClusterLocation;
}

/** Where each node's cluster lives, by the node's region, when this worker runs on that host (needed to fence and rebuild a node). */
export type NodeLocationsByRegion = Readonly<Record<string, ClusterLocation | undefined>>;

/**
 * A provider for one database in one orientation: `standby` is the node to
 * promote, `primary` the old primary, `spec.standbys` the other nodes (they
 * follow the new primary after a promotion). `reversed()` swaps primary and
 * standby, for failback; `oriented()` picks any pair of the database's nodes.
 */
export function createPostgresProvider(name: string, spec: PostgresDatabaseConfig, credentials: PostgresCredentials, locations: NodeLocationsByRegion = {}): DatabaseProvider {
  const endpoint = (node: PostgresDatabaseConfig['primary']): NodeEndpoint => ({ region: node.region, host: node.host, port: node.port });
  const primary = endpoint(spec.primary);
  const standby = endpoint(spec.standby);
  const at = (node: NodeEndpoint): ClusterLocation | undefined => locations[node.region];
  const slotOf = (node: PostgresDatabaseConfig['primary']): string => node.slot ?? spec.slot;

  async function withNode<T>(node: NodeEndpoint, work: (client: Client) => Promise<T>): Promise<T> {
    const config: ClientConfig = {
      host: node.host,
      port: node.port,
      user: credentials.user,
      password: credentials.password,
      database: spec.database,
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
      statement_timeout: STATEMENT_TIMEOUT_MS,
      application_name: 'lifeboat',
    };
    return withPgSession(config, work);
  }

  async function tryNode<T>(node: NodeEndpoint, work: (client: Client) => Promise<T>): Promise<{ ok: true; value: T } | { ok: false; error: string }> {
    try {
      return { ok: true, value: await withNode(node, work) };
    } catch (err) {
      return { ok: false, error: (err as Error).message };
    }
  }

  const where = (node: NodeEndpoint) => `${name} ${node.region} (${node.host}:${node.port})`;

  /** The timeline a node is on: its current WAL file's when it takes writes, else its control file's (stopped) or checkpoint's. */
  const timelineOf = async (node: NodeEndpoint, location: ClusterLocation | undefined): Promise<number | undefined> => {
    const live = await tryNode(node, async (c) => (await c.query<{ tli: number }>(
      `SELECT CASE WHEN pg_is_in_recovery() THEN (SELECT timeline_id FROM pg_control_checkpoint())
                   ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int END AS tli`,
    )).rows[0]?.tli);
    if (live.ok) return live.value;
    return location && existsSync(path.join(location.dataDir, 'PG_VERSION')) ? (await controlData(location.dataDir)).timeline : undefined;
  };

  /**
   * A return watch fences the node a promotion replaced, found long after: never the newest primary. It is that
   * only when the other node takes writes on a newer timeline; a node that is itself on the newest timeline, or
   * whose partner is still a standby, is refused. A partner that cannot be read is no proof either way: the
   * node is fenced (two writable primaries are the worse outcome).
   */
  const refuseUnlessSuperseded = async (location: ClusterLocation | undefined, writable: boolean): Promise<void> => {
    const other = await tryNode(standby, async (c) => (await c.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r')).rows[0]?.r);
    if (!other.ok) return;
    const mine = await timelineOf(primary, location);
    const theirs = await timelineOf(standby, at(standby));
    const refuse = (why: string) => ApplicationFailure.nonRetryable(`refusing to fence ${where(primary)}: ${why}; it is not the primary the promotion replaced`, FailureType.FenceRefused);
    if (other.value === true && writable) throw refuse(`${where(standby)} is still a standby (in recovery) while this node takes writes`);
    if (mine !== undefined && theirs !== undefined && mine >= theirs && (writable || other.value === false)) {
      throw refuse(`it is on timeline ${mine}, not older than ${where(standby)}'s ${theirs}`);
    }
  };

  /**
   * Makes `node`, a standby of the old primary, stream from this orientation's `standby` (the new primary)
   * through its own slot: primary_conninfo and primary_slot_name by ALTER SYSTEM and a reload (the WAL
   * receiver restarts; recovery_target_timeline 'latest' follows the new timeline). A node that takes writes
   * or does not answer is left alone and reported; one whose WAL went past the new primary's cannot follow
   * and is reported for a rebuild. Idempotent.
   */
  const follow = async (node: NodeEndpoint, slot: string, config: PostgresDatabaseConfig['primary']): Promise<FollowOutcome> => {
    const base = { node, source: standby, slot };
    const receiver = (n: NodeEndpoint) => tryNode(n, async (c) => (await c.query<{ r: boolean; status: string | null; port: number | null; tli: number | null }>(
      'SELECT pg_is_in_recovery() AS r, (SELECT status FROM pg_stat_wal_receiver LIMIT 1) AS status, (SELECT sender_port FROM pg_stat_wal_receiver LIMIT 1) AS port, (SELECT received_tli FROM pg_stat_wal_receiver LIMIT 1) AS tli',
    )).rows[0]);
    // Following means streaming the new primary's timeline: a node whose WAL went past the fork streams the old
    // timeline up to the fork for a moment, then stops ("forked off ... before current recovery point").
    const newTimeline = await withNode(standby, async (c) => Number.parseInt((await c.query<{ tli: string }>('SELECT substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8) AS tli')).rows[0]?.tli ?? '0', 16));
    const onNewTimeline = (v: { status: string | null; port: number | null; tli: number | null } | undefined, port: number) => v?.status === 'streaming' && v.port === port && (v.tli ?? 0) >= newTimeline;
    const before = await receiver(node);
    if (!before.ok) return { ...base, following: false, reason: `${where(node)} does not answer (${before.error}): not re-pointed; it must be re-pointed or rebuilt before it protects ${name} again` };
    if (before.value?.r !== true) return { ...base, following: false, reason: `${where(node)} takes writes (not in recovery): left alone; two writable nodes, fence it` };
    const source = addressFrom(spec.standby, config.region);
    if (onNewTimeline(before.value, source.port)) return { ...base, following: true, method: `already streaming timeline ${newTimeline} from the new primary` };
    await withNode(standby, async (c) => {
      const exists = await c.query('SELECT 1 FROM pg_replication_slots WHERE slot_name = $1', [slot]);
      if (exists.rowCount === 0) await c.query('SELECT pg_create_physical_replication_slot($1)', [slot]);
    });
    const conninfo = `host=${source.host} port=${source.port} user=${credentials.user} application_name=lifeboat`;
    await withNode(node, async (c) => {
      await c.query(`ALTER SYSTEM SET primary_conninfo = ${literal(conninfo)}`);
      await c.query(`ALTER SYSTEM SET primary_slot_name = ${literal(slot)}`);
      await c.query('SELECT pg_reload_conf()');
    });
    try {
      await waitFor(`${where(node)} to stream from ${where(standby)}`, async () => {
        const now = await receiver(node);
        return now.ok && onNewTimeline(now.value, source.port) ? true : undefined;
      }, FOLLOW_TIMEOUT_MS, 250);
    } catch {
      return { ...base, following: false, reason: `${where(node)} was re-pointed at ${where(standby)} but does not stream its timeline ${newTimeline} within ${FOLLOW_TIMEOUT_MS / 1000}s: its WAL may have gone past the new primary's (diverged); rebuild it as a standby of the new primary` };
    }
    return { ...base, following: true, method: `re-pointed (primary_conninfo ${source.host}:${source.port}, slot ${slot}) and streaming timeline ${newTimeline}` };
  };

  return {
    name,
    primary,
    standby,

    nodes: databaseNodes(spec).map(endpoint),
    residency: spec.residency,

    reversed(): DatabaseProvider {
      return createPostgresProvider(name, { ...spec, primary: spec.standby, standby: spec.primary }, credentials, locations);
    },

    oriented(primaryRegion: string, standbyRegion: string): DatabaseProvider {
      const all = databaseNodes(spec);
      const find = (region: string) => {
        const n = all.find((x) => x.region === region);
        if (!n) throw ApplicationFailure.nonRetryable(`database ${name} has no node in region '${region}' (its nodes are in ${all.map((x) => x.region).join(', ')})`, FailureType.NotConfigured);
        return n;
      };
      const [p, s] = [find(primaryRegion), find(standbyRegion)];
      if (p === s) throw ApplicationFailure.nonRetryable(`${name}: a promotion needs two nodes, not ${primaryRegion} twice`, FailureType.NotConfigured);
      return createPostgresProvider(name, { ...spec, primary: p, standby: s, standbys: all.filter((x) => x !== p && x !== s) }, credentials, locations);
    },

    async followNewPrimary(): Promise<FollowOutcome[]> {
      return Promise.all(spec.standbys.map((node) => follow(endpoint(node), slotOf(node), node)));
    },

    async rebuildOldPrimary(): Promise<RebuildOutcome> {
      const location = at(primary);
      if (!location) {
        throw ApplicationFailure.nonRetryable(`rebuilding ${where(primary)} as a standby needs its data directory on this worker's host (databases.${name}.<node>.dataDir)`, FailureType.NotConfigured);
      }
      const source = await withNode(standby, async (c) => (await c.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r')).rows[0]?.r);
      if (source !== false) throw ApplicationFailure.nonRetryable(`${where(standby)} is not a primary: it cannot be the source of a rebuild`, FailureType.StandbyNotHealthy);
      // Idempotent: a retry finds the node already streaming from the source.
      const current = await tryNode(primary, async (c) => (await c.query<{ r: boolean; status: string | null; sender: number | null }>(
        'SELECT pg_is_in_recovery() AS r, (SELECT status FROM pg_stat_wal_receiver LIMIT 1) AS status, (SELECT sender_port FROM pg_stat_wal_receiver LIMIT 1) AS sender',
      )).rows[0]);
      if (current.ok && current.value?.r === true && current.value.status === 'streaming' && current.value.sender === standby.port) {
        return { method: 'already-a-standby', node: primary, source: standby };
      }
      await stopCluster(location);
      // A restart by anyone during the rebuild comes back read-only: the standby.signal stays, except while
      // pg_rewind runs (it removes files the source lacks; its crash recovery of a crashed node refuses it).
      const standbySignal = () => writeOwned(path.join(location.dataDir, 'standby.signal'), '', 'replace');
      if (existsSync(path.join(location.dataDir, 'PG_VERSION'))) standbySignal();
      await withNode(standby, async (c) => {
        await c.query('CHECKPOINT'); // pg_rewind reads the source's control file: make the new timeline visible there
        const slot = await c.query('SELECT 1 FROM pg_replication_slots WHERE slot_name = $1', [slotOf(spec.primary)]);
        if (slot.rowCount === 0) await c.query('SELECT pg_create_physical_replication_slot($1)', [slotOf(spec.primary)]);
      });
      const env = credentials.password ? { PGPASSWORD: credentials.password } : undefined;
      const sourceConn = `host=${standby.host} port=${standby.port} user=${credentials.user} dbname=postgres`;
      let method: RebuildOutcome['method'] = 'pg_rewind';
      let rewindError: string | undefined;
      try {
        if (!existsSync(path.join(location.dataDir, 'PG_VERSION'))) throw new Error(`no cluster in ${location.dataDir} to rewind`);
        await prepareForRewind(location);
        try {
          await asOwner('pg_rewind', ['--target-pgdata', location.dataDir, '--source-server', sourceConn], env);
        } finally {
          // pg_rewind removes target files the source lacks, the standby.signal among them: back at once.
          standbySignal();
        }
      } catch (err) {
        // Rewind is impossible (no data, or history too far apart): copy the whole cluster instead.
        method = 'pg_basebackup';
        rewindError = (err as Error).message.split('\n').slice(-3).join(' ');
        // Never destroy a cluster that may hold the only copy of unreplicated writes: set it aside.
        // The copy keeps its standby.signal: started by hand, it comes back read-only.
        if (existsSync(location.dataDir)) renameSync(location.dataDir, `${location.dataDir}.lifeboat-${new Date().toISOString().replace(/[:.]/g, '-')}`);
        prepareDir(location.dataDir);
        await asOwner('pg_basebackup', ['-h', standby.host, '-p', String(standby.port), '-U', credentials.user, '-D', location.dataDir, '-X', 'stream', '-S', slotOf(spec.primary), '--checkpoint=fast'], env);
        standbySignal(); // a full copy of the primary: read-only from the moment it exists
      }
      // pg_rewind and pg_basebackup copy the source's configuration: give the node back its own port and make it follow the source.
      writeOwned(path.join(location.dataDir, 'postgresql.conf'), `\n# --- Lifeboat: rebuilt as a standby of ${standby.region} ---\nport = ${primary.port}\nlisten_addresses = '${primary.host}'\n`, 'append');
      writeOwned(path.join(location.dataDir, 'postgresql.auto.conf'), `# Written by Lifeboat when rebuilding this node as a standby.\nprimary_conninfo = 'host=${standby.host} port=${standby.port} user=${credentials.user} application_name=lifeboat'\nprimary_slot_name = '${slotOf(spec.primary)}'\n`, 'replace');
      standbySignal();
      clearFenceMarker(location);
      await startCluster(location);
      await waitFor(`${where(primary)} to stream from ${where(standby)}`, async () => {
        const state = await tryNode(primary, async (c) => (await c.query<{ status: string | null }>('SELECT (SELECT status FROM pg_stat_wal_receiver LIMIT 1) AS status')).rows[0]?.status);
        return state.ok && state.value === 'streaming' ? true : undefined;
      }, 60_000, 250);
      return { method, node: primary, source: standby, rewindError };
    },

    async inspect(): Promise<ReplicationInspection> {
      const s = await tryNode(standby, async (c) => {
        const r = await c.query<{ in_recovery: boolean; replay: string | null; receive: string | null; replayed_at: Date | null; receiver: string | null }>(
          `SELECT pg_is_in_recovery() AS in_recovery,
                  pg_last_wal_replay_lsn()::text AS replay,
                  pg_last_wal_receive_lsn()::text AS receive,
                  pg_last_xact_replay_timestamp() AS replayed_at,
                  (SELECT status FROM pg_stat_wal_receiver LIMIT 1) AS receiver`,
        );
        return r.rows[0];
      });
      const p = await tryNode(primary, async (c) => {
        const r = await c.query<{ in_recovery: boolean; lsn: string | null; read_only: string; replay_lag: number | null }>(
          `SELECT pg_is_in_recovery() AS in_recovery,
                  CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_current_wal_lsn()::text END AS lsn,
                  current_setting('default_transaction_read_only') AS read_only,
                  (SELECT EXTRACT(EPOCH FROM max(r.replay_lag))::float8 FROM pg_stat_replication r
                    WHERE r.pid = (SELECT active_pid FROM pg_replication_slots WHERE slot_name = $1::text)) AS replay_lag`,
          [slotOf(spec.standby)],
        );
        return r.rows[0];
      });
      const sv = s.ok ? s.value : undefined;
      const pv = p.ok ? p.value : undefined;
      const inspection: ReplicationInspection = {
        database: name,
        standby: {
          ...standby,
          reachable: s.ok,
          inRecovery: sv?.in_recovery,
          streaming: sv ? sv.receiver === 'streaming' : undefined,
          walReceiver: sv?.receiver ?? undefined,
          replayLsn: sv?.replay ?? undefined,
          receiveLsn: sv?.receive ?? undefined,
          lastReplayedCommitAt: sv?.replayed_at ? sv.replayed_at.toISOString() : undefined,
          error: s.ok ? undefined : s.error,
        },
        primary: {
          ...primary,
          reachable: p.ok,
          currentLsn: pv?.lsn ?? undefined,
          readOnly: pv ? pv.read_only === 'on' : undefined,
          error: p.ok ? undefined : p.error,
        },
        fenceOnHost: true,
        inspectedAt: new Date().toISOString(),
      };
      if (inspection.primary.currentLsn && inspection.standby.replayLsn) {
        const lag = lsnToBigInt(inspection.primary.currentLsn) - lsnToBigInt(inspection.standby.replayLsn);
        inspection.lagBytes = Number(lag > 0n ? lag : 0n);
        // NULL replay_lag (no pg_stat_replication row for a standby that is not connected) is unknown, not 0.
        const replayLag = pv?.replay_lag;
        if (typeof replayLag === 'number' && Number.isFinite(replayLag)) inspection.lagSeconds = replayLag;
      }
      return inspection;
    },

    async fencePrimary(required: boolean, owner?: string, supersededOnly = false): Promise<FenceResult> {
      const location = at(primary);
      if (!location) {
        throw ApplicationFailure.nonRetryable(
          `fencing ${where(primary)} shuts it down on its own host: run a worker of region ${primary.region} there ('lifeboat worker --region ${primary.region}') with databases.${name}.<node>.dataDir`,
          FailureType.NotConfigured,
        );
      }
      // The node's own word, when it answers: its identity (so the wrong cluster is never stopped) and its role.
      const live = await tryNode(primary, async (c) => (await c.query<{ sysid: string; r: boolean; sessions: string }>(
        `SELECT (SELECT system_identifier::text FROM pg_control_system()) AS sysid, pg_is_in_recovery() AS r,
                (SELECT count(*)::text FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()) AS sessions`,
      )).rows[0]);
      if (!live.ok && owner !== undefined && fenceOwner(location) === owner) {
        // A retry after this run's own shutdown (its answer lost): the fence is in place; report it again.
        const control = await controlData(location.dataDir);
        if (control.state === 'shut down') {
          return { fenced: true, finalLsn: control.checkpointLsn, terminatedSessions: 0, cleanShutdown: true, timeline: control.timeline, method: 'clean shutdown (the shutdown checkpoint streamed to the standby) and a standby.signal, so a restart comes back read-only' };
        }
      }
      if (supersededOnly) await refuseUnlessSuperseded(location, live.ok && live.value?.r === false);
      if (required && !live.ok) {
        throw ApplicationFailure.create({
          type: FailureType.PrimaryUnreachable,
          message: `planned promotion needs the old primary ${where(primary)}, which is unreachable (${live.error}); use mode=unplanned if it is lost`,
        });
      }
      if (live.ok && live.value?.r === true) {
        if (required) throw ApplicationFailure.nonRetryable(`${where(primary)} is in recovery (a standby), not the primary this promotion replaces`, FailureType.StandbyNotHealthy);
        return { fenced: false, reason: `${where(primary)} is already a standby (in recovery): nothing to fence` };
      }
      if (live.ok && clusterPid(location) === undefined) {
        throw ApplicationFailure.nonRetryable(`${where(primary)} answers, but no cluster runs in ${location.dataDir} on this host: databases.${name}.<node>.dataDir names another directory; nothing was fenced`, FailureType.NotConfigured);
      }
      const fence = await fenceByShutdown(location, { port: primary.port, systemIdentifier: live.ok ? live.value?.sysid : undefined }, { database: name, node: primary, owner }, (file, text) => writeOwned(file, text, 'replace'));
      if (fence.control.state !== 'shut down' && fence.how === 'shutdown') {
        throw new Error(`${where(primary)} did not shut down cleanly (control file says "${fence.control.state}")`);
      }
      return {
        fenced: true,
        finalLsn: fence.control.checkpointLsn,
        terminatedSessions: live.ok ? Number(live.value?.sessions ?? 0) : 0,
        // finalLsn is the node's end of WAL only after a clean shutdown (a crashed node's checkpoint is behind it).
        cleanShutdown: fence.control.state === 'shut down',
        // The timeline the node was on: a standby on a newer one descends from a later primary, not from this node.
        timeline: fence.control.timeline,
        method: fence.how === 'shutdown'
          ? 'clean shutdown (the shutdown checkpoint streamed to the standby) and a standby.signal, so a restart comes back read-only'
          : fence.how === 'already-fenced'
            ? `already fenced by ${fence.owner ?? 'another run'} (stopped, standby.signal in place)`
            : `found stopped (${fence.control.state}); a standby.signal written, so a restart comes back read-only`,
      };
    },

    async confirmPromotable(oldTimeline?: number): Promise<void> {
      const refuse = (why: string) => ApplicationFailure.nonRetryable(`not promoting ${where(standby)}: ${why}. Nothing was promoted`, FailureType.StandbyNotHealthy);
      for (const node of spec.standbys) {
        const other = endpoint(node);
        const state = await tryNode(other, async (c) => (await c.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r')).rows[0]?.r);
        if (state.ok && state.value === false) throw refuse(`${where(other)} takes writes (it is a primary): promoting now would make two writable primaries`);
      }
      const s = await withNode(standby, async (c) => (await c.query<{ r: boolean; tli: number; rtli: number | null; conninfo: string }>(
        `SELECT pg_is_in_recovery() AS r, (SELECT timeline_id FROM pg_control_checkpoint()) AS tli,
                (SELECT received_tli FROM pg_stat_wal_receiver LIMIT 1) AS rtli, current_setting('primary_conninfo') AS conninfo`,
      )).rows[0]);
      if (!s) throw new Error(`${where(standby)} answered nothing`);
      if (s.r !== true) throw refuse('it is not in recovery (it takes writes already)');
      // The newest timeline it knows: its control file lags (restartpoints), its WAL receiver may be down, but a
      // timeline it followed left its history file and segments in pg_wal (pg_ls_waldir: superuser or pg_monitor).
      const inWal = await withNode(standby, async (c) => (await c.query<{ tli: number | null }>(
        "SELECT max(('x' || substr(name, 1, 8))::bit(32)::int) AS tli FROM pg_ls_waldir() WHERE name ~ '^[0-9A-F]{8}([0-9A-F]{16}|\\.history)$'",
      )).rows[0]?.tli ?? 0).catch(() => 0);
      const tli = Math.max(s.tli, s.rtli ?? 0, inWal);
      if (oldTimeline !== undefined && tli > oldTimeline) {
        throw refuse(`it is on timeline ${tli}, newer than ${where(primary)}'s ${oldTimeline}: a node was promoted after ${primary.region} was the primary, and that node (not ${primary.region}) is the one a promotion would replace; find it and fence it first`);
      }
      // Its upstream is the primary it follows: another node of the database named there is that primary.
      const upstream = conninfoAddress(s.conninfo);
      const follows = upstream && spec.standbys.find((n) => [{ host: n.host, port: n.port }, ...Object.values(n.via ?? {})].some((a) => a.host === upstream.host && a.port === upstream.port));
      if (follows) throw refuse(`it streams from ${where(endpoint(follows))} (its primary_conninfo), not from ${where(primary)}: that node is its primary, and a promotion would leave it as it is`);
    },

    async unfencePrimary(owner?: string): Promise<void> {
      // The world first: writes are never re-opened while the other node is a primary, or ahead of this one.
      const other = await tryNode(standby, async (c) => (await c.query<{ r: boolean; tli: number }>(
        'SELECT pg_is_in_recovery() AS r, (SELECT timeline_id FROM pg_control_checkpoint()) AS tli',
      )).rows[0]);
      if (!other.ok) {
        throw ApplicationFailure.nonRetryable(`refusing to unfence ${where(primary)}: ${where(standby)} cannot be read (${other.error}), so it may be a primary; check it, then resolve`, FailureType.UnfenceRefused);
      }
      if (other.value?.r === false) {
        throw ApplicationFailure.nonRetryable(`refusing to unfence ${where(primary)}: ${where(standby)} has left recovery (it is a primary); re-opening writes would make two writable primaries`, FailureType.UnfenceRefused);
      }
      // The further standbys: one that takes writes (promoted by hand, or by another tool) blocks the undo too.
      for (const follower of spec.standbys.map(endpoint)) {
        const state = await tryNode(follower, async (c) => (await c.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r')).rows[0]?.r);
        if (state.ok && state.value === false) {
          throw ApplicationFailure.nonRetryable(`refusing to unfence ${where(primary)}: ${where(follower)} takes writes (not in recovery); re-opening writes would make two writable primaries`, FailureType.UnfenceRefused);
        }
      }
      const location = at(primary);
      const fencedBy = location ? fenceOwner(location) : undefined;
      if (location && fencedBy !== undefined && fencedBy !== owner) {
        log.info('the fence belongs to another run: left in place', { database: name, fencedBy, owner });
        return;
      }
      if (location && isFencedHere(location)) {
        const mine = await controlData(location.dataDir);
        if ((other.value?.tli ?? 0) > mine.timeline) {
          throw ApplicationFailure.nonRetryable(`refusing to unfence ${where(primary)}: ${where(standby)} is on timeline ${other.value?.tli}, newer than its ${mine.timeline}`, FailureType.UnfenceRefused);
        }
        const { started } = await liftShutdownFence(location);
        // A node the fence found stopped stays stopped: the undo restores exactly that.
        if (!started) return;
      }
      // Runs fenced by an earlier Lifeboat (a read-only default) are undone the way they were fenced.
      await withNode(primary, async (c) => {
        const ro = await c.query<{ v: string }>("SELECT current_setting('default_transaction_read_only') AS v");
        if (ro.rows[0]?.v === 'on') {
          await c.query('SET default_transaction_read_only = off');
          await c.query('ALTER SYSTEM RESET default_transaction_read_only');
          await c.query('SELECT pg_reload_conf()');
        }
      });
      const state = await withNode(primary, async (c) => (await c.query<{ v: string; r: boolean }>("SELECT current_setting('default_transaction_read_only') AS v, pg_is_in_recovery() AS r")).rows[0]);
      if (state?.v !== 'off' || state.r !== false) throw new Error(`unfence did not take yet on ${where(primary)} (read-only ${state?.v}, in recovery ${String(state?.r)})`);
    },

    async replayedUpTo(targetLsn: string): Promise<{ caughtUp: boolean; replayLsn: string }> {
      return withNode(standby, async (c) => {
        const r = await c.query<{ in_recovery: boolean; replay: string | null }>(
          'SELECT pg_is_in_recovery() AS in_recovery, pg_last_wal_replay_lsn()::text AS replay',
        );
        const row = r.rows[0];
        if (!row?.replay) throw new Error(`${where(standby)} reports no replay position (in recovery: ${String(row?.in_recovery)})`);
        return { caughtUp: lsnToBigInt(row.replay) >= lsnToBigInt(targetLsn), replayLsn: row.replay };
      });
    },

    async measureRpo(detectedAt: string, inspected?: ReplicationInspection): Promise<RpoMeasurement> {
      const inspection = inspected ?? (await this.inspect());
      if (!inspection.standby.reachable) throw new Error(`standby ${where(standby)} unreachable: ${inspection.standby.error ?? ''}`);
      if (inspection.lagBytes !== undefined) {
        const wal = `old primary reachable: ${inspection.lagBytes} bytes of WAL between its current LSN ${inspection.primary.currentLsn} and the standby's replay LSN ${inspection.standby.replayLsn}`;
        if (inspection.lagBytes === 0) {
          // Nothing unreplayed: no second of data is at risk, whatever replay_lag says (NULL when idle).
          return { measuredBytes: 0, measuredSeconds: 0, method: `${wal}: nothing at risk` };
        }
        if (inspection.lagSeconds !== undefined) {
          return { measuredBytes: inspection.lagBytes, measuredSeconds: inspection.lagSeconds, method: `${wal}; seconds from pg_stat_replication.replay_lag` };
        }
        const why = inspection.standby.streaming === true
          ? 'pg_stat_replication.replay_lag is NULL (no lag sample yet)'
          : `the standby is not streaming (WAL receiver ${inspection.standby.walReceiver ?? 'not running'}), so pg_stat_replication has no replay_lag for it`;
        return { measuredBytes: inspection.lagBytes, method: `${wal}; seconds unknown: ${why}` };
      }
      const last = inspection.standby.lastReplayedCommitAt;
      return {
        measuredSeconds: last ? Math.max(0, (Date.parse(detectedAt) - Date.parse(last)) / 1000) : undefined,
        method: last
          ? `old primary unreachable: upper bound, detection time minus the last replayed commit (${last}); bytes unknown`
          : 'old primary unreachable and no commit replayed since the standby started: loss window unknown',
      };
    },

    async promoteStandby(): Promise<PromotionOutcome> {
      return withNode(standby, async (c) => {
        const before = await c.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r');
        // Idempotent: a retry after a lost worker finds the standby already promoted.
        const alreadyPromoted = before.rows[0]?.r === false;
        if (!alreadyPromoted) {
          const r = await c.query<{ ok: boolean }>('SELECT pg_promote(true, 60) AS ok');
          if (r.rows[0]?.ok !== true) throw new Error(`pg_promote() on ${where(standby)} did not finish within 60s`);
        }
        const t = await c.query<{ tli: string }>('SELECT substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8) AS tli');
        return {
          alreadyPromoted,
          timeline: Number.parseInt(t.rows[0]?.tli ?? '0', 16),
          promotedAt: new Date().toISOString(),
          newPrimary: standby,
        };
      });
    },

    async verifyWrite(runId: string): Promise<WriteCheck> {
      const started = Date.now();
      return withNode(standby, async (c) => {
        await c.query('CREATE SCHEMA IF NOT EXISTS lifeboat');
        await c.query(
          'CREATE TABLE IF NOT EXISTS lifeboat.write_checks (id bigserial PRIMARY KEY, run_id text NOT NULL, checked_at timestamptz NOT NULL DEFAULT now())',
        );
        const inserted = await c.query<{ id: string }>('INSERT INTO lifeboat.write_checks (run_id) VALUES ($1) RETURNING id::text AS id', [runId]);
        const id = inserted.rows[0]?.id;
        const read = await c.query<{ run_id: string }>('SELECT run_id FROM lifeboat.write_checks WHERE id = $1', [id]);
        if (read.rows[0]?.run_id !== runId) {
          throw ApplicationFailure.create({ type: FailureType.WriteCheckFailed, message: `wrote row ${id ?? '?'} on ${where(standby)} but could not read it back` });
        }
        return { ok: true as const, latencyMs: Date.now() - started, node: standby };
      });
    },
  };
}

/** How long a re-pointed standby may take to stream from the new primary. */
const FOLLOW_TIMEOUT_MS = 30_000;

/** host and port of a libpq connection string (`host=... port=...`), when it names both. */
function conninfoAddress(conninfo: string): { host: string; port: number } | undefined {
  const host = /(?:^|\s)host=('?)([^\s']+)\1/.exec(conninfo)?.[2];
  const port = /(?:^|\s)port=('?)(\d+)\1/.exec(conninfo)?.[2];
  return host && port ? { host, port: Number(port) } : undefined;
}

/** A SQL string literal (ALTER SYSTEM takes no parameters). */
function literal(text: string): string {
  return `'${text.replace(/'/g, "''")}'`;
}

/** Writes a file in a data directory, owned by the cluster's OS user. */
function writeOwned(file: string, text: string, how: 'append' | 'replace'): void {
  if (how === 'append') appendFileSync(file, text);
  else writeFileSync(file, text);
  const owner = clusterOwner();
  if (owner) chownSync(file, owner.uid, owner.gid);
}

function isConnectionError(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  const message = (err as Error).message ?? '';
  return (
    (typeof code === 'string' && /^E[A-Z]+$/.test(code)) || // ECONNREFUSED, ETIMEDOUT, EHOSTUNREACH, ENETUNREACH, ENOTFOUND, EAI_AGAIN...
    code === 'EAI_AGAIN' ||
    code === '57P01' || // admin shutdown
    code === '57P03' || // cannot connect now
    message.includes('timeout expired') ||
    message.includes('Connection terminated')
  );
}
