/**
 * `lifeboat audit` against the real Temporal dev server, real PostgreSQL and a
 * real S3 server: the evidence is real runs made here (a db-promotion drill, a
 * backup, a passing and a failing restore test), read back through visibility
 * and the runs' results. Each finding is checked against config variants
 * (tier targets, RPOs, services) written next to the lab's config.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { WorkflowFailedError } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { auditExitCode, renderAuditTable, runAudit, type AuditReport, type AuditRow } from '../../cli/audit';
import { decideGate, startRun } from '../../cli/runs';
import { planStart } from '../../cli/start';
import { loadConfig, type LoadedConfig } from '../../config/load';
import type { DatabaseBackupResult } from '../../contract/backup';
import type { DbPromotionResult } from '../../contract/db-promotion';
import { createTestLab, type TestLab } from '../helpers/lab';
import { gateWaiting, startTestTemporal, waitForStatus, type TestTemporal } from '../helpers/temporal';

const DAY_MS = 86_400_000;

let lab: TestLab;
let temporal: TestTemporal;
let counter = 0;

/** What the runs below produced, read from Temporal independently of the audit. */
const made = {
  backup: undefined as unknown as DatabaseBackupResult,
  passedTest: '',
  passedTestClosedAt: new Date(0),
  failedTest: '',
  unlistedBackup: '',
  beforeDrill: new Date(0),
  drill: '',
  drillClosedAt: new Date(0),
  drillResult: undefined as unknown as DbPromotionResult,
};

type AuditYaml = {
  databases: Record<string, { tier?: number; backup?: unknown }>;
  backups: { categories: Record<string, { rpoSeconds: number; restoreTargetSeconds: number }> };
  audit?: Record<string, unknown>;
};

/** The lab's config with `change` applied, as a config file of its own (the audit reads only the config). */
function variant(change: (config: AuditYaml) => void): LoadedConfig {
  const config = parse(readFileSync(lab.configFile, 'utf8')) as AuditYaml;
  change(config);
  const file = path.join(lab.dir, `audit-variant-${++counter}.yaml`);
  writeFileSync(file, stringify(config));
  return loadConfig(file);
}

const SERVICES = { auth: { tier: 1 }, app: { tier: 2, failover: 'regional-evacuation' } };

/** Targets every run above meets: only the missing evidence is flagged. */
const generous = () =>
  variant((c) => {
    c.audit = { drillMaxAgeDays: 90, tiers: { 1: { rtoSeconds: 3600 }, 2: { rtoSeconds: 7200 }, 3: { rtoSeconds: 14400 } }, services: SERVICES };
    c.backups.categories.transactional = { rpoSeconds: 86_400, restoreTargetSeconds: 300 };
  });

/** A tier-1 RTO target half the drill's measured RTO and an RPO of one second. */
const strict = () =>
  variant((c) => {
    c.audit = { tiers: { 1: { rtoSeconds: made.drillResult.rto.measuredSeconds / 2 }, 2: { rtoSeconds: 900 }, 3: { rtoSeconds: 14400 } }, services: SERVICES };
    c.backups.categories.transactional = { rpoSeconds: 1, restoreTargetSeconds: 300 };
  });

function row(report: AuditReport, name: string): AuditRow {
  const found = report.rows.find((r) => r.name === name);
  if (!found) throw new Error(`no row for ${name} in ${report.rows.map((r) => r.name).join(', ')}`);
  return found;
}

async function closeTimeOf(workflowId: string): Promise<Date> {
  const closed = (await temporal.client.workflow.getHandle(workflowId).describe()).closeTime;
  if (!closed) throw new Error(`${workflowId} has not closed`);
  return closed;
}

