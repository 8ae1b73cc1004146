/**
 * database-backup and backup-restore-test against the real Temporal dev
 * server, real PostgreSQL (source pair and scratch server) and a real S3
 * server with its data on disk (versitygw). Expected values are computed here
 * from the servers, independently of the code under test.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cancelRun, startRun } from '../../cli/runs';
import { postgresDatabase } from '../../config/load';
import type { BackupManifest, BackupRestoreTestResult, DatabaseBackupResult } from '../../contract/backup';
import { FailureType } from '../../contract/failures';
import { statusQuery, type RunbookStatus } from '../../contract/runbook';
import { watchRun } from '../../cli/watch';
import { createTestLab, type TestLab } from '../helpers/lab';
import { sql } from '../helpers/postgres';
import { startTestTemporal, waitForStatus, type TestTemporal } from '../helpers/temporal';

let lab: TestLab;
let temporal: TestTemporal;
let counter = 0;

beforeAll(async () => {
  lab = await createTestLab('backups', { databases: ['orders'], backups: true });
  temporal = await startTestTemporal(lab.loaded);
  // Rows that make the checksums mean something: NULLs, unicode, a second table in another schema.
  const primary = postgresDatabase(lab.loaded.config, 'orders').primary;
  await sql(primary, 'orders', "INSERT INTO lab_records (payload) VALUES ('naïve ☃'), ('tab\there'), (repeat('x', 5000))");
  await sql(primary, 'orders', 'CREATE SCHEMA billing; CREATE TABLE billing.invoices (id int PRIMARY KEY, amount numeric(12,2), note text)');
  await sql(primary, 'orders', "INSERT INTO billing.invoices SELECT g, g * 1.25, CASE WHEN g % 3 = 0 THEN NULL ELSE 'n' || g END FROM generate_series(1, 500) g");
});

afterAll(async () => {
  await temporal?.close();
  await lab?.destroy();
});

const scratchNode = () => {
  const scratch = lab.loaded.config.backups?.scratch;
  if (!scratch) throw new Error('test lab has no scratch server');
  return { region: 'scratch', host: scratch.host, port: scratch.port };
};
const bucketDir = (bucket: string) => path.join(lab.loaded.stateDir, 's3', 'data', bucket);

async function scratchDatabases(): Promise<string[]> {
  const rows = await sql<{ datname: string }>(scratchNode(), 'postgres', "SELECT datname FROM pg_database WHERE datname LIKE 'lifeboat_restore_%'");
  return rows.map((r) => r.datname);
}

/** Row counts and an order-independent digest per table, computed by the test from the source. */
async function sourceTables(): Promise<Record<string, { rows: number }>> {
  const primary = postgresDatabase(lab.loaded.config, 'orders').primary;
  const result: Record<string, { rows: number }> = {};
  for (const table of ['public.lab_records', 'billing.invoices']) {
    const [row] = await sql<{ n: string }>(primary, 'orders', `SELECT count(*) AS n FROM ${table}`);
    result[table] = { rows: Number(row?.n) };
  }
  return result;
}

async function backup(): Promise<DatabaseBackupResult> {
  const started = await startRun(temporal.client, lab.loaded, { runbook: 'database-backup', params: ['database=orders'], as: 'alice', drill: false, id: `backup-${process.pid}-${++counter}` });
  return temporal.client.workflow.getHandle(started.workflowId).result();
}

async function startRestoreTest(params: string[] = []) {
  const started = await startRun(temporal.client, lab.loaded, { runbook: 'backup-restore-test', params: ['database=orders', ...params], as: 'alice', drill: true, id: `restore-${process.pid}-${++counter}` });
  return temporal.client.workflow.getHandle(started.workflowId);
}

describe('the lab\'s backup parts', () => {
  it('lab status reports the S3 server with its buckets and the scratch server, read live', async () => {
    const status = await lab.lab.status();
    expect(status.backups?.s3).toMatchObject({ reachable: true, buckets: ['backups-east', 'backups-west', 'lifeboat-evidence'] });
    expect(status.backups?.scratch).toMatchObject({ reachable: true, port: lab.loaded.config.backups?.scratch?.port });
  });
});

