/**
 * An evacuation survives what kills processes: a worker SIGKILLed while the
 * promotions run, and a restart of the Temporal server itself (its SQLite file
 * persists). Each database is promoted exactly once either way. This file runs
 * its own dev server, since it restarts it.
 */
import { ranToEnd } from '../../contract/runbook';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Client, WorkflowHandle } from '@temporalio/client';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { decideGate, startRun } from '../../cli/runs';
import { statusQuery } from '../../contract/runbook';
import { freePort, waitFor } from '../../lib/processes';
import { startDevServer, stopDevServer, type DevServer } from '../../lab/temporal-server';
import type { regionalEvacuation } from '../../workflows';
import { createTestLab, type TestLab } from '../helpers/lab';
import { inRecovery, timeline } from '../helpers/postgres';
import { gateWaiting, waitForStatus } from '../helpers/temporal';
import { WorkerProcesses } from '../helpers/worker-processes';
import { postgresDatabase } from '../../config/load';

const DATABASES = ['orders', 'users', 'billing'];

let lab: TestLab;
let server: DevServer;
let serverDir: string;
let ports: { port: number; uiPort: number };
let client: Client;
let counter = 0;
let rig: WorkerProcesses | undefined;

function startWorker(name: string): ChildProcess {
  if (!rig) throw new Error('the worker rig did not start (see beforeAll)');
  return rig.startWorker(name);
}

/** The last lines of every worker process's log, for a failure message. */
function workerLogTails(): string {
  return rig?.logTails() ?? '(no workers)';
}

async function startServer(): Promise<DevServer> {
  return startDevServer({ ...ports, dbFile: path.join(serverDir, 'temporal.db'), logFile: path.join(serverDir, 'temporal.log') });
}

beforeAll(async () => {
  serverDir = mkdtempSync(path.join(os.tmpdir(), 'lifeboat-durability-'));
  ports = { port: await freePort(), uiPort: await freePort() };
  server = await startServer();
  lab = await createTestLab('durability', { databases: DATABASES, regions: true, temporalAddress: server.address });
  rig = await WorkerProcesses.start(lab, server.address);
  client = rig.client;
});

afterAll(async () => {
  await rig?.close();
  await lab?.destroy();
  if (server) await stopDevServer(server.pid);
  rmSync(serverDir, { recursive: true, force: true });
});

beforeEach(async () => {
  rig?.killAll();
  await lab.lab.reset({ seedRows: 10 });
});

async function startEvacuation(): Promise<WorkflowHandle<typeof regionalEvacuation>> {
  const started = await startRun(client, lab.loaded, {
    runbook: 'regional-evacuation', params: ['region=east'], as: 'alice', id: `regional-evacuation:east:durability-${process.pid}-${++counter}`, drill: true,
  });
  return client.workflow.getHandle<typeof regionalEvacuation>(started.workflowId);
}

async function approveWhenWaiting(handle: WorkflowHandle, gate: string): Promise<void> {
  try {
    // Generous: the declare step waits for a notification round, and this file runs beside others on 2 cores.
    await waitForStatus(handle, gateWaiting(gate), `gate ${gate}`, 240_000);
  } catch (err) {
    throw new Error(`${(err as Error).message}\n${workerLogTails()}`, { cause: err });
  }
  await decideGate(client, lab.loaded, { workflowId: handle.workflowId, gate, as: 'bob', decision: 'approve' });
}

/** Each database promoted once: timeline 2 on the server, one completed pg_promote activity in its child's history. */
/** The run's result within `ms`, else a failure that says where the run and every worker were. */
async function resultWithin(handle: WorkflowHandle<typeof regionalEvacuation>, ms: number) {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      void handle.query(statusQuery).then(
        (s) => reject(new Error(`no result after ${ms / 1000}s: the run was ${s.state} in phase "${s.phase}"; children: ${s.children.map((c) => `${c.workflowId}=${c.state}`).join(' ')}; last events: ${s.events.slice(-5).map((e) => e.detail).join(' | ')}\n${workerLogTails()}`)),
        (err: unknown) => reject(new Error(`no result after ${ms / 1000}s (status unreadable: ${(err as Error).message})\n${workerLogTails()}`)),
      );
    }, ms);
  });
  try {
    return ranToEnd(await Promise.race([handle.result(), late]));
  } finally {
    clearTimeout(timer);
  }
}

async function expectPromotedExactlyOnce(): Promise<void> {
  for (const name of DATABASES) {
    const node = postgresDatabase(lab.loaded.config, name).standby;
    if (!node) throw new Error(`no ${name}`);
    expect(await inRecovery(node)).toBe(false);
    expect(await timeline(node)).toBe(2);
    const history = await client.workflow.getHandle(`db-promotion:${name}`).fetchHistory();
    const events = history.events ?? [];
    const scheduled = events.filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'promoteStandby');
    expect(scheduled, `${name}: promoteStandby scheduled`).toHaveLength(1);
    const completed = events.filter((e) => e.activityTaskCompletedEventAttributes && String(e.activityTaskCompletedEventAttributes.scheduledEventId) === String(scheduled[0]?.eventId));
    expect(completed, `${name}: promoteStandby completed`).toHaveLength(1);
  }
}

describe('evacuation durability', () => {
  it('a worker SIGKILLed while the promotions run: a new worker finishes, each database promoted once', async () => {
    const first = startWorker('worker-a');
    const handle = await startEvacuation();
    await approveWhenWaiting(handle, 'drain-traffic');
    await approveWhenWaiting(handle, 'promote-databases');
    await waitForStatus(handle, (s) => s.children.length > 0, 'the child promotions to start', 60_000);
    first.kill('SIGKILL');
    await waitFor('worker A to die', async () => (first.signalCode === 'SIGKILL' ? true : undefined), 10_000, 20);

    startWorker('worker-b');
    const result = await resultWithin(handle, 300_000);
    expect(result.databases.map((d) => d.state)).toEqual(['promoted', 'promoted', 'promoted']);
    await expectPromotedExactlyOnce();
    expect((await handle.query(statusQuery)).state).toBe('completed');
  }, 600_000);

  it('a restart of the Temporal server mid-evacuation: the run resumes from its persisted history, each database promoted once', async () => {
    startWorker('worker-c');
    const handle = await startEvacuation();
    await approveWhenWaiting(handle, 'drain-traffic');
    await approveWhenWaiting(handle, 'promote-databases');
    await waitForStatus(handle, (s) => s.children.length > 0, 'the child promotions to start', 60_000);

    await stopDevServer(server.pid);
    server = await startServer();

    const result = await waitFor('the evacuation to finish after the restart', async () => {
      try {
        return ranToEnd(await handle.result());
      } catch (err) {
        // The client's connection may still be re-establishing: ask again.
        if ((err as Error).name === 'WorkflowFailedError') throw err;
        return undefined;
      }
    }, 180_000, 500);
    expect(result.databases.map((d) => d.state)).toEqual(['promoted', 'promoted', 'promoted']);
    await expectPromotedExactlyOnce();
  }, 600_000);
});
