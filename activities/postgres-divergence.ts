/**
 * PostgreSQL behind the divergence checks (activities/divergence.ts): what a
 * former primary holds past the fork point of the current primary's timeline,
 * read from its stopped data directory before pg_rewind or pg_basebackup
 * would discard it.
 *
 * How it measures, and why this way:
 * - The fork point is the switchpoint the current primary's timeline history
 *   file (`pg_wal/0000000N.history`, read with `pg_read_file`, the permission
 *   pg_rewind needs anyway) records for the former primary's timeline.
 * - The former primary is stopped first (it is about to be rebuilt), so its
 *   end of WAL is final. Its control file (`pg_controldata`) gives its timeline
 *   and state, but after a crash its checkpoint location is far behind the end
 *   of its WAL, so the end comes from `pg_waldump` reading its pg_wal from the
 *   fork point to the first invalid record: where PostgreSQL's own crash
 *   recovery would stop. Every record on the way is counted by type: only a
 *   commit, a prepared transaction or a non-transactional message past the
 *   fork is durable data; a former primary that only logged checkpoints,
 *   snapshots, hint bits or uncommitted changes past it has nothing to lose.
 * - The reconciliation reads the set-aside copy, started alone on a free
 *   loopback port without recovery signals (it replays its own WAL in crash
 *   recovery, so every row it committed is visible), with archiving and
 *   autovacuum off and read-only sessions, then stopped cleanly. Reading the
 *   copy rather than the node itself keeps the node's own directory exactly as
 *   it was for the rebuild, and works when the node died with its host.
 */
