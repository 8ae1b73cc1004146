/**
 * Faults the lab injects on purpose, for drills, the sentinel's tests and the
 * failover test: a primary killed (SIGKILL, as a lost machine), a primary hung
 * (SIGSTOP: its port still accepts, nothing answers), a region lost (its
 * primaries and its service killed), replication lagging (every standby of a
 * database applies WAL N seconds late: recovery_min_apply_delay). Each says what
 * it did to which process and when: the fault time is what a recovery is
 * measured from.
 *
 * `heal` continues what was hung and lifts the lag. It never restarts what was killed: a killed
 * primary may have been replaced by a promotion, and bringing it back writable
 * would make two primaries; a failback brings it back, as a standby.
 */
import { databaseNodes, postgresDatabase, postgresDatabases, type LoadedConfig } from '../config/load';
import { isAlive } from '../lib/processes';
import { isSuspended } from '../activities/postgres-host';
import type { Lab } from './lab';
import { clusterPid, liveState, stopCluster, withClient, type ClusterSpec } from './postgres';

export interface FaultRecord {
  fault: 'kill' | 'hang' | 'continue' | 'lag' | 'unlag';
  /** What was hit: `orders primary (east, 127.0.0.1:5433)` or `service-east`. */
  what: string;
  pid: number;
  at: string;
}

/** The node of `database` that takes writes now (after a promotion, the former standby), found live. */
async function writableNode(lab: Lab, loaded: LoadedConfig, database: string): Promise<{ node: 'primary' | 'standby'; spec: ClusterSpec; region: string }> {
  for (const n of labNodes(lab, loaded, database)) {
    const live = await liveState(n.spec);
    if (live.reachable && live.inRecovery === false) return n;
  }
  throw new Error(`database ${database} has no writable node answering now (nothing to kill or hang): see lifeboat lab status`);
}

/** Every node of a database in the lab: the configured primary, then its standbys. */
function labNodes(lab: Lab, loaded: LoadedConfig, database: string): Array<{ node: 'primary' | 'standby'; spec: ClusterSpec; region: string }> {
  const clusters = lab.clusters(database);
  const db = postgresDatabase(loaded.config, database);
  return [
    { node: 'primary', spec: clusters.primary, region: db.primary.region },
    { node: 'standby', spec: clusters.standby, region: db.standby.region },
    ...clusters.standbys.map((s, i) => ({ node: 'standby' as const, spec: s.cluster, region: db.standbys[i]!.region })),
  ];
}

function described(database: string, n: { node: string; spec: ClusterSpec; region: string }): string {
  return `${database} ${n.node === 'primary' ? 'primary' : 'standby promoted earlier, now primary'} (${n.region}, ${n.spec.host}:${n.spec.port})`;
}

/** SIGKILLs the writable node of `database` and its children. */
export async function killDatabase(lab: Lab, loaded: LoadedConfig, database: string): Promise<FaultRecord> {
  const target = await writableNode(lab, loaded, database);
  const pid = clusterPid(target.spec);
  if (!pid) throw new Error(`${described(database, target)} answers but has no postmaster.pid in ${target.spec.dataDir}`);
  const at = new Date().toISOString();
  await stopCluster(target.spec, 'kill');
  return { fault: 'kill', what: described(database, target), pid, at };
}

/** SIGSTOPs the postmaster of the writable node: connections are accepted by the kernel, never answered. */
export async function hangDatabase(lab: Lab, loaded: LoadedConfig, database: string): Promise<FaultRecord> {
  const target = await writableNode(lab, loaded, database);
  const pid = clusterPid(target.spec);
  if (!pid) throw new Error(`${described(database, target)} answers but has no postmaster.pid in ${target.spec.dataDir}`);
  const at = new Date().toISOString();
  process.kill(pid, 'SIGSTOP');
  return { fault: 'hang', what: described(database, target), pid, at };
}

