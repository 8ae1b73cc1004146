/**
 * Fencing a self-managed PostgreSQL primary on its own host, with what
 * PostgreSQL itself enforces for every client: a clean shutdown (in fast mode
 * the walsenders stream the shutdown checkpoint to the standbys first, as
 * Patroni's switchover does) and a `standby.signal`, so that whoever restarts
 * the node gets a read-only standby, not a second writable primary. The undo
 * checks the world first: it never re-opens writes while another node of the
 * database has left recovery or is on a newer timeline.
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { asOwner, clusterPid, startCluster, stopCluster, type ClusterLocation } from './postgres-host';

/** What Lifeboat leaves in a fenced data directory, so its undo removes only what it wrote. */
export const FENCE_MARKER = 'lifeboat-fence.json';

export interface ControlData {
  systemIdentifier: string;
  state: string;
  /** The latest checkpoint's location (after a clean shutdown: the shutdown checkpoint, the node's end of WAL). */
  checkpointLsn: string;
  timeline: number;
}

/** Reads the cluster's control file with pg_controldata (works on a stopped cluster). */
export async function controlData(dataDir: string): Promise<ControlData> {
  const text = await asOwner('pg_controldata', ['-D', dataDir], { LC_ALL: 'C' });
  const field = (label: string): string => {
    const line = text.split('\n').find((l) => l.startsWith(`${label}:`));
    if (!line) throw new Error(`pg_controldata of ${dataDir} has no "${label}"`);
    return line.slice(label.length + 1).trim();
  };
  return {
    systemIdentifier: field('Database system identifier'),
    state: field('Database cluster state'),
    checkpointLsn: field('Latest checkpoint location'),
    timeline: Number(field("Latest checkpoint's TimeLineID")),
  };
}

/** The port a running postmaster listens on, from postmaster.pid (line 4). */
export function postmasterPort(dataDir: string): number | undefined {
  const file = path.join(dataDir, 'postmaster.pid');
  if (!existsSync(file)) return undefined;
  const port = Number(readFileSync(file, 'utf8').split('\n')[3]);
  return Number.isFinite(port) ? port : undefined;
}

export interface ShutdownFence {
  /** `shutdown`: Lifeboat stopped it; `found-stopped`: it was not running (crashed or stopped by someone); `already-fenced`: another run's fence is in place. */
  how: 'shutdown' | 'found-stopped' | 'already-fenced';
  control: ControlData;
  /** The run whose fence this is (the marker's owner). */
  owner?: string;
}

/** The run that fenced this data directory (its marker's owner), if fenced. */
export function fenceOwner(location: ClusterLocation): string | undefined {
  const file = path.join(location.dataDir, FENCE_MARKER);
  if (!existsSync(file)) return undefined;
  const marker = JSON.parse(readFileSync(file, 'utf8')) as { owner?: unknown };
  return typeof marker.owner === 'string' ? marker.owner : 'an unknown run';
}

/**
 * Stops the cluster (fast shutdown) and leaves a standby.signal and a marker.
 * `check` runs first with the running node's own word (port, system identifier), so the wrong cluster is never stopped.
 */
export async function fenceByShutdown(location: ClusterLocation, expected: { port: number; systemIdentifier?: string }, marker: Record<string, unknown>, writeOwned: (file: string, text: string) => void): Promise<ShutdownFence> {
  if (!existsSync(path.join(location.dataDir, 'PG_VERSION'))) throw new Error(`no PostgreSQL cluster in ${location.dataDir}`);
  const before = await controlData(location.dataDir);
  if (expected.systemIdentifier && expected.systemIdentifier !== before.systemIdentifier) {
    throw new Error(`${location.dataDir} holds cluster ${before.systemIdentifier}, but the node on port ${expected.port} reports ${expected.systemIdentifier}: refusing to stop the wrong cluster`);
  }
  const running = clusterPid(location) !== undefined;
  const existing = fenceOwner(location);
  if (existing !== undefined && existing !== marker.owner) {
    // Another run's fence stays that run's: this one neither rewrites its marker nor (in its undo) lifts it,
    // but makes sure it holds: the standby.signal is written again, the node stopped.
    if (running && postmasterPort(location.dataDir) !== expected.port) {
      throw new Error(`the cluster in ${location.dataDir} listens on port ${postmasterPort(location.dataDir) ?? '?'}, not ${expected.port}: refusing to stop the wrong cluster`);
    }
    writeOwned(path.join(location.dataDir, 'standby.signal'), '');
    if (running) await stopCluster(location, 'fast');
    return { how: 'already-fenced', control: await controlData(location.dataDir), owner: existing };
  }
  if (running) {
    const port = postmasterPort(location.dataDir);
    if (port !== expected.port) throw new Error(`the cluster in ${location.dataDir} listens on port ${port ?? '?'}, not ${expected.port}: refusing to stop the wrong cluster`);
  }
  // The marker goes first: an undo after a half-applied fence knows what to remove.
  // A retry of the same run keeps the first marker (it knows whether the node was running before the fence).
  if (existing === undefined) writeOwned(path.join(location.dataDir, FENCE_MARKER), JSON.stringify({ ...marker, at: new Date().toISOString(), wasRunning: running }));
  writeOwned(path.join(location.dataDir, 'standby.signal'), '');
  if (running) await stopCluster(location, 'fast');
  return { how: running ? 'shutdown' : 'found-stopped', control: await controlData(location.dataDir) };
}

/** Whether Lifeboat's fence is in place in this data directory. */
export function isFencedHere(location: ClusterLocation): boolean {
  return existsSync(path.join(location.dataDir, FENCE_MARKER));
}

/** Removes what the fence wrote (standby.signal and the marker) and, if it was running before, starts the node again. */
export async function liftShutdownFence(location: ClusterLocation): Promise<{ started: boolean }> {
  const markerFile = path.join(location.dataDir, FENCE_MARKER);
  if (!existsSync(markerFile)) return { started: clusterPid(location) !== undefined };
  const marker = JSON.parse(readFileSync(markerFile, 'utf8')) as { wasRunning?: boolean };
  rmSync(path.join(location.dataDir, 'standby.signal'), { force: true });
  if (marker.wasRunning !== false) await startCluster(location);
  rmSync(markerFile, { force: true });
  return { started: marker.wasRunning !== false };
}

/** A control-file state pg_rewind accepts without running crash recovery itself. */
export function cleanlyStopped(state: string): boolean {
  return state === 'shut down' || state === 'shut down in recovery';
}

/**
 * Before pg_rewind: a cluster that crashed needs crash recovery first, which pg_rewind runs in single-user
 * mode, and a single-user server refuses a standby.signal. Only then is the signal removed (the caller
 * writes it back as soon as pg_rewind returns, whatever happened); a cleanly stopped cluster keeps it.
 */
export async function prepareForRewind(location: ClusterLocation): Promise<void> {
  if (!existsSync(path.join(location.dataDir, 'PG_VERSION'))) return;
  const { state } = await controlData(location.dataDir);
  if (!cleanlyStopped(state)) rmSync(path.join(location.dataDir, 'standby.signal'), { force: true });
}

/** After a rebuild made the node a standby of the new primary: the fence's marker is no longer its state. */
export function clearFenceMarker(location: ClusterLocation): void {
  rmSync(path.join(location.dataDir, FENCE_MARKER), { force: true });
}