import { spawn } from 'node:child_process';
import { appendFileSync, chownSync, existsSync, readdirSync, readFileSync, renameSync, rmSync, statfsSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { ApplicationFailure } from '@temporalio/common';
import type { Client, ClientConfig } from 'pg';
import type { PostgresDatabaseConfig } from '../config/schema';
import type { NodeEndpoint } from '../contract/database';
import type {
  ConfiguredNode,
  DivergedRecords,
  DivergenceMeasurement,
  FormerPrimaryStop,
  ReconciledRow,
  ReconciledTable,
  ReconcileInput,
  ReconciliationReport,
  SetAsideCopy,
  UnreconciledTable,
} from '../contract/divergence';
import { RECONCILIATION_FORMAT } from '../contract/divergence';
import { FailureType } from '../contract/failures';
import { withPgSession } from '../lib/pg';
import { freePort, isAlive, run } from '../lib/processes';
import type { DivergenceProvider, WorkControl } from './divergence';
import { lsnToBigInt } from '../contract/lsn';
import type { NodeLocations, PostgresCredentials } from './postgres';
import { asOwner, clusterOwner, clusterPid, ownerCommand, startCluster, stopCluster, type ClusterLocation } from './postgres-host';

const CONNECT_TIMEOUT_MS = 3000;
const STATEMENT_TIMEOUT_MS = 60_000;
/** Rows read per round trip when comparing a table. */
const BATCH = 1000;

/** Past the fork, these are durable data: a rebuild over them loses what clients were told is committed. */
const COMMITS = new Set(['Transaction/COMMIT', 'Transaction/COMMIT_PREPARED']);
const PREPARES = new Set(['Transaction/PREPARE']);

/** Same text for the same value on both servers, whatever their defaults. */
const COMPARABLE_SESSION = [
  "SET TimeZone = 'UTC'",
  "SET DateStyle = 'ISO, YMD'",
  "SET IntervalStyle = 'postgres'",
  'SET extra_float_digits = 3',
  "SET bytea_output = 'hex'",
];

export function formatLsn(lsn: bigint): string {
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase()}`;
}

/** `Key: value` lines of pg_controldata. */
export function parseControlData(text: string): Map<string, string> {
  const fields = new Map<string, string>();
  for (const line of text.split('\n')) {
    const i = line.indexOf(':');
    if (i > 0) fields.set(line.slice(0, i).trim(), line.slice(i + 1).trim());
  }
  return fields;
}

/** Lines `parentTLI <tab> switchpoint <tab> reason` of a timeline history file. */
export function parseTimelineHistory(text: string): Array<{ parent: number; switchpoint: string }> {
  return text.split('\n').flatMap((line) => {
    const m = /^\s*(\d+)\s+([0-9A-Fa-f]+\/[0-9A-Fa-f]+)/.exec(line);
    return m?.[1] && m[2] ? [{ parent: Number(m[1]), switchpoint: m[2].toUpperCase() }] : [];
  });
}

/** Start LSN of a WAL segment file (TTTTTTTTXXXXXXXXYYYYYYYY) of `segmentSize` bytes. */
export function segmentStart(name: string, segmentSize: number): bigint {
  const log = BigInt(`0x${name.slice(8, 16)}`);
  const seg = BigInt(`0x${name.slice(16, 24)}`);
  const perLog = 0x100000000n / BigInt(segmentSize);
  return (log * perLog + seg) * BigInt(segmentSize);
}

export interface WalWalk {
  records: DivergedRecords;
  /** Start of the first invalid record: the end of the valid WAL. */
  end?: bigint;
  how: string;
  error?: string;
}

/** A pg_waldump record line: `rmgr: Heap len (rec/tot): 54/ 1002, tx: 726, lsn: 0/03000090, prev 0/03000028, desc: INSERT …`. */
const RECORD = /^rmgr: (\S+)\s+len \(rec\/tot\):\s*\d+\/\s*(\d+), tx:\s*\d+, lsn: ([0-9A-F]+\/[0-9A-F]+), prev [0-9A-F]+\/[0-9A-F]+, desc: (\S+)\s*(.*)$/;
const COMMIT_TIME = /^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?(?: [A-Za-z+\-0-9]+)?)/;

/** Folds pg_waldump's record lines and its final error into the records past the fork and the end of WAL. */
export class WalWalker {
  readonly records: DivergedRecords = { total: 0, commits: 0, prepared: 0, messages: 0, byType: {} };
  private last: { lsn: bigint; length: number } | undefined;

  constructor(
    private readonly fork: bigint,
    private readonly segmentSize: number,
    private readonly segmentExists: (name: string) => boolean,
    private readonly timeline: number,
  ) {}

  line(text: string): void {
    const m = RECORD.exec(text);
    if (!m) return;
    const [, rmgr, tot, lsn, type, rest] = m;
    const kind = `${rmgr ?? '?'}/${(type ?? '?').replace(/[,;]$/, '')}`;
    const r = this.records;
    r.total++;
    r.byType[kind] = (r.byType[kind] ?? 0) + 1;
    if (PREPARES.has(kind)) r.prepared++;
    if (kind === 'LogicalMessage/MESSAGE' && /non-transactional/.test(rest ?? '')) r.messages++;
    if (COMMITS.has(kind)) {
      r.commits++;
      const at = COMMIT_TIME.exec(rest ?? '')?.[1];
      if (at) {
        r.firstCommitAt ??= at;
        r.lastCommitAt = at;
      }
    }
    this.last = { lsn: lsnToBigInt(lsn ?? '0/0'), length: Number(tot) };
  }

  /** pg_waldump always ends on an error: the reason it could not read on is where the WAL ends. */
  finish(stderr: string): WalWalk {
    const message = stderr.split('\n').map((l) => l.replace(/^pg_waldump: (error|fatal): /, '').trim()).filter(Boolean).at(-1) ?? '';
    const inner = message.replace(/^error in WAL record at [0-9A-F]+\/[0-9A-F]+: /, '');
    const lastEnd = this.last ? this.last.lsn + BigInt(this.last.length) : undefined;
    const done = (end: bigint, how: string): WalWalk => {
      // A position before the end of the last record read cannot be the end: keep the record's end.
      if (lastEnd !== undefined && end < lastEnd) return { records: this.records, end: lastEnd, how: `end of the last valid record (pg_waldump said: ${message})` };
      return { records: this.records, end, how };
    };
    const segment = /in log segment ([0-9A-F]{24}), offset (\d+)/.exec(inner);
    if (segment?.[1] && segment[2]) return done(segmentStart(segment[1], this.segmentSize) + BigInt(segment[2]), `first invalid page: ${inner}`);
    const after = /could not find a valid record after ([0-9A-F]+\/[0-9A-F]+)/.exec(inner);
    if (after?.[1] && this.records.total === 0) return done(lsnToBigInt(after[1]), `no valid record after the fork point: ${inner}`);
    const at = /\bat ([0-9A-F]+\/[0-9A-F]+)/.exec(inner);
    if (at?.[1]) return done(lsnToBigInt(at[1]), `first invalid record: ${inner}`);
    const missing = /could not (?:find|open|locate)(?: WAL)? file "?([0-9A-F]{24})"?/.exec(inner);
    if (missing?.[1]) {
      if (lastEnd !== undefined) return done(lastEnd, `end of the last valid record; the next segment ${missing[1]} does not exist`);
      // The fork is at a segment boundary and the node never wrote the segment that starts there: nothing past the fork.
      const previous = this.fork > 0n ? segmentName(this.timeline, this.fork - 1n, this.segmentSize) : undefined;
      if (this.fork % BigInt(this.segmentSize) === 0n && previous && this.segmentExists(previous)) {
        return done(this.fork, `the fork point starts segment ${missing[1]}, which the node never wrote (its WAL ends in ${previous})`);
      }
      return { records: this.records, how: 'pg_waldump', error: `the WAL at the fork point is not in the node's pg_wal (${inner}): recycled or removed` };
    }
    if (lastEnd !== undefined) return done(lastEnd, `end of the last valid record (pg_waldump said: ${message || 'nothing'})`);
    return { records: this.records, how: 'pg_waldump', error: `pg_waldump read nothing past the fork point and said: ${message || 'nothing'}` };
  }
}

