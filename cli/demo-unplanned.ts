/**
 * `npm run demo -- --unplanned`: the lab up with its workers (a witness worker in
 * the third region too), the sentinels started, then east's primaries killed
 * (SIGKILL, as a lost machine). The sentinels detect it from three regions, start
 * a db-promotion per database as their identity, and under the tier's `auto`
 * policy approve its promote gate with their quorum after the veto window
 * (other tiers: the demo's approver decides, as a person would). Prints, per
 * database, fault to detection, fault to verified write, and the RTO each run
 * measured from its detection; the lab stays up for inspection.
 */
import type { LoadedConfig } from '../config/load';
import type { DbPromotionResult } from '../contract/db-promotion';
import { hasRole, isFinalState, ROLE_SETS, sentinelStatusQuery, statusQuery, type RunbookStatus } from '../contract/runbook';
import { describeVotes, sentinelId, type Declaration, type SentinelStatus } from '../contract/sentinel';
import { formatFault, killDatabase, type FaultRecord } from '../lab/faults';
import { GiveUp, isAlive, waitFor } from '../lib/processes';
import { prepareDemoLab, printNotifications } from './demo';
import { formatStatus } from './format';
import { decideGate } from './runs';
import { startSentinels, stopSentinels } from './sentinels';
import { UsageError } from './start';

export interface UnplannedDemoRow {
  database: string;
  fault: FaultRecord;
  declaration: Declaration;
  result: DbPromotionResult;
  /** Fault to the sentinel's declaration, and to the run's end (its write verified on the new primary). */
  detectionSeconds: number;
  recoverySeconds: number;
}

