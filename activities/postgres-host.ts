/**
 * Host-level operations on a self-managed PostgreSQL 15 cluster: start, stop
 * by pid, run its tools (as the `postgres` user when we are root: initdb,
 * pg_ctl and pg_rewind refuse root). Used by the lab and by the provider
 * activities that rebuild a standby on the database host.
 */
import { appendFileSync, chmodSync, chownSync, existsSync, mkdirSync, readFileSync, realpathSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { isAlive, run, stopPid, waitFor } from '../lib/processes';

/** Where a cluster lives on this host. */
export interface ClusterLocation {
  dataDir: string;
  logFile: string;
}

export const PG_MAJOR = 15;

export function pgBin(tool: string): string {
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
export function clusterOwner(): PgUser | undefined {
  if (process.getuid?.() !== 0) return undefined;
  try {
    const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
    return { uid, gid };
  } catch {
    throw new Error('running as root but there is no postgres user: install postgresql-15 from Debian, which creates it');
  }
}

export function asOwner(tool: string, args: readonly string[], env?: Record<string, string>): Promise<string> {
  const { command, args: argv } = ownerCommand(tool, args);
  const options = env ? { env: { ...process.env, ...env } } : {};
  return run(command, argv, options);
}

/** The command line that runs a PostgreSQL tool as the cluster owner, for callers that stream its output. */
export function ownerCommand(tool: string, args: readonly string[]): { command: string; args: string[] } {
  const bin = pgBin(tool);
  return clusterOwner() ? { command: 'runuser', args: ['-u', 'postgres', '--', bin, ...args] } : { command: bin, args: [...args] };
}

/** Creates a data directory (mode 0700, as PostgreSQL demands) owned by the cluster owner; its parents must be traversable. */
export function prepareDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  const owner = clusterOwner();
  if (owner) chownSync(dir, owner.uid, owner.gid);
}

/**
 * Starts the cluster unless it runs. `options.env` is added to the server's environment: its archive_command
 * and restore_command inherit it (pgBackRest's secrets travel that way, never in a file).
 */
export async function startCluster(spec: ClusterLocation, options: { env?: Record<string, string> } = {}): Promise<number> {
  const running = clusterPid(spec);
  if (running) return running;
  chmodSync(spec.dataDir, 0o700);
  const owner = clusterOwner();
  if (owner && !existsSync(spec.logFile)) {
    appendFileSync(spec.logFile, '');
    chownSync(spec.logFile, owner.uid, owner.gid);
  }
  await asOwner('pg_ctl', ['-D', spec.dataDir, '-l', spec.logFile, '-w', '-t', '60', 'start'], options.env);
  const pid = clusterPid(spec);
  if (!pid) throw new Error(`PostgreSQL in ${spec.dataDir} did not start; see ${spec.logFile}`);
  return pid;
}

/**
 * The postmaster's pid from postmaster.pid, when that postmaster is running. A pid file outlives a crash
 * (SIGKILL, a lost machine) and its number is reused by the kernel for anything; signalling that would stop
 * an unrelated process (a fence, a lab reset). So the process must be this cluster's postmaster: its
 * working directory is the data directory (the postmaster chdirs there), or, where /proc/<pid>/cwd cannot be
 * read (another user's process), its command is postgres.
 */
export function clusterPid(spec: Pick<ClusterLocation, 'dataDir'>): number | undefined {
  const file = path.join(spec.dataDir, 'postmaster.pid');
  if (!existsSync(file)) return undefined;
  const pid = Number(readFileSync(file, 'utf8').split('\n')[0]);
  if (!Number.isInteger(pid) || pid <= 0 || !isAlive(pid)) return undefined;
  return isPostmasterOf(pid, spec.dataDir) ? pid : undefined;
}

/** Whether `pid` is the postmaster of `dataDir` (see clusterPid); without /proc (not Linux), a live pid is taken at its word. */
export function isPostmasterOf(pid: number, dataDir: string): boolean {
  if (!existsSync('/proc/self')) return true;
  try {
    return realpathSync(`/proc/${pid}/cwd`) === realpathSync(dataDir);
  } catch {
    // cwd unreadable (not ours to read) or the process just ended: its command line is readable by anyone.
  }
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    return /^(postgres|postmaster)$/.test(path.basename(argv[0] ?? ''));
  } catch {
    return false;
  }
}

/** Fast shutdown (SIGINT) by pid; `kill` is a crash (SIGKILL), for unplanned drills and tests. */
export async function stopCluster(spec: Pick<ClusterLocation, 'dataDir'>, how: 'fast' | 'kill' = 'fast'): Promise<void> {
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
  // A hung postmaster (stopped by a signal, as `lab fault hang` does) never runs a clean shutdown: stop it as a lost machine stops.
  if (isSuspended(pid)) return stopCluster(spec, 'kill');
  await stopPid(pid, 'SIGINT', 60_000);
}

/** Whether the process is stopped by a signal (state T in /proc/<pid>/stat): it answers nothing until continued. */
export function isSuspended(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return /^T$|^t$/.test(stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3));
  } catch {
    return false;
  }
}