export function segmentName(timeline: number, lsn: bigint, segmentSize: number): string {
  const size = BigInt(segmentSize);
  const segno = lsn / size;
  const perLog = 0x100000000n / size;
  const hex = (n: bigint | number) => n.toString(16).toUpperCase().padStart(8, '0');
  return `${hex(timeline)}${hex(segno / perLog)}${hex(segno % perLog)}`;
}

const quoteIdent = (s: string) => `"${s.replace(/"/g, '""')}"`;

/**
 * The divergence checks of one PostgreSQL database. `locations` are the data
 * directories this worker's host holds; a node without one cannot be checked here.
 */
export function createPostgresDivergence(name: string, spec: PostgresDatabaseConfig, credentials: PostgresCredentials, locations: NodeLocations = {}): DivergenceProvider {
  const endpoint = (node: ConfiguredNode): NodeEndpoint => ({ region: spec[node].region, host: spec[node].host, port: spec[node].port });
  const other = (node: ConfiguredNode): ConfiguredNode => (node === 'primary' ? 'standby' : 'primary');
  const where = (n: NodeEndpoint) => `${name} ${n.region} (${n.host}:${n.port})`;

  const session = (node: Pick<NodeEndpoint, 'host' | 'port'>, database = spec.database): ClientConfig => ({
    host: node.host,
    port: node.port,
    user: credentials.user,
    password: credentials.password,
    database,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    statement_timeout: STATEMENT_TIMEOUT_MS,
    application_name: 'lifeboat',
  });

  function location(node: ConfiguredNode): ClusterLocation {
    const l = locations[node];
    if (!l) {
      throw ApplicationFailure.nonRetryable(
        `${where(endpoint(node))}: its data directory is not on this worker's host (databases.${name}.${node}.dataDir): the divergence checks must run where the node's files are`,
        FailureType.NotConfigured,
      );
    }
    return l;
  }

  function requireStopped(node: ConfiguredNode, what: string): ClusterLocation {
    const l = location(node);
    if (clusterPid(l)) throw ApplicationFailure.nonRetryable(`${where(endpoint(node))} is running: stop it before ${what}`, FailureType.FormerPrimaryRunning);
    return l;
  }

  return {
    name,

    async stopFormerPrimary(node, recorded, record): Promise<FormerPrimaryStop> {
      const l = location(node);
      const target = endpoint(node);
      const source = endpoint(other(node));
      if (recorded) {
        // An earlier attempt saw the node and started stopping it: finish, and report what it saw.
        if (!recorded.alreadyAStandby) await stopCluster(l);
        return recorded;
      }
      const base = { database: name, node: target };
      if (!clusterPid(l)) {
        const seen = { ...base, alreadyAStandby: false, wasRunning: false };
        record(seen);
        return seen;
      }
      let live: { r: boolean; ro: string; status: string | null; sender: number | null } | undefined;
      try {
        live = await withPgSession(session(target, 'postgres'), async (c) => (await c.query<{ r: boolean; ro: string; status: string | null; sender: number | null }>(
          `SELECT pg_is_in_recovery() AS r, current_setting('default_transaction_read_only') AS ro,
                  (SELECT status FROM pg_stat_wal_receiver LIMIT 1) AS status, (SELECT sender_port FROM pg_stat_wal_receiver LIMIT 1) AS sender`,
        )).rows[0]);
      } catch {
        live = undefined; // running but not answering (fenced at the door, or crashing): stopped all the same
      }
      if (live?.r === true && live.status === 'streaming' && live.sender === source.port) {
        const seen = { ...base, alreadyAStandby: true, wasRunning: true, inRecovery: true, readOnly: live.ro === 'on' };
        record(seen);
        return seen;
      }
      const seen: FormerPrimaryStop = { ...base, alreadyAStandby: false, wasRunning: true, ...(live ? { inRecovery: live.r, readOnly: live.ro === 'on' } : {}) };
      record(seen); // before the stop: a retry after it knows the node was running
      await stopCluster(l);
      return seen;
    },

    async restartFormerPrimary(node, before) {
      if (before.alreadyAStandby) return { restarted: false, reason: 'it was never stopped: it already streams from the current primary' };
      if (!before.wasRunning) return { restarted: false, reason: 'it was not running before the failback' };
      // Never reopen writes on a node that may hold diverged data while another node is primary.
      if (before.inRecovery !== true && before.readOnly !== true) {
        return { restarted: false, reason: `it was a writable primary (or did not answer) before the failback; starting it beside the current primary would reopen a split brain: fence it, then start it by hand` };
      }
      await startCluster(location(node));
      return { restarted: true, reason: before.inRecovery ? 'it was running as a standby' : 'it was running read-only (fenced)' };
    },

    async measureDivergence(node, work): Promise<DivergenceMeasurement> {
      const l = requireStopped(node, 'measuring its end of WAL');
      const target = endpoint(node);
      const source = endpoint(other(node));
      const measuredAt = new Date().toISOString();
      const src = await withPgSession(session(source, 'postgres'), async (c) => {
        const r = (await c.query<{ r: boolean; tli: string | null; lsn: string | null }>(
          `SELECT pg_is_in_recovery() AS r,
                  CASE WHEN pg_is_in_recovery() THEN NULL ELSE substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8) END AS tli,
                  CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_current_wal_lsn()::text END AS lsn`,
        )).rows[0];
        if (!r || r.r || !r.tli || !r.lsn) throw ApplicationFailure.nonRetryable(`${where(source)} is not a primary: there is no new timeline to compare with`, FailureType.StandbyNotHealthy);
        const timeline = Number.parseInt(r.tli, 16);
        const history = timeline > 1 ? (await c.query<{ h: string }>('SELECT pg_read_file($1) AS h', [`pg_wal/${r.tli}.history`])).rows[0]?.h ?? '' : '';
        return { timeline, history, lsn: r.lsn };
      });
      const control = parseControlData(await asOwner('pg_controldata', ['-D', l.dataDir]));
      const segmentSize = Number(control.get('Bytes per WAL segment') ?? 16 * 1024 * 1024);
      const walDir = path.join(l.dataDir, 'pg_wal');
      const segments = readdirSync(walDir).filter((f) => /^[0-9A-F]{24}$/.test(f));
      // A promotion writes its first record on the new timeline before the next checkpoint: the newest segment wins.
      const timeline = Math.max(Number(control.get("Latest checkpoint's TimeLineID") ?? 0), ...segments.map((f) => Number.parseInt(f.slice(0, 8), 16)));
      const base = { database: name, node: target, source, timeline, sourceTimeline: src.timeline, clusterState: control.get('Database cluster state'), measuredAt };
      if (timeline === src.timeline) {
        return { ...base, state: 'not-diverged', walBytes: 0, divergedBytes: 0, method: `the node is on the current primary's timeline ${timeline}: it never left its history and can only be behind it` };
      }
      const fork = parseTimelineHistory(src.history).find((e) => e.parent === timeline);
      if (!fork) {
        return {
          ...base,
          state: 'unknown',
          method: `timeline history ${src.timeline} of ${where(source)}`,
          error: `timeline ${timeline} of ${where(target)} is not in the history of the current primary's timeline ${src.timeline} (${src.history.trim().replace(/\n/g, '; ') || 'no history'}): the two histories are unrelated`,
        };
      }
      const walker = new WalWalker(lsnToBigInt(fork.switchpoint), segmentSize, (f) => segments.includes(f), timeline);
      const { command, args } = ownerCommand('pg_waldump', ['--path', walDir, '--timeline', String(timeline), '--start', fork.switchpoint]);
      const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], signal: work.signal });
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const closed = new Promise<number | null>((resolve, reject) => {
        child.on('error', reject);
        child.on('close', resolve);
      });
      for await (const line of createInterface({ input: child.stdout })) {
        walker.line(line);
        if (walker.records.total % 10_000 === 0) work.alive();
      }
      await closed;
      const walk = walker.finish(stderr);
      const method =
        `fork ${fork.switchpoint} from timeline history ${src.timeline} of ${where(source)} (pg_read_file); ` +
        `timeline ${timeline} and state "${base.clusterState ?? '?'}" from pg_controldata; end of WAL by pg_waldump from the fork: ${walk.how}`;
      if (walk.end === undefined) return { ...base, forkLsn: fork.switchpoint, records: walk.records, state: 'unknown', method, error: walk.error };
      const forkAt = lsnToBigInt(fork.switchpoint);
      const walBytes = Number(walk.end > forkAt ? walk.end - forkAt : 0n);
      const carriesData = walk.records.commits + walk.records.prepared + walk.records.messages > 0;
      return {
        ...base,
        state: carriesData && walBytes > 0 ? 'diverged' : 'not-diverged',
        forkLsn: fork.switchpoint,
        endLsn: formatLsn(walk.end),
        walBytes,
        divergedBytes: carriesData ? walBytes : 0,
        records: walk.records,
        method,
      };
    },

    async setAsideDataDir(node, tag, work): Promise<SetAsideCopy> {
      const l = requireStopped(node, 'copying its data directory aside');
      const copy = `${l.dataDir}.lifeboat-diverged-${tag.replace(/[^A-Za-z0-9_.-]/g, '_')}`;
      const base = { database: name, node: endpoint(node), dataDir: l.dataDir, copy };
      if (existsSync(path.join(copy, 'PG_VERSION'))) return { ...base, bytes: await diskUsage(copy), reused: true };
      const partial = `${copy}.partial`;
      // Only an unfinished copy of an earlier attempt of this run is ever removed: never the node's data, never a finished copy.
      rmSync(partial, { recursive: true, force: true });
      const bytes = await diskUsage(l.dataDir);
      const fs = statfsSync(path.dirname(l.dataDir));
      const free = Number(fs.bavail) * Number(fs.bsize);
      if (free < bytes * 1.05 + 64 * 1024 * 1024) {
        throw ApplicationFailure.nonRetryable(
          `not enough room beside ${l.dataDir} to copy it aside (${bytes} bytes needed, ${free} free): free space or move it aside by hand; nothing was rebuilt`,
          FailureType.NoRoomForCopy,
        );
      }
      work.alive();
      // cp -a keeps owner, modes and times (PostgreSQL refuses a data directory not owned by it or not 0700).
      await run('cp', ['-a', '--reflink=auto', l.dataDir, partial], { signal: work.signal });
      renameSync(partial, copy);
      return { ...base, bytes, reused: false };
    },

    async reconcile(input: ReconcileInput, work: WorkControl): Promise<ReconciliationReport> {
      requireStopped(input.node, 'reading its copy'); // the copy is of a stopped node: never of a live one
      const target = endpoint(input.node);
      const current = endpoint(other(input.node));
      const { copy } = input;
      if (!existsSync(path.join(copy, 'PG_VERSION'))) throw ApplicationFailure.nonRetryable(`no set-aside copy at ${copy}`, FailureType.NotConfigured);
      const started = await startCopy(copy);
      try {
        work.alive();
        const report = await withPgSession(session({ host: '127.0.0.1', port: started.port }), (diverged) =>
          withPgSession(session(current), async (primary) => {
            for (const c of [diverged, primary]) for (const statement of COMPARABLE_SESSION) await c.query(statement);
            return compareDatabase(diverged, primary, input, work);
          }),
        );
        const otherDatabases = await withPgSession(session({ host: '127.0.0.1', port: started.port }, 'postgres'), async (c) =>
          (await c.query<{ d: string }>('SELECT datname AS d FROM pg_database WHERE datallowconn AND NOT datistemplate AND datname <> $1 ORDER BY 1', [spec.database])).rows.map((r) => r.d),
        );
        return {
          format: RECONCILIATION_FORMAT,
          database: name,
          diverged: { ...target, copy },
          current,
          readAt: new Date().toISOString(),
          method:
            `the set-aside copy started alone on 127.0.0.1:${started.port} (no recovery signal, so it replays its own WAL and shows every row it committed; archiving and autovacuum off, read-only sessions), then stopped; ` +
            `each table with a primary key read in key order in batches of ${BATCH} and looked up by key on ${where(current)}; rows compared as md5 of their text form over the columns both sides have, TimeZone UTC, ISO dates`,
          limits: { keys: input.keyLimit, rows: input.rowLimit },
          ...report,
          otherDatabases,
        };
      } finally {
        await asOwner('pg_ctl', ['-D', copy, '-m', 'fast', '-w', '-t', '120', 'stop']).catch(() => undefined);
      }
    },
  };

  /** Starts the set-aside copy as a standalone server on a free loopback port. */
  async function startCopy(copy: string): Promise<{ port: number }> {
    // A recovery signal would make it a standby waiting for WAL: it must come up on its own.
    for (const signal of ['standby.signal', 'recovery.signal']) rmSync(path.join(copy, signal), { force: true });
    const pidFile = path.join(copy, 'postmaster.pid');
    if (existsSync(pidFile)) {
      const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
      if (isAlive(pid) && runsIn(pid, copy)) {
        await stopCluster({ dataDir: copy }); // the copy's server from an attempt that died
      } else {
        // Copied from the crashed node (whose postmaster is dead): a stale lock file of another directory.
        rmSync(pidFile, { force: true });
      }
    }
    const port = await freePort();
    const logFile = `${copy}.reconcile.log`;
    appendFileSync(logFile, '');
    const owner = clusterOwner();
    if (owner) chownSync(logFile, owner.uid, owner.gid);
    const options = [
      `-p ${port}`,
      '-c listen_addresses=127.0.0.1',
      "-c unix_socket_directories=''",
      '-c archive_mode=off',
      "-c synchronous_standby_names=''",
      '-c autovacuum=off',
      '-c default_transaction_read_only=on',
    ].join(' ');
    await asOwner('pg_ctl', ['-D', copy, '-l', logFile, '-w', '-t', '300', '-o', options, 'start']);
    return { port };
  }
}

