/**
 * Faults the lab injects on purpose, for drills, the sentinel's tests and the
 * failover test: a primary killed (SIGKILL, as a lost machine), a primary hung
 * (SIGSTOP: its port still accepts, nothing answers), a region lost (its
 * primaries and its service killed). Each says what it did to which process
 * and when: the fault time is what a recovery is measured from.
 *
 * `heal` continues what was hung. It never restarts what was killed: a killed
 * primary may have been replaced by a promotion, and bringing it back writable
 * would make two primaries; a failback brings it back, as a standby.
 */
import { databaseNodes, postgresDatabase, postgresDatabases, type LoadedConfig } from '../config/load';
import { isAlive } from '../lib/processes';
import { isSuspended } from '../activities/postgres-host';
import type { Lab } from './lab';
import { clusterPid, liveState, stopCluster, type ClusterSpec } from './postgres';

export interface FaultRecord {
  fault: 'kill' | 'hang' | 'continue';
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

export function formatFault(r: FaultRecord): string {
  const verb = { kill: 'killed (SIGKILL)', hang: 'hung (SIGSTOP)', continue: 'continued (SIGCONT)' }[r.fault];
  return `${r.at} ${verb} ${r.what}, pid ${r.pid}`;
}