/** A region lost: every writable node in it and its service, killed. */
export async function killRegion(lab: Lab, loaded: LoadedConfig, region: string, servicePid: number | undefined): Promise<FaultRecord[]> {
  const records: FaultRecord[] = [];
  for (const [name, db] of postgresDatabases(loaded.config)) {
    if (!databaseNodes(db).some((n) => n.region === region)) continue;
    const target = await writableNode(lab, loaded, name).catch(() => undefined);
    if (target?.region === region) records.push(await killDatabase(lab, loaded, name));
  }
  if (servicePid !== undefined && isAlive(servicePid)) {
    const at = new Date().toISOString();
    process.kill(servicePid, 'SIGKILL');
    records.push({ fault: 'kill', what: `service-${region}`, pid: servicePid, at });
  }
  if (records.length === 0) throw new Error(`region ${region} has neither a writable database node nor a running lab service: nothing to kill`);
  return records;
}

/** Continues every hung node of the lab's databases; returns what it continued. */
export function continueHung(lab: Lab, loaded: LoadedConfig): FaultRecord[] {
  const records: FaultRecord[] = [];
  for (const [name] of postgresDatabases(loaded.config)) {
    for (const n of labNodes(lab, loaded, name)) {
      const pid = clusterPid(n.spec);
      if (pid === undefined || !isSuspended(pid)) continue;
      process.kill(pid, 'SIGCONT');
      records.push({ fault: 'continue', what: `${name} ${n.node} (${n.region}, ${n.spec.host}:${n.spec.port})`, pid, at: new Date().toISOString() });
    }
  }
  return records;
}

/**
 * Every standby of `database` that answers applies WAL `seconds` late (recovery_min_apply_delay, by ALTER
 * SYSTEM and a reload): it still receives every byte, so nothing is lost, but what it has replayed, what a
 * promotion's RPO measures before the promotion replays the rest, falls behind the primary.
 */
export async function lagDatabase(lab: Lab, loaded: LoadedConfig, database: string, seconds: number): Promise<FaultRecord[]> {
  if (!Number.isInteger(seconds) || seconds < 1 || seconds > 3600) throw new Error(`--seconds must be a whole number of seconds from 1 to 3600, got ${seconds}`);
  const records: FaultRecord[] = [];
  for (const n of labNodes(lab, loaded, database)) {
    const live = await liveState(n.spec);
    if (!live.reachable || live.inRecovery !== true) continue;
    await withClient(n.spec, 'postgres', async (c) => {
      await c.query(`ALTER SYSTEM SET recovery_min_apply_delay = '${seconds}s'`);
      await c.query('SELECT pg_reload_conf()');
    });
    records.push({ fault: 'lag', what: `${database} standby (${n.region}, ${n.spec.host}:${n.spec.port}) applies WAL ${seconds}s late`, pid: clusterPid(n.spec) ?? 0, at: new Date().toISOString() });
  }
  if (records.length === 0) throw new Error(`${database} has no standby answering in recovery: nothing to lag (see lifeboat lab status)`);
  return records;
}

/** Lifts a lag: every node of the lab's databases that answers with a recovery_min_apply_delay gets it reset. */
export async function unlagAll(lab: Lab, loaded: LoadedConfig): Promise<FaultRecord[]> {
  const records: FaultRecord[] = [];
  for (const [name] of postgresDatabases(loaded.config)) {
    for (const n of labNodes(lab, loaded, name)) {
      if (!(await liveState(n.spec)).reachable) continue;
      const lagged = await withClient(n.spec, 'postgres', async (c) => {
        const delay = (await c.query<{ d: string }>("SELECT current_setting('recovery_min_apply_delay') AS d")).rows[0]?.d;
        if (delay === undefined || delay === '0') return false;
        await c.query('ALTER SYSTEM RESET recovery_min_apply_delay');
        await c.query('SELECT pg_reload_conf()');
        return true;
      });
      if (lagged) records.push({ fault: 'unlag', what: `${name} ${n.node} (${n.region}, ${n.spec.host}:${n.spec.port}) applies WAL at once again`, pid: clusterPid(n.spec) ?? 0, at: new Date().toISOString() });
    }
  }
  return records;
}

export function formatFault(r: FaultRecord): string {
  const verb = { kill: 'killed (SIGKILL)', hang: 'hung (SIGSTOP)', continue: 'continued (SIGCONT)', lag: 'lagged', unlag: 'lag lifted:' }[r.fault];
  return `${r.at} ${verb} ${r.what}, pid ${r.pid}`;
}
