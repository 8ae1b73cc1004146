/**
 * Real PostgreSQL 15 clusters for the lab: a primary and a hot standby per
 * database, streaming through a replication slot, with data checksums and
 * wal_log_hints (so failback can pg_rewind). initdb and pg_ctl refuse root, so
 * as root they run as the `postgres` user.
 */
import { appendFileSync, chmodSync, chownSync, existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { Client } from 'pg';
import { isAlive, run, stopPid, waitFor } from './processes';

export const PG_MAJOR = 15;

export interface ClusterSpec {
  /** Database name inside the cluster, created on the primary. */
  database: string;
  host: string;
  port: number;
  dataDir: string;
  logFile: string;
}

function pgBin(tool: string): string {
  const dir = process.env.LIFEBOAT_PG_BIN ?? `/usr/lib/postgresql/${PG_MAJOR}/bin`;
  const bin = path.join(dir, tool);
  if (!existsSync(bin)) {
    throw new Error(`${bin} not found: PostgreSQL ${PG_MAJOR} is not installed (npm test / npm run demo install it; or apt-get install postgresql-${PG_MAJOR})`);
  }
  return bin;
}

interface PgUser {
  uid: number;
  gid: number;
}

/** The OS user that owns the clusters: `postgres` when we are root, else ourselves. */
function clusterOwner(): PgUser | undefined {
  if (process.getuid?.() !== 0) return undefined;
  try {
    const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
    return { uid, gid };
  } catch {
    throw new Error('running as root but there is no postgres user: install postgresql-15 from Debian, which creates it');
  }
}

function asOwner(tool: string, args: readonly string[]): Promise<string> {
  const owner = clusterOwner();
  const bin = pgBin(tool);
  return owner ? run('runuser', ['-u', 'postgres', '--', bin, ...args]) : run(bin, args);
}

/** Creates a data directory (mode 0700, as PostgreSQL demands) owned by the cluster owner; its parents must be traversable. */
export function prepareDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  const owner = clusterOwner();
  if (owner) chownSync(dir, owner.uid, owner.gid);
}

const LAB_SETTINGS = (spec: ClusterSpec) => `
# --- Lifeboat lab settings ---
listen_addresses = '${spec.host}'
port = ${spec.port}
unix_socket_directories = ''
wal_level = replica
max_wal_senders = 10
max_replication_slots = 10
wal_keep_size = '128MB'
wal_log_hints = on
hot_standby = on
hot_standby_feedback = on
shared_buffers = '32MB'
logging_collector = off
`;

export async function initPrimary(spec: ClusterSpec): Promise<void> {
  prepareDir(spec.dataDir);
  await asOwner('initdb', ['-D', spec.dataDir, '-U', 'postgres', '--auth=trust', '--data-checksums', '-E', 'UTF8', '--locale=C.UTF-8']);
  appendFileSync(spec.dataDir + '/postgresql.conf', LAB_SETTINGS(spec));
}

/** A hot standby of `primary`, streaming through `slot` (created here). */
export async function initStandby(primary: ClusterSpec, standby: ClusterSpec, slot: string): Promise<void> {
  await withClient(primary, 'postgres', async (c) => {
    const exists = await c.query('SELECT 1 FROM pg_replication_slots WHERE slot_name = $1', [slot]);
    if (exists.rowCount === 0) await c.query('SELECT pg_create_physical_replication_slot($1)', [slot]);
  });
  rmSync(standby.dataDir, { recursive: true, force: true });
  prepareDir(standby.dataDir);
  await asOwner('pg_basebackup', [
    '-h', primary.host, '-p', String(primary.port), '-U', 'postgres',
    '-D', standby.dataDir, '-R', '-X', 'stream', '-S', slot, '--checkpoint=fast',
  ]);
  // pg_basebackup copied the primary's settings; the standby listens on its own port.
  appendFileSync(standby.dataDir + '/postgresql.conf', `\n# --- Lifeboat lab: standby ---\nport = ${standby.port}\nlisten_addresses = '${standby.host}'\n`);
}

