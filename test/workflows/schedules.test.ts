/**
 * `lifeboat schedules` against the real Temporal dev server: apply is
 * idempotent, a triggered schedule starts a run that completes (real backup,
 * real restore test), drills carry LifeboatDrill, and removal needs --prune.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure, defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FailureType } from '../../contract/failures';
import { parse, stringify } from 'yaml';
import { loadConfig } from '../../config/load';
import type { BackupRestoreTestResult, DatabaseBackupResult } from '../../contract/backup';
import { searchAttributes, statusQuery } from '../../contract/runbook';
import { planStart, UsageError } from '../../cli/start';
import { applySchedules, changeSchedule, desiredSchedules, listSchedules } from '../../cli/schedules';
import { createTestLab, TEST_PEOPLE, type TestLab } from '../helpers/lab';
import { startTestTemporal, type TestTemporal } from '../helpers/temporal';
import { waitFor } from '../../lib/processes';

const SCHEDULES = {
  timeZone: 'Europe/Berlin',
  initiator: 'scheduler',
  catchupWindowMinutes: 30,
  backups: { calendar: { hour: 1, minute: 15 } },
  restoreTests: { calendar: { dayOfMonth: { start: 1, end: 7 }, dayOfWeek: 'MONDAY', hour: 3 } },
};
const PEOPLE = { ...TEST_PEOPLE, scheduler: { roles: ['commander'] } };

let lab: TestLab;
let temporal: TestTemporal;

beforeAll(async () => {
  lab = await createTestLab('schedules', { databases: ['orders'], backups: true, extra: { people: PEOPLE, schedules: SCHEDULES } });
  temporal = await startTestTemporal(lab.loaded);
});

afterAll(async () => {
  for (const d of desiredSchedules(lab.loaded)) await temporal.client.schedule.getHandle(d.scheduleId).delete().catch(() => undefined);
  await temporal?.close();
  await lab?.destroy();
});

/** The run a schedule started most recently, once it is listed. */
async function scheduledRun(scheduleId: string): Promise<string> {
  return waitFor(`a run of ${scheduleId}`, async () => {
    const d = await temporal.client.schedule.getHandle(scheduleId).describe();
    return d.info.recentActions.at(-1)?.action.workflow.workflowId;
  }, 30_000, 200);
}