beforeAll(async () => {
  lab = await createTestLab('audit', { databases: ['orders', 'users'], backups: true });
  temporal = await startTestTemporal(lab.loaded);
  const { client } = temporal;
  const tag = `${process.pid}-${Date.now().toString(36)}`;

  // A backup of orders, then a restore test that passes and one that fails (a backup that does not exist).
  const backup = await startRun(client, lab.loaded, { runbook: 'database-backup', params: ['database=orders'], as: 'alice', drill: false, id: `audit-backup-orders-${tag}` });
  made.backup = await client.workflow.getHandle(backup.workflowId).result();
  const passed = await startRun(client, lab.loaded, { runbook: 'backup-restore-test', params: ['database=orders'], as: 'alice', drill: true, id: `audit-restore-ok-${tag}` });
  await client.workflow.getHandle(passed.workflowId).result();
  made.passedTest = passed.workflowId;
  made.passedTestClosedAt = await closeTimeOf(passed.workflowId);
  const failed = await startRun(client, lab.loaded, { runbook: 'backup-restore-test', params: ['database=orders', 'backup=orders-20000101T000000.000Z-missing'], as: 'alice', drill: true, id: `audit-restore-bad-${tag}` });
  const failure = await client.workflow.getHandle(failed.workflowId).result().then(() => undefined, (err: unknown) => err);
  if (!(failure instanceof WorkflowFailedError)) throw new Error(`the restore test of a missing backup should fail, got ${String(failure)}`);
  made.failedTest = failed.workflowId;

  // A backup of users started around startRun, without the lifeboat memo: not evidence.
  const plan = planStart(lab.loaded, { runbook: 'database-backup', params: ['database=users'], as: 'alice', drill: false });
  const unlisted = await client.workflow.start(plan.workflowType, {
    taskQueue: lab.taskQueue,
    workflowId: `audit-backup-users-no-memo-${tag}`,
    typedSearchAttributes: plan.searchAttributes,
    args: [plan.input],
  });
  await unlisted.result();
  made.unlistedBackup = unlisted.workflowId;

  // A db-promotion drill of orders, approved by a second person.
  made.beforeDrill = new Date();
  const drill = await startRun(client, lab.loaded, { runbook: 'db-promotion', params: ['database=orders'], as: 'alice', drill: true, id: `audit-drill-orders-${tag}` });
  const handle = client.workflow.getHandle<() => Promise<DbPromotionResult>>(drill.workflowId);
  await waitForStatus(handle, gateWaiting('promote'), 'the promote gate');
  await decideGate(client, lab.loaded, { workflowId: drill.workflowId, gate: 'promote', as: 'bob', comment: 'audit drill', decision: 'approve' });
  made.drillResult = await handle.result();
  made.drill = drill.workflowId;
  made.drillClosedAt = await closeTimeOf(drill.workflowId);

  // The RPO variant below needs a backup older than one second.
  const age = Date.now() - Date.parse(made.backup.manifest.finishedAt);
  if (age < 2000) await new Promise((r) => setTimeout(r, 2000 - age));
});

afterAll(async () => {
  await temporal?.close();
  await lab?.destroy();
});