export async function startCluster(spec: ClusterSpec): Promise<number> {
  const running = clusterPid(spec);
  if (running) return running;
  chmodSync(spec.dataDir, 0o700);
  const owner = clusterOwner();
  if (owner && !existsSync(spec.logFile)) {
    appendFileSync(spec.logFile, '');
    chownSync(spec.logFile, owner.uid, owner.gid);
  }
  await asOwner('pg_ctl', ['-D', spec.dataDir, '-l', spec.logFile, '-w', '-t', '60', 'start']);
  const pid = clusterPid(spec);
  if (!pid) throw new Error(`PostgreSQL in ${spec.dataDir} did not start; see ${spec.logFile}`);
  return pid;
}

/** The postmaster's pid from postmaster.pid, when it is running. */
export function clusterPid(spec: Pick<ClusterSpec, 'dataDir'>): number | undefined {
  const file = path.join(spec.dataDir, 'postmaster.pid');
  if (!existsSync(file)) return undefined;
  const pid = Number(readFileSync(file, 'utf8').split('\n')[0]);
  return isAlive(pid) ? pid : undefined;
}

/** Fast shutdown (SIGINT) by pid; `kill` is a crash (SIGKILL), for unplanned drills and tests. */
export async function stopCluster(spec: Pick<ClusterSpec, 'dataDir'>, how: 'fast' | 'kill' = 'fast'): Promise<void> {
  const pid = clusterPid(spec);
  if (!pid) return;
  if (how === 'kill') {
    // Kill the whole process group of the postmaster's children too, as a lost machine would.
    const children = execFileSync('ps', ['-o', 'pid=', '--ppid', String(pid)]).toString().split('\n').map((s) => Number(s.trim())).filter(Boolean);
    process.kill(pid, 'SIGKILL');
    for (const child of children) {
      try {
        process.kill(child, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
    await waitFor(`postgres ${pid} to die`, async () => (isAlive(pid) ? undefined : true), 10_000, 50);
    return;
  }
  await stopPid(pid, 'SIGINT', 60_000);
}

export async function withClient<T>(spec: Pick<ClusterSpec, 'host' | 'port'>, database: string, work: (c: Client) => Promise<T>): Promise<T> {
  const client = new Client({ host: spec.host, port: spec.port, user: 'postgres', database, connectionTimeoutMillis: 3000 });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Creates the lab's database and a table of sample rows the drills can count. */
export async function seedPrimary(spec: ClusterSpec, rows = 100): Promise<void> {
  await withClient(spec, 'postgres', async (c) => {
    const exists = await c.query('SELECT 1 FROM pg_database WHERE datname = $1', [spec.database]);
    if (exists.rowCount === 0) await c.query(`CREATE DATABASE "${spec.database.replace(/"/g, '')}"`);
  });
  await withClient(spec, spec.database, async (c) => {
    await c.query('CREATE TABLE IF NOT EXISTS lab_records (id bigserial PRIMARY KEY, payload text NOT NULL, written_at timestamptz NOT NULL DEFAULT now())');
    await c.query("INSERT INTO lab_records (payload) SELECT 'seed ' || g FROM generate_series(1, $1::int) g", [rows]);
  });
}

export async function waitForStreaming(standby: ClusterSpec, timeoutMs = 60_000): Promise<void> {
  await waitFor(
    `the standby on port ${standby.port} to stream`,
    () =>
      withClient(standby, 'postgres', async (c) => {
        const r = await c.query<{ status: string | null }>('SELECT (SELECT status FROM pg_stat_wal_receiver LIMIT 1) AS status');
        return r.rows[0]?.status === 'streaming' ? true : undefined;
      }),
    timeoutMs,
  );
}

export interface NodeLiveState {
  reachable: boolean;
  inRecovery?: boolean;
  readOnly?: boolean;
  error?: string;
}

export async function liveState(spec: Pick<ClusterSpec, 'host' | 'port'>): Promise<NodeLiveState> {
  try {
    return await withClient(spec, 'postgres', async (c) => {
      const r = await c.query<{ r: boolean; ro: string }>("SELECT pg_is_in_recovery() AS r, current_setting('default_transaction_read_only') AS ro");
      return { reachable: true, inRecovery: r.rows[0]?.r, readOnly: r.rows[0]?.ro === 'on' };
    });
  } catch (err) {
    return { reachable: false, error: (err as Error).message };
  }
}

export function removeCluster(spec: Pick<ClusterSpec, 'dataDir'>): void {
  rmSync(spec.dataDir, { recursive: true, force: true });
}