describe('schedules', () => {
  it('apply creates each schedule once from the config, with its calendar, time zone and policies; a second apply changes nothing', async () => {
    const first = await applySchedules(temporal.client, lab.loaded, { as: 'erin', prune: false });
    expect(first.created.sort()).toEqual(['lifeboat:backup-restore-test:orders', 'lifeboat:database-backup:orders']);
    const second = await applySchedules(temporal.client, lab.loaded, { as: 'erin', prune: false });
    expect(second).toEqual({ created: [], updated: [], unchanged: ['lifeboat:database-backup:orders', 'lifeboat:backup-restore-test:orders'], removed: [], notInConfig: [] });

    const rows = await listSchedules(temporal.client, lab.loaded, 'dave');
    expect(rows.map((r) => r.scheduleId)).toEqual(['lifeboat:backup-restore-test:orders', 'lifeboat:database-backup:orders']);
    const restore = await temporal.client.schedule.getHandle('lifeboat:backup-restore-test:orders').describe();
    expect(restore.spec.timezone).toBe('Europe/Berlin');
    expect(restore.spec.calendars?.[0]).toMatchObject({ dayOfWeek: [{ start: 'MONDAY', end: 'MONDAY', step: 1 }], dayOfMonth: [{ start: 1, end: 7, step: 1 }], hour: [{ start: 3, end: 3, step: 1 }] });
    expect(restore.policies).toMatchObject({ overlap: 'SKIP', catchupWindow: 30 * 60_000, pauseOnFailure: true });
    // The next run is a Monday among the first seven days of a month, at 03:00 in Berlin.
    const next = restore.info.nextActionTimes[0];
    if (!next) throw new Error('no next run');
    const berlin = new Intl.DateTimeFormat('en-GB', { timeZone: 'Europe/Berlin', weekday: 'long', day: 'numeric', hour: '2-digit', hourCycle: 'h23' }).formatToParts(next);
    const part = (type: string) => berlin.find((p) => p.type === type)?.value;
    expect(part('weekday')).toBe('Monday');
    expect(Number(part('day'))).toBeLessThanOrEqual(7);
    expect(part('hour')).toBe('03');
  });

  it('only an admin changes schedules; anyone configured may list', async () => {
    await expect(applySchedules(temporal.client, lab.loaded, { as: 'alice', prune: false })).rejects.toThrow(new UsageError("'alice' may not change schedules: needs the admin role (has commander)"));
    await expect(changeSchedule(temporal.client, lab.loaded, 'trigger', 'lifeboat:database-backup:orders', { as: 'bob' })).rejects.toThrow(/needs the admin role/);
    await expect(changeSchedule(temporal.client, lab.loaded, 'pause', 'lifeboat:nope', { as: 'erin' })).rejects.toThrow("no schedule 'lifeboat:nope': see 'lifeboat schedules list'");
    await expect(listSchedules(temporal.client, lab.loaded, 'nobody')).rejects.toThrow(/'nobody' is not a configured person/);
  });

  it('trigger starts a backup run that completes, then a restore-test drill that completes; drills carry LifeboatDrill', async () => {
    await changeSchedule(temporal.client, lab.loaded, 'trigger', 'lifeboat:database-backup:orders', { as: 'erin' });
    const backupId = await scheduledRun('lifeboat:database-backup:orders');
    expect(backupId).toMatch(/^lifeboat:database-backup:orders-/);
    const backup: DatabaseBackupResult = await temporal.client.workflow.getHandle(backupId).result();
    expect(backup.copies.every((c) => c.verified)).toBe(true);

    await changeSchedule(temporal.client, lab.loaded, 'trigger', 'lifeboat:backup-restore-test:orders', { as: 'erin' });
    const restoreId = await scheduledRun('lifeboat:backup-restore-test:orders');
    const handle = temporal.client.workflow.getHandle(restoreId);
    const restored: BackupRestoreTestResult = await handle.result();
    expect(restored.backupId).toBe(backup.backupId);
    expect(restored.verification.ok).toBe(true);
    const described = await handle.describe();
    expect(described.typedSearchAttributes.get(searchAttributes.drill)).toBe(true);
    expect(described.memo).toEqual({ lifeboat: { runbook: 'backup-restore-test', targets: ['orders'] } });
    // The scheduled run's clock started when it started, not when the schedule was written.
    const status = await handle.query(statusQuery);
    expect(Date.parse(status.detectedAt)).toBeGreaterThan(Date.now() - 5 * 60_000);
    // Admitted on the Schedule's own word: the server's record of its actions lists this run.
    expect(status.events.find((e) => e.kind === 'admitted')?.detail).toMatch(/^started by Schedule lifeboat:backup-restore-test:orders \(verified with the server\)/);
  });

  it('a client start that sets the Schedule id attribute itself is refused: the Schedule did not start it', async () => {
    const plan = planStart(lab.loaded, { runbook: 'backup-restore-test', as: 'alice', drill: true, params: ['database=orders'], scheduled: true, id: `backup-restore-test:orders:posing-${process.pid}` });
    const scheduledBy = defineSearchAttributeKey('TemporalScheduledById', SearchAttributeType.KEYWORD);
    const handle = await temporal.client.workflow.start(plan.workflowType, {
      taskQueue: lab.taskQueue,
      workflowId: plan.workflowId,
      args: [plan.input],
      typedSearchAttributes: [{ key: scheduledBy, value: 'lifeboat:backup-restore-test:orders' }],
    });
    const failure = await handle.result().then(() => undefined, (err: unknown) => (err as WorkflowFailedError).cause as ApplicationFailure);
    expect(failure?.type).toBe(FailureType.RunRefused);
    // Its input is not the one the config schedules (and the Schedule never started it).
    expect(failure?.message).toBe("refused: the run carries the Schedule id lifeboat:backup-restore-test:orders, but that Schedule does not vouch for it (the run's input is not the one the worker's config schedules under 'lifeboat:backup-restore-test:orders' (the Schedule was changed outside 'lifeboat schedules apply'))");
    const status = await handle.query(statusQuery);
    expect(status.state).toBe('refused');
    expect(status.steps.every((s) => s.state === 'pending')).toBe(true);
  });

  it('a Schedule the worker’s config does not ask for vouches for nothing: its run is refused', async () => {
    const plan = planStart(lab.loaded, { runbook: 'backup-restore-test', as: 'alice', drill: true, params: ['database=orders'], scheduled: true, id: 'backup-restore-test:orders:own' });
    const scheduleId = `own-schedule-${process.pid}`;
    const own = await temporal.client.schedule.create({
      scheduleId,
      spec: { intervals: [{ every: '365 days' }] },
      action: { type: 'startWorkflow', workflowType: plan.workflowType, args: [plan.input], taskQueue: lab.taskQueue, workflowId: plan.workflowId },
      state: { paused: true },
    });
    try {
      await own.trigger();
      const runId = await scheduledRun(scheduleId);
      const handle = temporal.client.workflow.getHandle(runId);
      const failure = await handle.result().then(() => undefined, (err: unknown) => (err as WorkflowFailedError).cause as ApplicationFailure);
      expect(failure?.type).toBe(FailureType.RunRefused);
      expect(failure?.message).toBe(`refused: the run carries the Schedule id ${scheduleId}, but that Schedule does not vouch for it ('${scheduleId}' is not a Schedule of this worker's config (schedules:))`);
    } finally {
      await own.delete();
    }
  });

  it('a run that only says it was scheduled is not taken for one: its clock starts at the detection time it carries', async () => {
    const detectedAt = new Date(Date.now() - 3_600_000);
    const plan = planStart(lab.loaded, { runbook: 'backup-restore-test', as: 'alice', drill: true, params: ['database=orders'], scheduled: true, now: detectedAt, id: `backup-restore-test:orders:forged-${process.pid}` });
    expect(plan.input.run.scheduled).toBe(true);
    const handle = await temporal.client.workflow.start(plan.workflowType, { taskQueue: lab.taskQueue, workflowId: plan.workflowId, args: [plan.input] });
    const status = await waitFor('the forged run\'s status', async () => (await handle.query(statusQuery).catch(() => undefined)), 30_000, 200);
    expect(status.detectedAt).toBe(detectedAt.toISOString());
    await handle.result();
  });

  it('pause and unpause are recorded with who and why', async () => {
    await changeSchedule(temporal.client, lab.loaded, 'pause', 'lifeboat:database-backup:orders', { as: 'erin', note: 'storage migration' });
    let d = await temporal.client.schedule.getHandle('lifeboat:database-backup:orders').describe();
    expect(d.state).toMatchObject({ paused: true, note: 'pause by erin: storage migration' });
    await changeSchedule(temporal.client, lab.loaded, 'unpause', 'lifeboat:database-backup:orders', { as: 'erin' });
    d = await temporal.client.schedule.getHandle('lifeboat:database-backup:orders').describe();
    expect(d.state.paused).toBe(false);
  });

  it('a schedule dropped from the config is kept without --prune and deleted with it; a changed calendar updates it', async () => {
    const config = parse(readFileSync(lab.configFile, 'utf8')) as Record<string, unknown>;
    const { restoreTests: _dropped, ...rest } = SCHEDULES;
    const file = path.join(lab.dir, 'changed.yaml');
    writeFileSync(file, stringify({ ...config, schedules: { ...rest, backups: { calendar: { hour: 2, minute: 0 } } } }));
    const loaded = loadConfig(file);

    const kept = await applySchedules(temporal.client, loaded, { as: 'erin', prune: false });
    expect(kept).toMatchObject({ created: [], updated: ['lifeboat:database-backup:orders'], notInConfig: ['lifeboat:backup-restore-test:orders'], removed: [] });
    expect((await listSchedules(temporal.client, loaded, 'dave')).find((r) => r.scheduleId === 'lifeboat:backup-restore-test:orders')?.inConfig).toBe(false);
    const d = await temporal.client.schedule.getHandle('lifeboat:database-backup:orders').describe();
    expect(d.spec.calendars?.[0]).toMatchObject({ hour: [{ start: 2, end: 2, step: 1 }] });

    const pruned = await applySchedules(temporal.client, loaded, { as: 'erin', prune: true });
    expect(pruned).toMatchObject({ unchanged: ['lifeboat:database-backup:orders'], removed: ['lifeboat:backup-restore-test:orders'] });
    expect((await listSchedules(temporal.client, loaded, 'dave')).map((r) => r.scheduleId)).toEqual(['lifeboat:database-backup:orders']);
  });
});
