/**
 * A worker process is killed with SIGKILL while a promotion runs; a new worker
 * process (the real `lifeboat worker`, pre-built bundle) finishes the run, and
 * the standby is promoted exactly once.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRun } from '../../cli/runs';
import { approveSignal, statusQuery } from '../../contract/runbook';
import { createPostgresProvider } from '../../activities/postgres';
import { waitFor } from '../../lib/processes';
import type { dbPromotion } from '../../workflows';
import { createTestLab, type TestLab } from '../helpers/lab';
import { inRecovery, timeline } from '../helpers/postgres';
import { gateWaiting, waitForStatus } from '../helpers/temporal';
import { WorkerProcesses } from '../helpers/worker-processes';
import { postgresDatabase } from '../../config/load';

const ROOT = path.join(__dirname, '..', '..');
const CLI = path.join(ROOT, 'dist', 'cli', 'lifeboat.js');

let lab: TestLab;
let client: Client;
let rig: WorkerProcesses | undefined;

function startWorker(name: string): ChildProcess {
  if (!rig) throw new Error('the worker rig did not start (see beforeAll)');
  return rig.startWorker(name);
}

beforeAll(async () => {
  if (!existsSync(CLI) || !existsSync(path.join(ROOT, 'dist', 'workflow-bundle.js'))) {
    throw new Error("dist/ is missing: run 'npm run build' (npm test does it)");
  }
  lab = await createTestLab('crash');
  rig = await WorkerProcesses.start(lab);
  client = rig.client;
});

afterAll(async () => {
  await rig?.close();
  await lab?.destroy();
});

describe('worker crash', () => {
  it('a SIGKILLed worker mid-promotion is replaced and the standby is promoted exactly once', async () => {
    const db = postgresDatabase(lab.loaded.config, 'orders');
    if (!db) throw new Error('no orders database');
    const first = startWorker('worker-a');
    const started = await startRun(client, lab.loaded, { runbook: 'db-promotion', params: ['database=orders'], as: 'alice', drill: true });
    const handle = client.workflow.getHandle<typeof dbPromotion>(started.workflowId);
    await waitForStatus(handle, gateWaiting('promote'), 'the promote gate (worker A running)', 90_000);

    // Approve, then kill worker A as soon as the promotion activity is in flight.
    await handle.signal(approveSignal, { gate: 'promote', approver: 'bob', comment: 'go' });
    const inFlight = await waitFor(
      'the promote activity to be scheduled',
      async () => {
        const description = await handle.describe();
        const pending = description.raw.pendingActivities ?? [];
        if (pending.some((a) => a.activityType?.name === 'promoteStandby')) return true;
        const status = await handle.query(statusQuery);
        return status.steps.find((s) => s.id === 'promote')?.state === 'done' ? false : undefined;
      },
      30_000,
      10,
    );
    first.kill('SIGKILL');
    await waitFor('worker A to die', async () => (first.signalCode === 'SIGKILL' ? true : undefined), 10_000, 20);
    // Still pending after A died: only a retry on worker B can complete it.
    const pendingAfterKill = inFlight && ((await handle.describe()).raw.pendingActivities ?? []).some((a) => a.activityType?.name === 'promoteStandby');

    startWorker('worker-b');
    const result = await handle.result();
    expect(result.timeline).toBe(2);
    expect(await inRecovery(db.standby)).toBe(false);
    expect(await timeline(db.standby)).toBe(2);

    // History: one promotion scheduled and one completed, whatever the retries.
    const history = await handle.fetchHistory();
    const events = history.events ?? [];
    const promoteScheduled = events.filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'promoteStandby');
    expect(promoteScheduled).toHaveLength(1);
    const scheduledId = promoteScheduled[0]?.eventId;
    const completed = events.filter((e) => e.activityTaskCompletedEventAttributes && String(e.activityTaskCompletedEventAttributes.scheduledEventId) === String(scheduledId));
    expect(completed).toHaveLength(1);
    if (pendingAfterKill) {
      // Killed mid-activity: the completion came from a retry on worker B.
      const startedEvent = events.find((e) => e.activityTaskStartedEventAttributes && String(e.activityTaskStartedEventAttributes.scheduledEventId) === String(scheduledId));
      expect(startedEvent?.activityTaskStartedEventAttributes?.attempt).toBeGreaterThanOrEqual(2);
    }
    const status = await handle.query(statusQuery);
    expect(status.state).toBe('completed');
  });

  it('promoting an already promoted standby is success, never a second promotion', async () => {
    const db = postgresDatabase(lab.loaded.config, 'orders');
    if (!db) throw new Error('no orders database');
    await lab.lab.reset({ seedRows: 10 });
    const provider = createPostgresProvider('orders', db, { user: 'postgres' });
    const firstTry = await provider.promoteStandby();
    const retry = await provider.promoteStandby();
    expect(firstTry).toMatchObject({ alreadyPromoted: false, timeline: 2 });
    expect(retry).toMatchObject({ alreadyPromoted: true, timeline: 2 });
    expect(await timeline(db.standby)).toBe(2);
  });
});