/** Whether `pid` is a postmaster of `dataDir` (Linux /proc). */
function runsIn(pid: number, dataDir: string): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes(dataDir);
  } catch {
    return false;
  }
}

async function diskUsage(dir: string): Promise<number> {
  const out = await run('du', ['-sb', dir]);
  return Number(out.trim().split(/\s+/)[0] ?? 0);
}

interface TableInfo {
  schema: string;
  table: string;
  pk: string[];
  pk_types: string[];
  columns: string[];
}

async function compareDatabase(diverged: Client, current: Client, input: ReconcileInput, work: WorkControl): Promise<Pick<ReconciliationReport, 'tables' | 'unreconciled' | 'totals'>> {
  const tables = (await diverged.query<TableInfo>(
    `SELECT n.nspname AS schema, c.relname AS "table",
            ARRAY(SELECT a.attname::text FROM unnest(i.indkey) WITH ORDINALITY k(attnum, ord) JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum ORDER BY k.ord) AS pk,
            ARRAY(SELECT format_type(a.atttypid, a.atttypmod) FROM unnest(i.indkey) WITH ORDINALITY k(attnum, ord) JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum ORDER BY k.ord) AS pk_types,
            ARRAY(SELECT a.attname::text FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum) AS columns
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       LEFT JOIN pg_index i ON i.indrelid = c.oid AND i.indisprimary
      WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'
      ORDER BY 1, 2`,
  )).rows;
  const reconciled: ReconciledTable[] = [];
  const unreconciled: UnreconciledTable[] = [];
  for (const t of tables) {
    work.alive();
    const rel = `${quoteIdent(t.schema)}.${quoteIdent(t.table)}`;
    const currentColumns = (await current.query<{ a: string }>(
      'SELECT a.attname::text AS a FROM pg_attribute a WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum',
      [rel],
    )).rows.map((r) => r.a);
    const absent = currentColumns.length === 0;
    if (t.pk.length === 0) {
      const count = async (c: Client) => Number((await c.query<{ n: string }>(`SELECT count(*)::text AS n FROM ${rel}`)).rows[0]?.n ?? 0);
      unreconciled.push({ schema: t.schema, table: t.table, reason: 'no primary key: rows cannot be matched, only counted', rowsOnDiverged: await count(diverged), ...(absent ? {} : { rowsOnCurrent: await count(current) }) });
      continue;
    }
    const common = absent ? t.columns : t.columns.filter((c) => currentColumns.includes(c));
    if (!absent && !t.pk.every((c) => currentColumns.includes(c))) {
      unreconciled.push({ schema: t.schema, table: t.table, reason: `the current primary's table lacks primary key columns ${t.pk.filter((c) => !currentColumns.includes(c)).join(', ')}` });
      continue;
    }
    reconciled.push(await compareTable(diverged, current, t, rel, common, absent ? undefined : currentColumns, input, work));
  }
  return {
    tables: reconciled,
    unreconciled,
    totals: { tables: reconciled.length, missing: reconciled.reduce((n, t) => n + t.missing, 0), different: reconciled.reduce((n, t) => n + t.different, 0) },
  };
}

