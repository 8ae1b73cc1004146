/**
 * Real PostgreSQL 15 clusters for the lab: a primary and a hot standby per
 * database, streaming through a replication slot, with data checksums and
 * wal_log_hints (so failback can pg_rewind). initdb and pg_ctl refuse root, so
 * as root they run as the `postgres` user.
 */
import { appendFileSync, rmSync } from 'node:fs';
import type { Client } from 'pg';
import { withPgSession } from '../lib/pg';
import { waitFor } from '../lib/processes';
import { asOwner, prepareDir } from '../activities/postgres-host';

export { PG_MAJOR, clusterPid, prepareDir, startCluster, stopCluster } from '../activities/postgres-host';

export interface ClusterSpec {
  /** Database name inside the cluster, created on the primary. */
  database: string;
  host: string;
  port: number;
  dataDir: string;
  logFile: string;
  /** Opt-in continuous WAL archiving (off when absent). */
  archiving?: ArchivingSpec;
}

export interface ArchivingSpec {
  /** PostgreSQL's archive_command, e.g. pgBackRest's archive-push (activities/pgbackrest-config.ts). */
  command: string;
  /** A unix socket directory for the server: pgBackRest reaches PostgreSQL by socket only. */
  socketDir: string;
  /** archive_timeout: a segment is switched (and archived) at least this often while there are writes; 0 leaves it off. */
  timeoutSeconds?: number;
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

/** PostgreSQL quotes a setting's value in single quotes, doubling any inside. */
const quoted = (value: string) => `'${value.replace(/'/g, "''")}'`;

const ARCHIVING_SETTINGS = (a: ArchivingSpec) => `
# --- Lifeboat lab: continuous archiving ---
archive_mode = on
archive_command = ${quoted(a.command)}
archive_timeout = ${a.timeoutSeconds ?? 0}
unix_socket_directories = ${quoted(a.socketDir)}
`;

export async function initPrimary(spec: ClusterSpec): Promise<void> {
  prepareDir(spec.dataDir);
  await asOwner('initdb', ['-D', spec.dataDir, '-U', 'postgres', '--auth=trust', '--data-checksums', '-E', 'UTF8', '--locale=C.UTF-8']);
  appendFileSync(spec.dataDir + '/postgresql.conf', LAB_SETTINGS(spec));
  if (spec.archiving) {
    prepareDir(spec.archiving.socketDir);
    appendFileSync(spec.dataDir + '/postgresql.conf', ARCHIVING_SETTINGS(spec.archiving));
  }
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

export function withClient<T>(spec: Pick<ClusterSpec, 'host' | 'port'>, database: string, work: (c: Client) => Promise<T>): Promise<T> {
  return withPgSession({ host: spec.host, port: spec.port, user: 'postgres', database, connectionTimeoutMillis: 3000 }, work);
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
