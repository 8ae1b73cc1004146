/**
 * The sentinel survives what kills processes: its worker SIGKILLed, the
 * Temporal server restarted (its SQLite file persists). Neither gap in probing
 * is read as a failure (no run is started), and afterwards the sentinel still
 * detects a killed primary and recovers it once. The sentinel's workflow runs in
 * a real `lifeboat worker` process (pre-built bundle); the regions probe from
 * host workers in this process. This file runs its own dev server.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSentinels, stopSentinels } from '../../cli/sentinels';
import { postgresDatabase } from '../../config/load';
import { sentinelStatusQuery } from '../../contract/runbook';
import { sentinelId, type SentinelStatus } from '../../contract/sentinel';
import { killDatabase } from '../../lab/faults';
import { startDevServer, stopDevServer, type DevServer } from '../../lab/temporal-server';
import { freePort, sleep, waitFor } from '../../lib/processes';
import { createTestLab, sentinelExtra, type TestLab } from '../helpers/lab';
import { inRecovery } from '../helpers/postgres';
import { WorkerProcesses } from '../helpers/worker-processes';

const INTERVAL = 1;
const THRESHOLD = 4;

let lab: TestLab;
let server: DevServer;
let serverDir: string;
let ports: { port: number; uiPort: number };
let client: Client;
let rig: WorkerProcesses | undefined;

async function startServer(): Promise<DevServer> {
  return startDevServer({ ...ports, dbFile: path.join(serverDir, 'temporal.db'), logFile: path.join(serverDir, 'temporal.log') });
}

function startWorker(name: string): ChildProcess {
  if (!rig) throw new Error('the worker rig did not start (see beforeAll)');
  return rig.startWorker(name);
}

beforeAll(async () => {
  serverDir = mkdtempSync(path.join(os.tmpdir(), 'lifeboat-sentinel-durability-'));
  ports = { port: await freePort(), uiPort: await freePort() };
  server = await startServer();
  lab = await createTestLab('sentinel-durability', {
    temporalAddress: server.address,
    extra: sentinelExtra(['orders'], { '1': { policy: 'auto', vetoSeconds: 2 } }, { interval: INTERVAL, threshold: THRESHOLD }),
  });
  rig = await WorkerProcesses.start(lab, server.address);
  client = rig.client;
}, 240_000);

afterAll(async () => {
  if (client) await stopSentinels(client, lab.loaded, 'erin', 'test over').catch(() => undefined);
  await rig?.close();
  await lab?.destroy();
  if (server) await stopDevServer(server.pid);
  rmSync(serverDir, { recursive: true, force: true });
});

/** The sentinel's status, asked again while the client reconnects after a server restart. */
function status(): Promise<SentinelStatus> {
  return waitFor('the sentinel to answer its query', async () => {
    try {
      return await client.workflow.getHandle(sentinelId({ kind: 'database', database: 'orders' })).query(sentinelStatusQuery);
    } catch {
      return undefined;
    }
  }, 60_000, 250);
}

/** Waits until the sentinel has run `n` more rounds with every region seeing the database healthy. */
async function healthyRounds(n: number): Promise<SentinelStatus> {
  const from = (await status()).rounds;
  return waitFor(`${n} healthy rounds of the sentinel`, async () => {
    const s = await status();
    return s.rounds >= from + n && Object.values(s.views).every((v) => v.last === 'healthy') ? s : undefined;
  }, 90_000, 250);
}

describe('the sentinel across crashes', () => {
  it('a SIGKILLed worker and a restarted server are gaps, not failures; afterwards a killed primary is still detected and recovered once', async () => {
    const db = postgresDatabase(lab.loaded.config, 'orders');
    const first = startWorker('worker-a');
    await startSentinels(client, lab.loaded, 'erin');
    await healthyRounds(3);

    // The worker running the sentinel dies; for longer than the threshold nothing runs it.
    first.kill('SIGKILL');
    await waitFor('worker A to die', async () => (first.signalCode === 'SIGKILL' ? true : undefined), 10_000, 20);
    await sleep((THRESHOLD + 3) * 1000);
    startWorker('worker-b');
    let s = await healthyRounds(THRESHOLD + 2);
    expect(s.declarations).toEqual([]);

    // No region answers for longer than the threshold (their workers are down): silence is not a failure.
    await Promise.all(['east', 'west', 'central'].map((r) => rig?.hostWorkers.stop(r)));
    const silent = await waitFor('every region to be silent', async () => {
      const now = await status();
      return Object.values(now.views).every((v) => v.last === 'no-answer') ? now : undefined;
    }, 30_000, 250);
    await sleep((THRESHOLD + 2) * 1000);
    expect((await status()).declarations).toEqual([]);
    expect((await status()).rounds).toBeGreaterThan(silent.rounds);
    await Promise.all(['east', 'west', 'central'].map((r) => rig?.hostWorkers.start(r)));
    s = await healthyRounds(THRESHOLD + 2);
    expect(s.declarations).toEqual([]);

    // The server itself restarts (its history persists): another gap longer than the threshold.
    await stopDevServer(server.pid);
    await sleep((THRESHOLD + 1) * 1000);
    server = await startServer();
    s = await healthyRounds(THRESHOLD + 2);
    expect(s.declarations).toEqual([]);
    expect(await inRecovery(db.standby)).toBe(true);

    // Still watching: a killed primary is declared and recovered by exactly one run.
    const fault = await killDatabase(lab.lab, lab.loaded, 'orders');
    const declared = await waitFor('a declaration after the fault', async () => (await status()).declarations.find((d) => d.workflowId !== undefined), 90_000, 250);
    expect(Date.parse(declared.trigger.detectedAt)).toBeGreaterThanOrEqual(Date.parse(fault.at) - 50);
    const result = await waitFor('the recovery to finish', async () => {
      try {
        return await client.workflow.getHandle(declared.workflowId as string).result();
      } catch (err) {
        if ((err as Error).name === 'WorkflowFailedError') throw err;
        return undefined;
      }
    }, 120_000, 500);
    expect(result).toMatchObject({ database: 'orders' });
    expect(await inRecovery(db.standby)).toBe(false);
    await healthyRounds(THRESHOLD + 2);
    expect((await status()).declarations.filter((d) => d.workflowId !== undefined)).toHaveLength(1);
  }, 600_000);
});
