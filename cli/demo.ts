/**
 * `npm run demo`: the two-region lab up, a worker, and a planned evacuation of
 * east started by a commander, its gates approved by a second configured
 * person. Prints RTO and RPO per database, the emails and SMS that went out, and
 * the Temporal UI link; the lab stays up for inspection.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import type { LoadedConfig } from '../config/load';
import type { RegionalEvacuationResult } from '../contract/regional-evacuation';
import { hasRole, isFinalState, ranToEnd, ROLE_SETS, statusQuery, type RunbookStatus } from '../contract/runbook';
import { Lab } from '../lab/lab';
import { GiveUp, isAlive, waitFor } from '../lib/processes';
import { connect } from './commands/context';
import type { failback, regionalEvacuation } from '../workflows';
import { formatStatus } from './format';
import { decideGate, startRun } from './runs';
import { UsageError } from './start';

/** What both demos start from: the lab up in its initial topology, its workers running, a client, and who plays which part. */
export interface DemoLab {
  lab: Lab;
  client: Client;
  /** The main worker (workflows); host workers run per region. */
  workerPid: number;
  /** The region of the first database's primary: the one the demo loses. */
  region: string;
  commander: string;
  approver: string;
}

export async function prepareDemoLab(loaded: LoadedConfig, options: { projectRoot: string; log: (line: string) => void }): Promise<DemoLab> {
  const { log } = options;
  const people = Object.entries(loaded.config.people);
  const commander = people.find(([, p]) => hasRole(p.roles, ROLE_SETS.start))?.[0];
  const approver = people.find(([name, p]) => hasRole(p.roles, ROLE_SETS.decide) && name !== commander)?.[0];
  if (!commander || !approver) throw new UsageError(`the demo needs a commander and a different approver under people: in ${loaded.file}`);
  const region = Object.values(loaded.config.databases)[0]?.primary.region;
  if (!region || !loaded.config.runbooks['regional-evacuation']) throw new UsageError(`the demo needs databases and runbooks.regional-evacuation in ${loaded.file}`);

  const lab = new Lab(loaded);
  log('== lab up');
  const status = await lab.up({ temporal: true, log });
  const promotedBefore = Object.entries(status.databases).some(([name, db]) => !db.standby || db.primary?.region !== loaded.config.databases[name]?.primary.region) || Object.values(status.dns?.weights ?? {}).length > 0 && status.dns?.weights?.[region] !== 100;
  if (promotedBefore) {
    log('== an earlier run changed the topology: lab reset (east primaries, west standbys, traffic on east)');
    await lab.reset({ log });
  }
  const cli = path.join(options.projectRoot, 'dist', 'cli', 'lifeboat.js');
  // A worker started before the last build would run old workflow code: restart it then.
  const builtAt = statSync(path.join(options.projectRoot, 'dist', 'workflow-bundle.js')).mtimeMs;
  const workerPid = await lab.ensureWorker('main', process.execPath, [cli, '--config', loaded.file, 'worker', '--workflows', 'bundle'], log, builtAt);
  // Host-bound work (fencing by shutdown, rewinding, the sentinels' probes) runs on a worker of each region.
  for (const r of lab.workerRegions()) await lab.ensureWorker(r, process.execPath, [cli, '--config', loaded.file, 'worker', '--region', r], log, builtAt);
  return { lab, client: await connect(loaded), workerPid, region, commander, approver };
}