describe('lifeboat audit', () => {
  it('finds the runs above through visibility once it lists them (eventually consistent)', async () => {
    const { client } = temporal;
    // Visibility is eventually consistent: wait until every run above is listed as closed, with its memo.
    const loaded = generous();
    await expect
      .poll(
        async () => {
          const o = row(await runAudit(client, loaded), 'orders');
          return [o.lastDrill?.workflowId, o.lastMeasuredRto?.workflowId, o.newestBackup?.workflowId, o.lastRestoreTest?.workflowId];
        },
        { timeout: 30_000, interval: 250 },
      )
      .toEqual([made.drill, made.drill, made.backup.workflowId, made.failedTest]);
    await expect
      .poll(async () => row(await runAudit(client, loaded, { asOf: made.passedTestClosedAt }), 'orders').lastRestoreTest?.workflowId, { timeout: 30_000, interval: 250 })
      .toBe(made.passedTest);
    await expect
      .poll(async () => {
        let n = 0;
        for await (const _ of client.workflow.list({ query: `WorkflowId = '${made.unlistedBackup}' AND ExecutionStatus = 'Completed'` })) n += 1;
        return n;
      }, { timeout: 30_000, interval: 250 })
      .toBe(1);
  });

  it('as of now, with targets the runs meet: only the missing evidence and the failed restore test are flagged', async () => {
    const report = await runAudit(temporal.client, generous());
    const orders = row(report, 'orders');
    expect(orders).toMatchObject({ kind: 'database', tier: 1, hasFailover: true, issues: ['FAILED_TEST'] });
    expect(orders.failover).toMatch(/^standby west 127\.0\.0\.1:\d+ \(db-promotion\)$/);
    expect(orders.lastDrill).toEqual({ at: made.drillClosedAt.toISOString(), workflowId: made.drill, runbook: 'db-promotion' });
    expect(orders.lastMeasuredRto).toEqual({ seconds: made.drillResult.rto.measuredSeconds, targetSeconds: 3600, workflowId: made.drill });
    expect(orders.newestBackup).toMatchObject({ at: made.backup.manifest.finishedAt, rpoSeconds: 86_400, workflowId: made.backup.workflowId });
    expect(orders.newestBackup?.ageSeconds).toBeGreaterThanOrEqual(2);
    expect(orders.lastRestoreTest).toMatchObject({ passed: false, workflowId: made.failedTest });

    // users: never drilled, and its only backup was started without the memo, so it does not count.
    const users = row(report, 'users');
    expect(users.issues).toEqual(['TEST_OVERDUE', 'BACKUP_OVERDUE']);
    expect(users.lastDrill).toBeUndefined();
    expect(users.newestBackup).toBeUndefined();
    expect(users.lastRestoreTest).toBeUndefined();

    // Services: one without a failover, one failing over by regional evacuation (never drilled here).
    expect(row(report, 'auth')).toMatchObject({ kind: 'service', tier: 1, hasFailover: false, failover: 'none', issues: ['NO_FAILOVER'] });
    expect(row(report, 'app')).toMatchObject({ kind: 'service', tier: 2, hasFailover: true, failover: 'regional-evacuation', issues: ['TEST_OVERDUE'] });

    expect(report.findings.map((f) => `${f.subject}:${f.code}:${f.tier}`).sort()).toEqual(
      ['app:TEST_OVERDUE:2', 'auth:NO_FAILOVER:1', 'orders:FAILED_TEST:1', 'users:BACKUP_OVERDUE:1', 'users:TEST_OVERDUE:1'].sort(),
    );
    expect(report.findings.find((f) => f.subject === 'orders')?.detail).toContain(made.failedTest);
    expect(report.findings.find((f) => f.subject === 'users' && f.code === 'TEST_OVERDUE')?.detail).toMatch(/^never drilled/);
    expect(report.tier1Findings).toBe(4);
    expect(auditExitCode(report)).toBe(1);
  });

  it('a drill completed today is overdue as of 91 days later, not as of 89; before it, orders was never drilled', async () => {
    const loaded = generous();
    const later = await runAudit(temporal.client, loaded, { asOf: new Date(made.drillClosedAt.getTime() + 91 * DAY_MS) });
    expect(row(later, 'orders').issues).toContain('TEST_OVERDUE');
    expect(row(later, 'orders').lastDrill?.workflowId).toBe(made.drill);
    expect(later.findings.find((f) => f.subject === 'orders' && f.code === 'TEST_OVERDUE')?.detail).toMatch(new RegExp(`^last drill ${made.drill} completed \\S+, 91 days before \\S+ \\(limit 90 days\\)`));
    expect(row(later, 'users').issues).toContain('TEST_OVERDUE');

    const sooner = await runAudit(temporal.client, loaded, { asOf: new Date(made.drillClosedAt.getTime() + 89 * DAY_MS) });
    expect(row(sooner, 'orders').issues).not.toContain('TEST_OVERDUE');

    const before = await runAudit(temporal.client, loaded, { asOf: made.beforeDrill });
    expect(row(before, 'orders').lastDrill).toBeUndefined();
    expect(row(before, 'orders').lastMeasuredRto).toBeUndefined();
    expect(row(before, 'orders').issues).toContain('TEST_OVERDUE');
  });

  it('the measured RTO of the newest failover is flagged against a tier target below it, not against a generous one', async () => {
    expect(made.drillResult.rto.measuredSeconds).toBeGreaterThan(0);
    const report = await runAudit(temporal.client, strict());
    const orders = row(report, 'orders');
    expect(orders.lastMeasuredRto).toEqual({ seconds: made.drillResult.rto.measuredSeconds, targetSeconds: made.drillResult.rto.measuredSeconds / 2, workflowId: made.drill });
    expect(orders.issues).toContain('RTO_EXCEEDED');
    expect(report.findings.find((f) => f.subject === 'orders' && f.code === 'RTO_EXCEEDED')).toMatchObject({ tier: 1 });
    expect(row(await runAudit(temporal.client, generous()), 'orders').issues).not.toContain('RTO_EXCEEDED');
    // users has no failover run at all: nothing measured, nothing exceeded.
    expect(row(report, 'users').lastMeasuredRto).toBeUndefined();
    expect(row(report, 'users').issues).not.toContain('RTO_EXCEEDED');
  });

  it('a backup older than its category RPO is overdue; within it, not; no backup or no backup configured is overdue', async () => {
    const report = await runAudit(temporal.client, strict());
    const orders = row(report, 'orders');
    expect(orders.newestBackup).toMatchObject({ workflowId: made.backup.workflowId, rpoSeconds: 1 });
    expect(orders.newestBackup?.ageSeconds).toBeGreaterThan(1);
    expect(orders.issues).toContain('BACKUP_OVERDUE');
    expect(row(report, 'users').issues).toContain('BACKUP_OVERDUE');
    expect(row(await runAudit(temporal.client, generous()), 'orders').issues).not.toContain('BACKUP_OVERDUE');

    const unconfigured = variant((c) => {
      delete c.databases.users?.backup;
    });
    const finding = (await runAudit(temporal.client, unconfigured)).findings.find((f) => f.subject === 'users' && f.code === 'BACKUP_OVERDUE');
    expect(finding?.detail).toMatch(/^no backup configured/);
  });

  it('the newest restore test decides FAILED_TEST: as of just after the passing one, nothing is flagged', async () => {
    const now = row(await runAudit(temporal.client, generous()), 'orders');
    expect(now.lastRestoreTest).toMatchObject({ passed: false, workflowId: made.failedTest });
    expect(now.issues).toContain('FAILED_TEST');

    const then = row(await runAudit(temporal.client, generous(), { asOf: made.passedTestClosedAt }), 'orders');
    expect(then.lastRestoreTest).toEqual({ at: made.passedTestClosedAt.toISOString(), passed: true, workflowId: made.passedTest });
    expect(then.issues).not.toContain('FAILED_TEST');
  });

  it('exits 1 with a tier-1 finding and 0 when the findings are all tier 3', async () => {
    const all = await runAudit(temporal.client, strict());
    expect(auditExitCode(all)).toBe(1);

    const tier3 = variant((c) => {
      for (const db of Object.values(c.databases)) db.tier = 3;
      delete c.databases.users?.backup;
      c.audit = { services: { wiki: { tier: 3 } } };
    });
    const report = await runAudit(temporal.client, tier3);
    expect(report.findings.length).toBeGreaterThan(0);
    expect(new Set(report.findings.map((f) => f.tier))).toEqual(new Set([3]));
    expect(report.findings.map((f) => `${f.subject}:${f.code}`).sort()).toEqual(['orders:FAILED_TEST', 'users:BACKUP_OVERDUE', 'users:TEST_OVERDUE', 'wiki:NO_FAILOVER']);
    expect(report.tier1Findings).toBe(0);
    expect(auditExitCode(report)).toBe(0);
  });

  it('renders a table with every database and service and a line per finding saying what to do', async () => {
    const report = await runAudit(temporal.client, strict());
    const text = renderAuditTable(report);
    for (const name of ['orders', 'users', 'auth', 'app']) expect(text).toMatch(new RegExp(`^(database|service)\\s+${name}\\s`, 'm'));
    for (const code of ['NO_FAILOVER', 'TEST_OVERDUE', 'RTO_EXCEEDED', 'BACKUP_OVERDUE', 'FAILED_TEST']) expect(text).toContain(code);
    const findingLines = text.split('\n').filter((l) => /^\s+\[tier \d\] /.test(l));
    expect(findingLines).toHaveLength(report.findings.length);
    expect(findingLines.find((l) => l.includes('NO_FAILOVER'))).toMatch(/auth: no failover configured/);
    expect(findingLines.find((l) => l.includes('users') && l.includes('TEST_OVERDUE'))).toContain('lifeboat start db-promotion database=users --drill');
    if (process.env.LIFEBOAT_SHOW_AUDIT === '1') console.log(text);
  });
});
