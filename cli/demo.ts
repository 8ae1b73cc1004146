/**
 * `npm run demo`: the lab up, a worker, a planned db-promotion started by a
 * commander and approved by a second configured person; prints the measured
 * RTO and RPO and the Temporal UI link, and leaves the lab up for inspection.
 */
import { readFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import type { LoadedConfig } from '../config/load';
import { Lab } from '../lab/lab';
import { connectClient, temporalTarget } from '../lib/temporal';
import type { DbPromotionResult } from '../contract/db-promotion';
import type { dbPromotion } from '../workflows';
import { statusQuery } from '../contract/runbook';
import { formatStatus } from './format';
import { decideGate, startRun } from './runs';
import { UsageError } from './start';
import { GiveUp, isAlive, waitFor } from '../lab/processes';

export async function runDemo(loaded: LoadedConfig, options: { projectRoot: string; log: (line: string) => void }): Promise<DbPromotionResult> {
  const { log } = options;
  const people = Object.entries(loaded.config.people);
  const commander = people.find(([, p]) => p.roles.includes('commander'))?.[0];
  const approver = people.find(([name, p]) => p.roles.includes('approver') && name !== commander)?.[0];
  if (!commander || !approver) throw new UsageError(`the demo needs a commander and a different approver under people: in ${loaded.file}`);
  const database = Object.keys(loaded.config.databases)[0];
  if (!database) throw new UsageError(`the demo needs a database in ${loaded.file}`);

  const lab = new Lab(loaded);
  log('== lab up');
  let status = await lab.up({ temporal: true, log });
  if (Object.values(status.databases).some((db) => !db.standby)) {
    log('== a standby was promoted by an earlier run: lab reset to east primary, west standby');
    status = await lab.reset({ log });
  }
  const cli = path.join(options.projectRoot, 'dist', 'cli', 'lifeboat.js');
  const workerPid = lab.ensureWorker(process.execPath, [cli, '--config', loaded.file, 'worker', '--workflows', 'bundle'], log);

  const target = temporalTarget(loaded);
  const client = await connectClient(target);
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  log(`== ${commander} (commander) starts a planned db-promotion of ${database}`);
  const started = await startRun(client, loaded, {
    runbook: 'db-promotion',
    params: [`database=${database}`, 'mode=planned'],
    as: commander,
    id: `db-promotion:${database}:demo-${stamp}`,
    incident: `demo-${stamp}`,
    drill: true,
  });
  log(`   ${started.workflowId}\n   ${started.url}`);
  const handle = client.workflow.getHandle<typeof dbPromotion>(started.workflowId);
  const waiting = await waitFor(
    'the promote gate to open',
    async () => {
      if (!isAlive(workerPid)) throw new GiveUp(`the lab worker (pid ${workerPid}) exited: see ${path.join(lab.stateDir, 'logs', 'worker.log')}`);
      const s = await handle.query(statusQuery);
      return s.gates.some((g) => g.id === 'promote' && g.state === 'waiting') ? s : undefined;
    },
    120_000,
    500,
  );
  console.log(formatStatus(waiting));
  log(`== ${approver} (approver) approves the promote gate`);
  const decided = await decideGate(client, loaded, { workflowId: started.workflowId, gate: 'promote', as: approver, comment: 'demo: standby healthy, go', decision: 'approve' });
  log(`   gate ${decided.gate} ${decided.state} by ${decided.decidedBy}`);
  const result = await handle.result();
  console.log('');
  console.log(formatStatus(await handle.query(statusQuery)));
  console.log('');
  console.log(`${database} promoted: new primary ${result.newPrimary.region} ${result.newPrimary.host}:${result.newPrimary.port}, timeline ${result.timeline}`);
  console.log(`measured RTO ${result.rto.measuredSeconds.toFixed(1)}s (budget ${result.rto.budgetSeconds}s, ${result.rto.met ? 'met' : 'EXCEEDED'})`);
  console.log(`measured RPO ${result.rpo.measuredSeconds ?? '?'}s / ${result.rpo.measuredBytes ?? '?'} bytes (target ${result.rpo.targetSeconds}s, ${result.rpo.met ? 'met' : 'MISSED'}): ${result.rpo.method}`);
  if (existsSync(loaded.journalPath)) {
    const sent = readFileSync(loaded.journalPath, 'utf8').split('\n').filter((l) => l.includes(started.workflowId)).length;
    console.log(`notifications for this run in ${loaded.journalPath}: ${sent}`);
  }
  console.log(`Temporal UI: ${started.url}`);
  console.log("The lab stays up: 'npx lifeboat lab status', 'npx lifeboat lab reset' to repeat, 'npx lifeboat lab down' to stop.");
  await client.connection.close();
  return result;
}