export async function runDemo(loaded: LoadedConfig, options: { projectRoot: string; log: (line: string) => void }): Promise<RegionalEvacuationResult> {
  const { log } = options;
  const { lab, client, workerPid, region, commander, approver } = await prepareDemoLab(loaded, options);
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  /** Starts a run as the commander, approves each gate as the approver when it opens, returns its handle. */
  const runWithApprovals = async (runbook: string, params: string[], gates: string[]) => {
    log(`== ${commander} (commander) starts ${runbook} ${params.join(' ')}`);
    const started = await startRun(client, loaded, { runbook, params, as: commander, id: `${runbook}:${region}:demo-${stamp}`, incident: `demo-${stamp}`, drill: true });
    log(`   ${started.workflowId}\n   ${started.url}`);
    const handle = client.workflow.getHandle(started.workflowId);
    for (const gate of gates) {
      const waiting = await waitFor(
        `gate ${gate} to open`,
        async (): Promise<RunbookStatus | undefined> => {
          if (!isAlive(workerPid)) throw new GiveUp(`the lab worker (pid ${workerPid}) exited: see ${path.join(lab.stateDir, 'logs', 'worker.log')}`);
          const s = await handle.query(statusQuery);
          if (isFinalState(s.state)) throw new GiveUp(`the run ended ${s.state}: ${s.error?.message ?? ''}`);
          return s.gates.some((g) => g.id === gate && g.state === 'waiting') ? s : undefined;
        },
        300_000,
        500,
      );
      if (gate === gates[0]) console.log(formatStatus(waiting));
      log(`== ${approver} (approver) approves gate ${gate}`);
      await decideGate(client, loaded, { workflowId: started.workflowId, gate, as: approver, comment: 'demo: go', decision: 'approve' });
    }
    return started;
  };

  const started = await runWithApprovals('regional-evacuation', [`region=${region}`, 'mode=planned'], ['drain-traffic', 'promote-databases']);
  const handle = client.workflow.getHandle<typeof regionalEvacuation>(started.workflowId);
  const result = ranToEnd(await handle.result());
  console.log('');
  console.log(formatStatus(await handle.query(statusQuery)));
  console.log('');
  console.log(`${region} evacuated to ${result.survivingRegion}; DNS weights ${JSON.stringify(result.trafficBefore)} -> ${JSON.stringify(result.trafficAfter)}`);
  console.log(`measured RTO ${result.rto.measuredSeconds.toFixed(1)}s (budget ${result.rto.budgetSeconds}s, ${result.rto.met ? 'met' : 'EXCEEDED'})`);
  for (const db of result.databases) {
    const r = db.result;
    console.log(r
      ? `  ${db.database}: promoted in ${r.newPrimary.region} (timeline ${r.timeline}); RPO ${r.rpo.measuredSeconds ?? '?'}s / ${r.rpo.measuredBytes ?? '?'} bytes (target ${r.rpo.targetSeconds}s, ${r.rpo.met ? 'met' : 'MISSED'})`
      : `  ${db.database}: FAILED ${db.error ?? ''}`);
  }
  printNotifications(loaded, started.workflowId);
  console.log(`Temporal UI: ${started.url}`);

  const back = await runWithApprovals('failback', [`region=${region}`], ['switchover']);
  const failedBack = await client.workflow.getHandle<typeof failback>(back.workflowId).result();
  console.log('');
  console.log(`failed back to ${failedBack.region} in ${failedBack.durationSeconds.toFixed(1)}s, ${failedBack.rpo.measuredBytes ?? 'unknown'} bytes not replayed at promotion (${failedBack.rpo.met ? 'met' : 'MISSED'}); DNS weights ${JSON.stringify(failedBack.trafficAfter)}`);
  for (const d of failedBack.databases) {
    console.log(`  ${d.database}: ${failedBack.region} rebuilt with ${d.rebuiltWith}, switched over (timeline ${d.result.timeline}), ${failedBack.from} rebuilt with ${d.rebuiltOldPrimaryWith}`);
  }
  printNotifications(loaded, back.workflowId);
  console.log(`Temporal UI: ${back.url}`);
  console.log("The lab stays up: 'npx lifeboat lab status', 'npx lifeboat lab reset' to repeat, 'npx lifeboat lab down' to stop.");
  await client.connection.close();
  return result;
}

/** What went out for the run, from the journal of delivery attempts. */
/** `since`: only what went out from then on (a sentinel's id is the same from one demo to the next). */
export function printNotifications(loaded: LoadedConfig, workflowId: string, since = ''): void {
  if (!existsSync(loaded.journalPath)) return;
  const entries = readFileSync(loaded.journalPath, 'utf8').split('\n').filter(Boolean).map((line) => JSON.parse(line) as Record<string, unknown>);
  console.log(`notifications delivered (journal ${loaded.journalPath}):`);
  for (const e of entries.filter((x) => x.workflowId === workflowId && x.delivered === true && String(x.at) >= since)) {
    console.log(`  ${String(e.channel).padEnd(6)} ${String(e.audience).padEnd(9)} ${String(e.subject)}`);
  }
  const inbox = loaded.config.notifications.email ? `http://127.0.0.1:${loaded.config.lab.inbox.port}/api/v1/messages` : undefined;
  if (inbox) console.log(`  emails are readable in Mailpit: ${inbox}`);
}