async function compareTable(
  diverged: Client,
  current: Client,
  t: TableInfo,
  rel: string,
  common: string[],
  currentColumns: string[] | undefined,
  input: ReconcileInput,
  work: WorkControl,
): Promise<ReconciledTable> {
  const pkList = t.pk.map(quoteIdent).join(', ');
  const keyExpr = `ARRAY[${t.pk.map((c) => `${quoteIdent(c)}::text`).join(', ')}]::text[]`;
  const rowHash = `md5(ROW(${common.map(quoteIdent).join(', ')})::text)`;
  const result: ReconciledTable = {
    schema: t.schema,
    table: t.table,
    primaryKey: t.pk,
    rows: 0,
    missing: 0,
    different: 0,
    missingKeys: [],
    differentKeys: [],
    keysTruncated: false,
    sample: [],
    sampleTruncated: false,
    ...(currentColumns ? {} : { absentOnCurrent: true }),
  };
  if (currentColumns) {
    const onlyDiverged = t.columns.filter((c) => !currentColumns.includes(c));
    const onlyCurrent = currentColumns.filter((c) => !t.columns.includes(c));
    if (onlyDiverged.length) result.columnsOnlyOnDiverged = onlyDiverged;
    if (onlyCurrent.length) result.columnsOnlyOnCurrent = onlyCurrent;
  }
  let after: string[] | undefined;
  for (;;) {
    work.alive();
    const wantRows = result.sample.length < input.rowLimit;
    const where = after ? `WHERE (${pkList}) > (${t.pk_types.map((type, i) => `$${i + 1}::${type}`).join(', ')})` : '';
    const batch = (await diverged.query<{ k: string[]; h: string; r: Record<string, unknown> | null }>(
      `SELECT ${keyExpr} AS k, ${rowHash} AS h, ${wantRows ? 'to_jsonb(t)' : 'NULL::jsonb'} AS r FROM ${rel} t ${where} ORDER BY ${pkList} LIMIT ${BATCH}`,
      after ?? [],
    )).rows;
    if (batch.length === 0) break;
    const found = new Map<string, { h: string; r: Record<string, unknown> | null }>();
    if (currentColumns) {
      const keys = JSON.stringify(batch.map((b) => b.k));
      const lookup = (await current.query<{ k: string[]; h: string; r: Record<string, unknown> | null }>(
        `SELECT ${keyExpr} AS k, ${rowHash} AS h, ${wantRows ? 'to_jsonb(t)' : 'NULL::jsonb'} AS r FROM ${rel} t
          WHERE (${pkList}) IN (SELECT ${t.pk_types.map((type, i) => `(x->>${i})::${type}`).join(', ')} FROM json_array_elements($1::json) x)`,
        [keys],
      )).rows;
      for (const row of lookup) found.set(JSON.stringify(row.k), { h: row.h, r: row.r });
    }
    for (const row of batch) {
      result.rows++;
      const match = found.get(JSON.stringify(row.k));
      if (match && match.h === row.h) continue;
      const status: ReconciledRow['status'] = match ? 'different' : 'missing';
      if (status === 'missing') result.missing++;
      else result.different++;
      const keys = status === 'missing' ? result.missingKeys : result.differentKeys;
      if (result.missingKeys.length + result.differentKeys.length < input.keyLimit) keys.push(row.k);
      else result.keysTruncated = true;
      if (result.sample.length < input.rowLimit && row.r) {
        result.sample.push({ key: row.k, status, diverged: row.r, ...(match?.r ? { current: match.r } : {}) });
      } else {
        result.sampleTruncated = true;
      }
    }
    after = batch.at(-1)?.k;
    if (batch.length < BATCH) break;
  }
  return result;
}