describe('database-backup', () => {
  it('dumps in one snapshot, writes a manifest, copies to the second region and verifies the copy', async () => {
    const expected = await sourceTables();
    const result = await backup();

    expect(result.manifest.provider).toBe('postgres');
    expect(result.manifest.locations).toEqual(['s3://backups-east']);
    const tables = Object.fromEntries((result.manifest.tables ?? []).map((t) => [t.table, t.rows]));
    expect(tables['public.lab_records']).toBe(expected['public.lab_records']?.rows);
    expect(tables['billing.invoices']).toBe(500);
    expect(result.copies).toEqual([expect.objectContaining({ location: 's3://backups-west', verified: true })]);

    // The artifact on disk in both buckets is the bytes the manifest describes.
    const artifact = result.manifest.artifact;
    if (artifact.kind !== 'pg_dump-custom') throw new Error('expected a pg_dump artifact');
    for (const bucket of ['backups-east', 'backups-west']) {
      const bytes = readFileSync(path.join(bucketDir(bucket), artifact.key));
      expect(bytes.subarray(0, 5).toString()).toBe('PGDMP'); // pg_dump's custom-format magic
      expect(bytes.length).toBe(artifact.sizeBytes);
      expect(createHash('sha256').update(bytes).digest('hex')).toBe(artifact.sha256);
      expect(existsSync(path.join(bucketDir(bucket), 'orders', result.backupId, 'verified.json'))).toBe(true);
      const manifest = JSON.parse(readFileSync(path.join(bucketDir(bucket), 'orders', result.backupId, 'manifest.json'), 'utf8')) as BackupManifest;
      expect(manifest.backupId).toBe(result.backupId);
    }
  });

  it('retention deletes only backups that newer verified backups supersede', async () => {
    // keepVerified is 2 in the test lab. An unverified leftover (no manifest) older than both goes too.
    const first = await backup();
    const second = await backup();
    const third = await backup();
    expect(third.retention.kept.slice(0, 2)).toEqual([third.backupId, second.backupId]);
    expect(third.retention.deleted).toContain(first.backupId);
    for (const bucket of ['backups-east', 'backups-west']) {
      expect(existsSync(path.join(bucketDir(bucket), 'orders', first.backupId))).toBe(false);
      expect(existsSync(path.join(bucketDir(bucket), 'orders', third.backupId, 'dump.pgc'))).toBe(true);
    }
  });
});