export async function runUnplannedDemo(loaded: LoadedConfig, options: { projectRoot: string; log: (line: string) => void }): Promise<UnplannedDemoRow[]> {
  const { log } = options;
  const sentinels = loaded.config.sentinels;
  if (!sentinels) throw new UsageError(`the unplanned demo needs sentinels: in ${loaded.file}`);
  const admin = Object.entries(loaded.config.people).find(([, p]) => hasRole(p.roles, ROLE_SETS.sentinels))?.[0];
  if (!admin) throw new UsageError(`the unplanned demo needs an admin under people: in ${loaded.file} (to start the sentinels)`);
  const { lab, client, workerPid, region, approver } = await prepareDemoLab(loaded, options);
  const databases = sentinels.databases.filter((d) => loaded.config.databases[d]?.primary.region === region);
  if (databases.length === 0) throw new UsageError(`no database watched by the sentinels has its primary in ${region}`);

  log(`== ${admin} (admin) starts the sentinels: ${sentinels.regions.join(', ')} probe every ${sentinels.healthCheckIntervalSeconds}s, a failure needs ${Math.floor(sentinels.regions.length / 2) + 1} of them for ${sentinels.failoverThresholdSeconds}s`);
  await startSentinels(client, loaded, admin);
  const sentinelStatus = (database: string): Promise<SentinelStatus> => client.workflow.getHandle(sentinelId({ kind: 'database', database })).query(sentinelStatusQuery);
  for (const database of databases) {
    await waitFor(`the sentinel of ${database} to see it healthy from every region`, async () => {
      const s = await sentinelStatus(database).catch(() => undefined);
      return s && Object.values(s.views).every((v) => v.last === 'healthy') ? true : undefined;
    }, 120_000, 500);
  }

  log(`== ${region} is lost: its primaries are killed`);
  // All at once, as a lost machine room loses them.
  const faults = new Map(await Promise.all(databases.map(async (database) => [database, await killDatabase(lab, loaded, database)] as const)));
  for (const fault of faults.values()) log(`   ${formatFault(fault)}`);

  const rows = await Promise.all(databases.map(async (database): Promise<UnplannedDemoRow> => {
    const fault = faults.get(database) as FaultRecord;
    const declaration = await waitFor(`the sentinel of ${database} to declare the failure`, async () => {
      if (!isAlive(workerPid)) throw new GiveUp(`the lab worker (pid ${workerPid}) exited: see ${lab.stateDir}/logs/worker-main.log`);
      const s = await sentinelStatus(database);
      const d = s.declarations.find((x) => x.trigger.declaredAt >= fault.at);
      if (d?.refused && d.refused !== 'notify') throw new GiveUp(`the sentinel of ${database} declared the failure but its run was refused: ${d.refused}`);
      return d?.workflowId ? d : undefined;
    }, 180_000, 250);
    log(`== sentinel:db:${database} declared at ${declaration.trigger.declaredAt}: ${describeVotes(declaration.trigger)}`);
    log(`   started ${declaration.workflowId} as ${sentinels.identity}, detected at ${declaration.trigger.detectedAt}`);
    const handle = client.workflow.getHandle(declaration.workflowId as string);
    // A gate the quorum does not decide (policy confirm) waits for a person: the demo's approver decides it.
    const decided = new Set<string>();
    const result = await waitFor(`${declaration.workflowId} to finish`, async (): Promise<DbPromotionResult | undefined> => {
      const s: RunbookStatus = await handle.query(statusQuery);
      if (isFinalState(s.state)) return (await handle.result()) as DbPromotionResult;
      for (const gate of s.gates.filter((g) => g.state === 'waiting' && !decided.has(g.id))) {
        const quorum = s.events.some((e) => e.kind === 'gate-opened' && e.gate === gate.id && /quorum approves it/.test(e.detail));
        if (quorum) {
          log(`   ${declaration.workflowId}: gate ${gate.id} is the quorum's unless vetoed (lifeboat veto ${declaration.workflowId} --as ${approver} --reason ...)`);
        } else {
          log(`   ${declaration.workflowId}: gate ${gate.id} waits for a person: ${approver} (approver) approves`);
          await decideGate(client, loaded, { workflowId: declaration.workflowId as string, gate: gate.id, as: approver, comment: 'demo: the sentinel saw it from a quorum', decision: 'approve' });
        }
        decided.add(gate.id);
      }
      return undefined;
    }, 300_000, 250);
    const ended = Date.now();
    return {
      database,
      fault,
      declaration,
      result,
      detectionSeconds: (Date.parse(declaration.trigger.declaredAt) - Date.parse(fault.at)) / 1000,
      recoverySeconds: (ended - Date.parse(fault.at)) / 1000,
    };
  }));

  console.log('');
  for (const row of rows) {
    console.log(formatStatus(await client.workflow.getHandle(row.declaration.workflowId as string).query(statusQuery)));
    console.log('');
  }
  console.log(`${region}'s primaries were killed; the sentinels (${sentinels.regions.join(', ')}) detected it and recovered each database:`);
  for (const r of rows) {
    const gate = (await client.workflow.getHandle(r.declaration.workflowId as string).query(statusQuery)).gates.find((g) => g.id === 'promote');
    console.log(
      `  ${r.database}: fault ${r.fault.at}; declared after ${r.detectionSeconds.toFixed(1)}s; promoted in ${r.result.newPrimary.region} (timeline ${r.result.timeline}), ` +
        `done ${r.recoverySeconds.toFixed(1)}s after the fault (seen by this demo, an upper bound); the run's RTO from detection ${r.result.rto.measuredSeconds.toFixed(1)}s ` +
        `(budget ${r.result.rto.budgetSeconds}s, ${r.result.rto.met ? 'met' : 'EXCEEDED'}); promote gate ${gate?.state} by ${gate?.decidedBy ?? '?'}`,
    );
    if (r.result.choice) console.log(`    chosen: ${r.result.choice.reason}`);
    for (const f of r.result.followers ?? []) console.log(`    ${f.region}: ${f.following ? `follows the new primary (${f.method ?? ''})` : `does NOT follow: ${f.reason ?? ''}`}`);
    printNotifications(loaded, sentinelId({ kind: 'database', database: r.database }), r.fault.at);
  }
  await stopSentinels(client, loaded, admin, 'demo over');
  console.log(`The sentinels were stopped (start them again: npx lifeboat sentinel start --as ${admin}). ${region}'s old primaries stay down with their fence; 'npx lifeboat lab reset' to repeat, 'npx lifeboat lab down' to stop.`);
  await client.connection.close();
  return rows;
}
