/**
 * Records that never block recovery, in the two-region lab with the evidence
 * bucket on versitygw: an evacuation whose S3 server is stopped mid-run still
 * reaches verified service and its child promotions close without waiting for
 * the bucket; the evidence is pending in the runs' evidence keepers, and
 * complete once S3 is back. A run that ends with every notification channel
 * down hands its final page to a pager, which delivers it when a channel
 * comes back, or stops when a person acknowledges it.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createNotificationActivities } from '../../activities/notify';
import { createEvidenceActivities, type EvidenceActivities } from '../../activities/evidence';
import { exportRunEvidence, formatEvidenceReport, verifyBundle, verifyRunEvidence } from '../../cli/evidence';
import { decideGate, startRun } from '../../cli/runs';
import { dbPromotionWorkflowId } from '../../contract/db-promotion';
import type { EvidenceHead } from '../../contract/evidence';
import { acknowledgeUpdate, decideUpdate, pagerQuery, ranToEnd, statusQuery, type PagerResult } from '../../contract/runbook';
import { stopPid } from '../../lib/processes';
import { buildActivityDependencies } from '../../workers/dependencies';
import type { regionalEvacuation } from '../../workflows';
import { activityNames, ActivityCalls, fakeActivities } from '../helpers/fakes';
import { runCli } from '../helpers/cli';
import { createTestLab, type TestLab } from '../helpers/lab';
import { gateWaiting, startTestTemporal, waitForStatus, type TestTemporal } from '../helpers/temporal';
import { withRehearsal } from '../helpers/rehearsal';
import type { RehearsalActivities } from './kernel/workflows';

const DATABASES = ['orders', 'users'];

let lab: TestLab;
let temporal: TestTemporal;

beforeAll(async () => {
  lab = await createTestLab('records', { databases: DATABASES, regions: true, backups: true });
  temporal = await startTestTemporal(lab.loaded);
});

afterAll(async () => {
  await temporal?.close();
  await lab?.destroy();
});

/** A part of the lab stopped by its pid (lab.json), as an outage would; `lab.up` starts it again. */
async function stopDaemon(name: 's3' | 'smtp'): Promise<void> {
  const daemons = (JSON.parse(readFileSync(path.join(lab.loaded.stateDir, 'lab.json'), 'utf8')) as { daemons: Record<string, { pid: number }> }).daemons;
  const daemon = daemons[name];
  if (!daemon) throw new Error(`no ${name} daemon in the lab`);
  await stopPid(daemon.pid, 'SIGKILL');
}

/** The shared parts back (S3, SMTP), the databases left as the runs left them. */
const restartShared = () => lab.lab.up({ temporal: false, databases: false });

const twilioUrl = () => lab.loaded.config.notifications.twilio?.apiBaseUrl ?? '';
async function twilioOutage(down: boolean): Promise<void> {
  await fetch(`${twilioUrl()}/__outage`, { method: 'POST', body: JSON.stringify({ down }) });
}
async function texts(): Promise<Array<{ kind: string; form: Record<string, string>; outage: boolean }>> {
  return (await (await fetch(`${twilioUrl()}/__recorded`)).json()) as Array<{ kind: string; form: Record<string, string>; outage: boolean }>;
}

async function approve(handle: WorkflowHandle, gate: string): Promise<void> {
  await waitForStatus(handle, gateWaiting(gate), `gate ${gate}`, 120_000);
  await decideGate(temporal.client, lab.loaded, { workflowId: handle.workflowId, gate, as: 'bob', comment: 'go', decision: 'approve' });
}