describe('backup-restore-test', () => {
  it('restores the newest backup into a scratch database; counts and checksums match the source; the scratch database is dropped', async () => {
    const expected = await sourceTables();
    const made = await backup();
    const handle = await startRestoreTest();
    const result: BackupRestoreTestResult = await handle.result();

    expect(result.backupId).toBe(made.backupId);
    expect(result.artifact.ok).toBe(true);
    expect(result.verification.ok).toBe(true);
    const restored = Object.fromEntries(result.verification.tables.map((t) => [t.table, t]));
    for (const [table, { rows }] of Object.entries(expected)) {
      expect(restored[table]?.rows, table).toBe(rows);
      expect(restored[table]?.match, table).toBe(true);
    }
    // The checksums match those taken from the source at dump time.
    const atDump = Object.fromEntries((made.manifest.tables ?? []).map((t) => [t.table, t.checksum]));
    for (const t of result.verification.tables) expect(t.checksum).toBe(atDump[t.table]);
    expect(result.verification.samples).toEqual([{ name: 'seeded rows', rows: 50, ok: true }]);
    expect(result.restoreTarget.targetSeconds).toBe(300);
    expect(result.restoreTarget.met).toBe(true);
    expect(await scratchDatabases()).toEqual([]);
    const status = await handle.query(statusQuery);
    expect(status.steps.map((s) => `${s.id}:${s.state}`)).toEqual(['select:done', 'verify-artifact:done', 'create-scratch:done', 'restore:done', 'verify-data:done', 'cleanup:done']);
  });

  it('a backup with one corrupted byte fails at the checksum step with the reason, pages, and leaves no scratch database', async () => {
    const made = await backup();
    const artifact = made.manifest.artifact;
    if (artifact.kind !== 'pg_dump-custom') throw new Error('expected a pg_dump artifact');
    const file = path.join(bucketDir('backups-east'), artifact.key);
    const bytes = readFileSync(file);
    const at = Math.floor(bytes.length / 2);
    bytes[at] = (bytes[at] ?? 0) ^ 0xff;
    writeFileSync(file, bytes);

    const handle = await startRestoreTest([`backup=${made.backupId}`]);
    const failure = await handle.result().then(() => undefined, (err: unknown) => err);
    expect(failure).toBeInstanceOf(WorkflowFailedError);
    const cause = (failure as WorkflowFailedError).cause;
    expect(cause).toBeInstanceOf(ApplicationFailure);
    expect((cause as ApplicationFailure).type).toBe(FailureType.StepFailed);
    expect(String((cause as ApplicationFailure).message)).toMatch(/verify-artifact/);
    const root = (cause as ApplicationFailure).cause;
    expect((root as ApplicationFailure | undefined)?.cause?.message ?? (root as Error | undefined)?.message).toMatch(new RegExp(`backup ${made.backupId} is corrupt: .*(differ|does not match).*the manifest's (SHA-256 is )?${artifact.sha256}`));

    const status: RunbookStatus = await handle.query(statusQuery);
    expect(status.state).toBe('rolled-back');
    expect(status.steps.find((s) => s.id === 'verify-artifact')?.state).toBe('failed');
    expect(status.steps.find((s) => s.id === 'restore')?.state).toBe('pending');
    expect(await scratchDatabases()).toEqual([]);
    // The failure was paged with the reason: the journal records what was delivered.
    const journal = readFileSync(lab.loaded.journalPath, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { workflowId: string; audience: string; subject: string; body: string; delivered: boolean });
    const pages = journal.filter((j) => j.workflowId === handle.workflowId && j.delivered);
    expect(pages.map((p) => p.audience).sort()).toEqual(['incident', 'oncall']);
    expect(pages[0]?.body).toMatch(/is corrupt/);
  });

  it('a cancel mid-restore still drops the scratch database', async () => {
    await backup();
    // Every scratch database is a copy of template1: an event trigger there holds the restore's
    // first DDL statement while a role exists, so the test can cancel while pg_restore is running.
    const scratch = scratchNode();
    await sql(scratch, 'postgres', 'CREATE ROLE lifeboat_test_hold_restore');
    await sql(scratch, 'template1', `CREATE FUNCTION hold_restore() RETURNS event_trigger LANGUAGE plpgsql AS $$
      BEGIN WHILE EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'lifeboat_test_hold_restore') LOOP PERFORM pg_sleep(0.1); END LOOP; END $$;
      CREATE EVENT TRIGGER hold_restore ON ddl_command_start EXECUTE FUNCTION hold_restore()`);
    try {
      const handle = await startRestoreTest();
      await waitForStatus(handle, (s) => s.steps.find((step) => step.id === 'restore')?.state === 'running', 'the restore to start', 60_000);
      // pg_restore is connected to the scratch database and held in the event trigger.
      const [held] = await waitForHeld();
      expect(held).toMatch(/^lifeboat_restore_/);
      await cancelRun(temporal.client, lab.loaded, handle.workflowId, 'alice', 'test: cancel mid-restore');

      const failure = await handle.result().then(() => undefined, (err: unknown) => err);
      expect(failure).toBeInstanceOf(WorkflowFailedError);
      expect((failure as WorkflowFailedError).cause).toBeInstanceOf(CancelledFailure);
      const status = await handle.query(statusQuery);
      expect(status.state).toBe('rolled-back');
      expect(status.steps.find((s) => s.id === 'create-scratch')?.state).toBe('compensated');
      expect(await scratchDatabases()).toEqual([]);
    } finally {
      await sql(scratch, 'postgres', 'DROP ROLE IF EXISTS lifeboat_test_hold_restore');
      await sql(scratch, 'template1', 'DROP EVENT TRIGGER IF EXISTS hold_restore; DROP FUNCTION IF EXISTS hold_restore()');
    }
  });
});

describe('status --watch', () => {
  it('follows a restore test to its end, one line per change, exit 0; a failing run exits 1 with the reason', async () => {
    await backup();
    const handle = await startRestoreTest();
    let out = '';
    const code = await watchRun(temporal.client, handle.workflowId, { tty: false, write: (t) => { out += t; }, intervalMs: 100 });
    expect(code).toBe(0);
    expect(out).toMatch(/step verify-artifact: done/);
    expect(out).toMatch(/step restore: done/);
    expect(out).toMatch(/step cleanup: done/);
    expect(out).toMatch(new RegExp(`run ${handle.workflowId} completed; RTO \\d+\\.\\d+s of 3600s\\n$`));
    // Each change once: a step reported done appears once.
    expect(out.match(/step restore: done/g)).toHaveLength(1);

    const failing = await startRestoreTest(['backup=orders-19700101T000000.000Z-nothing']);
    let failed = '';
    expect(await watchRun(temporal.client, failing.workflowId, { tty: false, write: (t) => { failed += t; }, intervalMs: 100 })).toBe(1);
    expect(failed).toMatch(/ended rolled-back: .*no backup 'orders-19700101T000000.000Z-nothing' of orders/);
  });
});

/** The scratch databases with a session waiting in the event trigger. */
async function waitForHeld(): Promise<string[]> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const rows = await sql<{ datname: string }>(scratchNode(), 'postgres', "SELECT datname FROM pg_stat_activity WHERE datname LIKE 'lifeboat_restore_%' AND wait_event = 'PgSleep'");
    if (rows.length > 0) return rows.map((r) => r.datname);
    if (Date.now() > deadline) throw new Error('pg_restore never reached the event trigger');
    await new Promise((r) => setTimeout(r, 100));
  }
}