describe('evidence with the bucket down', () => {
  it('an evacuation with its S3 server stopped reaches verified service in budget, its promotions close without waiting; the evidence is complete once S3 is back', async () => {
    const started = await startRun(temporal.client, lab.loaded, { runbook: 'regional-evacuation', params: ['region=east', 'mode=planned'], as: 'alice', id: `regional-evacuation:east:records-${process.pid}`, drill: true });
    const handle = temporal.client.workflow.getHandle<typeof regionalEvacuation>(started.workflowId);
    await approve(handle, 'drain-traffic');
    await stopDaemon('s3');
    let restarted = false;
    try {
      await approve(handle, 'promote-databases');
      const result = ranToEnd(await handle.result());
      expect(result.databases.map((d) => [d.database, d.state])).toEqual(DATABASES.map((n) => [n, 'promoted']));
      const status = await handle.query(statusQuery);
      expect(status.steps.find((s) => s.id === 'verify-service')?.state).toBe('done');
      expect(result.rto.met).toBe(true);

      // Each child promotion closed within a few seconds of its end (a 5 s grace for its last records), S3 still down.
      for (const database of DATABASES) {
        const child = temporal.client.workflow.getHandle(dbPromotionWorkflowId(database));
        const childResult = (await child.result()) as { evidence?: EvidenceHead };
        const childStatus = await child.query(statusQuery);
        const finishedAt = Date.parse(childStatus.events.find((e) => e.kind === 'finished')?.at ?? '');
        const closedAt = (await child.describe()).closeTime?.getTime() ?? Number.NaN;
        expect(closedAt - finishedAt, `${database}: from its end to its close`).toBeLessThan(15_000);
        expect(childResult.evidence?.pending).toMatchObject({ keeper: `lifeboat-evidence:${child.workflowId}:${(await child.describe()).runId}`, records: expect.any(Number) });
      }
      // Every run's result carries its chain head (RunbookRun.execute), beside the runbook's own result.
      const evidence = (result as { evidence?: EvidenceHead }).evidence;
      const pending = evidence?.pending;
      const parentFinishedAt = Date.parse(status.events.find((e) => e.kind === 'finished')?.at ?? '');
      expect(((await handle.describe()).closeTime?.getTime() ?? Number.NaN) - parentFinishedAt, 'the evacuation: from its end to its close').toBeLessThan(15_000);
      expect(pending).toMatchObject({ keeper: `lifeboat-evidence:${handle.workflowId}:${started.runId}` });
      expect(pending?.records).toBeGreaterThan(0);
      expect(status.evidence?.pending).toEqual(pending);

      // S3 back: the run's keeper waits 30 s for the run's last attempt before it writes, so the chain is pending at first.
      await restartShared();
      restarted = true;
      const early = await verifyRunEvidence(temporal.client, lab.loaded, handle.workflowId);
      expect(early).toMatchObject({ ok: true, records: evidence?.records, head: evidence?.head, pending: { keeper: pending?.keeper } });
      expect(early.stored).toBeLessThan(early.records);
      // An auditor's bundle holds the keeper's records too, and verifies offline.
      const bundleFile = path.join(lab.dir, 'pending-evidence.json');
      expect((await exportRunEvidence(temporal.client, lab.loaded, handle.workflowId, bundleFile)).pending).toMatchObject({ keeper: pending?.keeper });
      expect(verifyBundle(bundleFile)).toMatchObject({ ok: true, records: evidence?.records, head: evidence?.head });
      expect(formatEvidenceReport(early)).toMatch(/chain verifies; head \w+ matches the run's result\. PENDING: \d+ stored in s3:\/\/lifeboat-evidence, \d+ not yet \(from record \d+\), held by the evidence keeper lifeboat-evidence:/);

      // Then the keepers store the rest: every chain is complete in the bucket.
      for (const workflowId of [handle.workflowId, ...DATABASES.map(dbPromotionWorkflowId)]) {
        const report = await vi.waitFor(async () => {
          const r = await verifyRunEvidence(temporal.client, lab.loaded, workflowId);
          if (r.pending) throw new Error(`${workflowId}: still pending (${r.pending.records} records)`);
          return r;
        }, { timeout: 150_000, interval: 2_000 });
        expect(report, workflowId).toMatchObject({ ok: true, source: 's3://lifeboat-evidence' });
        expect(report.stored).toBe(report.records);
        expect(formatEvidenceReport(report)).toMatch(/in s3:\/\/lifeboat-evidence: \d+ records, chain verifies; head \w+ matches the run's result\nnot anchored \(no evidence.ledger configured\)$/);
      }
      await expect(temporal.client.workflow.getHandle(pending?.keeper ?? '').result()).resolves.toMatchObject({ stored: pending?.records });
    } finally {
      if (!restarted) await restartShared();
    }
  }, 600_000);
});

// ---- a run on the kernel (test/workflows/kernel/workflows.ts) that fails past its point of no return

/** Runs the kernel's rehearsal with the lab's real notification channels; its verify step fails past the point of no return. */
async function withFailingRehearsal(test: (handle: WorkflowHandle, failed: Promise<unknown>) => Promise<void>): Promise<void> {
  const calls = new ActivityCalls();
  const activities = {
    ...createNotificationActivities(buildActivityDependencies(lab.loaded).notifications),
    ...fakeActivities<EvidenceActivities>(activityNames(createEvidenceActivities({ stores: [] })), { appendEvidence: async () => undefined, anchorEvidence: async () => ({ state: 'not-configured' }) }, calls),
    ...fakeActivities<RehearsalActivities>(['change', 'undo'], {
      change: async ({ step }) => {
        if (step === 'verify') throw ApplicationFailure.nonRetryable('the synthetic check failed', 'CheckFailed');
        return { step };
      },
      undo: async () => undefined,
    }, calls),
  };
  await withRehearsal(lab, temporal.client, 'records-pager', activities, (handle) => test(handle, handle.result().then(() => undefined, (err: unknown) => err)));
}

/** Every channel down: SMTP stopped, the Twilio stand-in answering 503. */
async function channelsDown(): Promise<void> {
  await stopDaemon('smtp');
  await twilioOutage(true);
}

describe('final pages with every channel down', () => {
  it('the run closes without waiting; its pager delivers the "finish by hand" page once a channel is back', async () => {
    try {
      await withFailingRehearsal(async (handle, failed) => {
        await waitForStatus(handle, gateWaiting('promote'), 'the promote gate');
        await channelsDown();
        await handle.executeUpdate(decideUpdate, { args: [{ gate: 'promote', approver: 'bob', decision: 'approve', comment: 'go' }] });
        expect(await failed).toBeInstanceOf(WorkflowFailedError);
        const status = await handle.query(statusQuery);
        expect(status.state).toBe('failed');
        const pagerId = `lifeboat-pager:${handle.workflowId}:${(await handle.describe()).runId}`;
        expect(status.notifications.pager).toBe(pagerId);
        expect(status.events.at(-1)?.detail).toBe(`1 undelivered final page(s) handed to the pager ${pagerId}, which retries until delivered or acknowledged`);
        // Closed within the grace (5 s) after its end, the page still undelivered.
        const finishedAt = Date.parse(status.events.find((e) => e.kind === 'finished')?.at ?? '');
        expect(((await handle.describe()).closeTime?.getTime() ?? Number.NaN) - finishedAt).toBeLessThan(15_000);

        const pager = temporal.client.workflow.getHandle(pagerId);
        const failing = await vi.waitFor(async () => {
          const p = await pager.query(pagerQuery);
          if ((p.pages[0]?.rounds ?? 0) < 2) throw new Error('the pager has not retried yet');
          return p;
        }, { timeout: 60_000, interval: 500 });
        expect(failing.pages).toEqual([expect.objectContaining({ subject: '[rehearsal drill] failed past the point of no return', audience: 'oncall', state: 'pending', lastError: expect.stringMatching(/no channel delivered .*sms: Service Unavailable; voice: Service Unavailable/) })]);

        await twilioOutage(false);
        const delivered = (await pager.result()) as PagerResult;
        expect(delivered.pages).toEqual([expect.objectContaining({ state: 'delivered', channel: 'sms' })]);
        expect(delivered.acknowledged).toBeUndefined();
        const sms = (await texts()).filter((t) => !t.outage && t.form.Body?.includes('failed past the point of no return') && t.form.Body.includes(handle.workflowId));
        expect(sms).toHaveLength(1);
      });
    } finally {
      await twilioOutage(false);
      await restartShared();
    }
  }, 300_000);

  it('an acknowledgement stops the pager: who has the message is recorded; an acknowledgement without a person, or by a stranger, is refused', async () => {
    try {
      await withFailingRehearsal(async (handle, failed) => {
        await waitForStatus(handle, gateWaiting('promote'), 'the promote gate');
        await channelsDown();
        await handle.executeUpdate(decideUpdate, { args: [{ gate: 'promote', approver: 'bob', decision: 'approve' }] });
        await failed;
        const pager = temporal.client.workflow.getHandle((await handle.query(statusQuery)).notifications.pager ?? '');
        await expect(pager.executeUpdate(acknowledgeUpdate, { args: [{ by: ' ' }] })).rejects.toMatchObject({ cause: { message: 'acknowledge needs `by`: the person who has the message' } });
        // A raw Update naming someone the run does not know is refused by the pager itself, not only by the CLI.
        await expect(pager.executeUpdate(acknowledgeUpdate, { args: [{ by: 'mallory' }] })).rejects.toMatchObject({ cause: { message: "'mallory' is not a configured person: add them under people: in the config" } });
        // `lifeboat ack` names the run, not its pager.
        const cli = ['--config', lab.configFile, 'ack', handle.workflowId, '--comment', 'on the bridge, finishing by hand'];
        await expect(runCli([...cli, '--as', 'mallory'])).resolves.toMatchObject({ code: 1, err: expect.stringMatching(/'mallory' is not a configured person/) });
        // One of the run's people (its input names alice and bob) has the message.
        const acked = await runCli([...cli, '--as', 'bob']);
        expect(acked.code).toBe(0);
        expect(acked.out).toMatch(new RegExp(`^acknowledged \\[rehearsal drill\\] failed past the point of no return \\(\\d+ rounds\\)\nacknowledged by bob: ${pager.workflowId} stops retrying\n$`));
        await expect(pager.result()).resolves.toMatchObject({ pages: [expect.objectContaining({ state: 'acknowledged' })], acknowledged: { by: 'bob', comment: 'on the bridge, finishing by hand' } });
      });
    } finally {
      await twilioOutage(false);
      await restartShared();
    }
  }, 300_000);
});
