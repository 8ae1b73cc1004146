/**
 * Failback after an unplanned evacuation in which east committed rows west
 * never received: real Temporal, real PostgreSQL streaming replication. The
 * failback must measure the divergence before any rebuild, keep a copy of the
 * diverged data directory and a reconciliation report, stop at the
 * `discard-divergence` gate, and say what it discarded (or roll back without
 * having rebuilt anything).
 */
import { execFileSync } from 'node:child_process';
import { appendFileSync, chownSync, existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import type { ApplicationFailure } from '@temporalio/common';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { writeReport, type RunReport } from '../../cli/report';
import { decideGate, startRun } from '../../cli/runs';
import { postgresDatabase } from '../../config/load';
import type { ReconciliationReport } from '../../contract/divergence';
import { FailureType } from '../../contract/failures';
import { ranToEnd, statusQuery, type RunbookStatus } from '../../contract/runbook';
import { asOwner, clusterOwner, pgBin } from '../../activities/postgres-host';
import { clusterPid } from '../../lab/postgres';
import { freePort, waitFor } from '../../lib/processes';
import type { failback } from '../../workflows';
import { createTestLab, type TestLab } from '../helpers/lab';
import { inRecovery, sql, timeline } from '../helpers/postgres';
import { gateWaiting, startTestTemporal, waitForStatus, type TestTemporal } from '../helpers/temporal';
import { evacuateLostEast } from '../helpers/lost-region';

const DATABASES = ['orders', 'users'];
/** Rows east commits on orders after west stopped receiving its WAL. */
const DIVERGED_ROWS = 5;

let lab: TestLab;
let temporal: TestTemporal;
let counter = 0;

beforeAll(async () => {
  lab = await createTestLab('divergence', { databases: DATABASES, regions: true });
  temporal = await startTestTemporal(lab.loaded);
});

afterAll(async () => {
  await temporal?.close();
  await lab?.destroy();
});

const db = (name: string) => postgresDatabase(lab.loaded.config, name);

async function approve(handle: WorkflowHandle, gate: string): Promise<RunbookStatus> {
  const status = await waitForStatus(handle, gateWaiting(gate), `gate ${gate}`, 240_000);
  await decideGate(temporal.client, lab.loaded, { workflowId: handle.workflowId, gate, as: 'bob', comment: 'go', decision: 'approve' });
  return status;
}

async function count(node: { host: string; port: number; region: string }, database: string, where = 'true'): Promise<number> {
  const [row] = await sql<{ n: string }>(node, database, `SELECT count(*)::text AS n FROM lab_records WHERE ${where}`);
  return Number(row?.n ?? -1);
}

async function ids(node: { host: string; port: number; region: string }, database: string, where: string): Promise<string[]> {
  return (await sql<{ id: string }>(node, database, `SELECT id::text AS id FROM lab_records WHERE ${where} ORDER BY id`)).map((r) => r.id);
}

/** Runs `work` against a stopped data directory started alone on a free loopback port (for the test's own counting), then stops it. */
async function withStoppedCluster<T>(dataDir: string, work: (node: { host: string; port: number; region: string }) => Promise<T>): Promise<T> {
  const port = await freePort();
  const log = `${dataDir}.test.log`;
  appendFileSync(log, '');
  const owner = clusterOwner();
  if (owner) chownSync(log, owner.uid, owner.gid);
  await asOwner('pg_ctl', ['-D', dataDir, '-l', log, '-w', '-t', '120', '-o', `-p ${port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c archive_mode=off`, 'start']);
  try {
    return await work({ host: '127.0.0.1', port, region: 'copy' });
  } finally {
    await asOwner('pg_ctl', ['-D', dataDir, '-m', 'fast', '-w', 'stop']);
  }
}

function controlData(dataDir: string): Record<string, string> {
  const text = execFileSync(pgBin('pg_controldata'), ['-D', dataDir]).toString();
  return Object.fromEntries(text.split('\n').flatMap((l) => {
    const i = l.indexOf(':');
    return i > 0 ? [[l.slice(0, i).trim(), l.slice(i + 1).trim()]] : [];
  }));
}

interface Diverged {
  /** Ids of the rows east committed that west never received. */
  divergedIds: string[];
  /** lab_records rows per database on east just before the kill. */
  eastCounts: Record<string, number>;
  /** lab_records rows per database on west after the evacuation. */
  westCounts: Record<string, number>;
}

/**
 * West stops receiving orders' WAL (its primary_conninfo emptied), east commits rows there, then the
 * whole east region is SIGKILLed and evacuated (unplanned). users kept streaming: nothing diverged.
 */
async function divergeAndEvacuate(): Promise<Diverged> {
  const orders = db('orders');
  // Both databases replicate a row written before the cut.
  for (const name of DATABASES) {
    await sql(db(name).primary, name, "INSERT INTO lab_records (payload) VALUES ('replicated before the cut')");
    await expect.poll(() => count(db(name).standby, name, "payload = 'replicated before the cut'"), { timeout: 15_000 }).toBe(1);
  }
  await sql(orders.standby, 'postgres', "ALTER SYSTEM SET primary_conninfo = ''");
  await sql(orders.standby, 'postgres', 'SELECT pg_reload_conf()');
  await waitFor('west to stop receiving orders', async () => {
    const [row] = await sql<{ n: string }>(orders.standby, 'postgres', 'SELECT count(*)::text AS n FROM pg_stat_wal_receiver');
    return row?.n === '0' ? true : undefined;
  }, 15_000);
  const divergedIds = (await sql<{ id: string }>(orders.primary, 'orders', "INSERT INTO lab_records (payload) SELECT 'diverged ' || g FROM generate_series(1, $1::int) g RETURNING id::text AS id", [DIVERGED_ROWS])).map((r) => r.id);
  expect(divergedIds).toHaveLength(DIVERGED_ROWS);
  // A moment for any WAL to reach west if the cut did not hold: it must not have.
  await new Promise((r) => setTimeout(r, 1000));
  expect(await count(orders.standby, 'orders', "payload LIKE 'diverged %'")).toBe(0);
  const eastCounts = Object.fromEntries(await Promise.all(DATABASES.map(async (n) => [n, await count(db(n).primary, n)] as const)));

  // A child whose RPO after the kill is beyond its target (the upper bound grows with a loaded machine) waits
  // at its own gate for a person: the helper approves it there, as the on-call would.
  const { handle: evacuation } = await evacuateLostEast(temporal.client, lab, DATABASES, `regional-evacuation:east:test-${process.pid}-${++counter}`);
  const result = ranToEnd(await evacuation.result());
  expect(result.databases.every((d) => d.state === 'promoted')).toBe(true);
  for (const name of DATABASES) expect(await timeline(db(name).standby)).toBe(2);
  const westCounts = Object.fromEntries(await Promise.all(DATABASES.map(async (n) => [n, await count(db(n).standby, n)] as const)));
  expect(await count(orders.standby, 'orders', "payload LIKE 'diverged %'")).toBe(0);
  return { divergedIds, eastCounts, westCounts };
}

/**
 * East's service, unreachable during the evacuation, answers again: the return watch the evacuation left
 * freezes it and leaves the region's hold, so the failback may claim it.
 */
async function serviceFrozenAgain(): Promise<void> {
  const watch = await temporal.client.workflow.getHandle('lifeboat-return-watch:region:east').result();
  expect(watch).toMatchObject({ duty: 'freeze', region: 'east' });
  const health = await fetch(`${lab.loaded.config.services.east?.url ?? ''}/health`);
  expect(await health.json()).toMatchObject({ frozen: true });
}

async function startFailback(): Promise<WorkflowHandle<typeof failback>> {
  const started = await startRun(temporal.client, lab.loaded, { runbook: 'failback', params: ['region=east'], as: 'alice', id: `failback:east:test-${process.pid}-${++counter}`, drill: true });
  return temporal.client.workflow.getHandle<typeof failback>(started.workflowId);
}

/** What the run shows at the gate: one reconciliation artifact, for orders only, with the diverged rows. */
async function checkTheGate(handle: WorkflowHandle, divergedIds: string[]): Promise<{ status: RunbookStatus; copy: string; report: ReconciliationReport }> {
  const status = await waitForStatus(handle, gateWaiting('discard-divergence'), 'gate discard-divergence', 240_000);
  // Nothing was rebuilt before the gate.
  expect(status.steps.find((s) => s.id === 'rebuild-standbys')?.state).toBe('pending');
  expect(status.steps.find((s) => s.id === 'measure-divergence')?.state).toBe('done');
  expect(status.steps.find((s) => s.id === 'measure-divergence')?.note).toMatch(/orders: \d+ bytes diverged past the fork [0-9A-F]+\/[0-9A-F]+ .*; users: 0 bytes diverged/);
  expect(status.steps.find((s) => s.id === 'keep-divergence')?.state).toBe('done');
  const artifacts = status.artifacts ?? [];
  expect(artifacts.map((a) => a.name)).toEqual(['reconciliation-rebuild-standbys-orders']);
  const artifact = artifacts[0];
  if (!artifact) throw new Error('no artifact');
  expect(artifact.summary).toMatchObject({ database: 'orders', node: 'east', current: 'west', state: 'diverged', missing: DIVERGED_ROWS, different: 0 });
  expect(artifact.summary.divergedBytes).toBeGreaterThan(0);
  expect(artifact.summary.commits).toBeGreaterThanOrEqual(1);
  expect(status.events.some((e) => e.kind === 'artifact' && e.detail.includes(artifact.digest))).toBe(true);

  // The copy of east's data directory exists beside it, a whole cluster.
  const copy = String(artifact.summary.copy);
  const dataDir = lab.lab.clusters('orders').primary.dataDir;
  expect(copy.startsWith(`${dataDir}.lifeboat-diverged-`)).toBe(true);
  expect(existsSync(path.join(copy, 'PG_VERSION'))).toBe(true);
  expect(existsSync(path.join(copy, 'standby.signal'))).toBe(false);

  // The stored report lists the missing rows by key, with the rows themselves.
  const stored = artifact.locations.find((l) => !l.startsWith('s3://'));
  if (!stored) throw new Error(`no local copy of the report in ${artifact.locations.join(', ')}`);
  const report = JSON.parse(readFileSync(stored, 'utf8')) as ReconciliationReport;
  expect(report.totals).toEqual({ tables: 1, missing: DIVERGED_ROWS, different: 0 });
  const table = report.tables.find((t) => t.schema === 'public' && t.table === 'lab_records');
  expect(table).toMatchObject({ primaryKey: ['id'], missing: DIVERGED_ROWS, different: 0, keysTruncated: false, sampleTruncated: false });
  expect(table?.missingKeys.map((k) => k[0])).toEqual(divergedIds);
  expect(table?.sample.map((r) => [r.key[0], r.status, r.diverged.payload])).toEqual(divergedIds.map((id, i) => [id, 'missing', `diverged ${i + 1}`]));
  return { status, copy, report };
}

describe('failback after a divergence', () => {
  beforeEach(async () => {
    await lab.lab.reset({ seedRows: 20 });
  });

  it('stops at discard-divergence with a copy and a reconciliation report; approved, it says what it discarded per database', { timeout: 600_000 }, async () => {
    const { divergedIds, westCounts } = await divergeAndEvacuate();
    // East's host comes back: its clusters start, but the evacuation's fence (a standby.signal) brings them up
    // read-only on timeline 1; orders still holds the diverged rows.
    await lab.lab.up({ temporal: false });
    await serviceFrozenAgain();
    expect(await inRecovery(db('orders').primary)).toBe(true);
    expect(await count(db('orders').primary, 'orders', "payload LIKE 'diverged %'")).toBe(DIVERGED_ROWS);

    const handle = await startFailback();
    const { copy } = await checkTheGate(handle, divergedIds);
    await decideGate(temporal.client, lab.loaded, { workflowId: handle.workflowId, gate: 'discard-divergence', as: 'bob', comment: 'rows reconciled by hand from the copy', decision: 'approve' });
    await approve(handle, 'switchover');
    const result = await handle.result();

    const orders = result.databases.find((d) => d.database === 'orders');
    const users = result.databases.find((d) => d.database === 'users');
    expect(orders?.rebuiltWith).toMatch(/^pg_(rewind|basebackup)$/);
    expect(orders?.discarded?.map((d) => [d.step, d.node.region, d.state])).toEqual([['rebuild-standbys', 'east', 'diverged'], ['rebuild-old-primaries', 'west', 'not-diverged']]);
    const discarded = orders?.discarded?.[0];
    expect(discarded?.discardedBytes).toBeGreaterThan(0);
    expect(discarded).toMatchObject({ rows: { missing: DIVERGED_ROWS, different: 0, tables: 1, unreconciledTables: 0 }, keptCopy: copy, report: { artifact: 'reconciliation-rebuild-standbys-orders' } });
    expect(discarded?.summary).toMatch(new RegExp(`^${discarded?.discardedBytes} bytes discarded \\(\\d+ commits past the fork [0-9A-F]+/[0-9A-F]+\\); ${DIVERGED_ROWS} rows missing and 0 different on west; kept in ${copy.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`));
    expect(orders?.discarded?.[1]).toMatchObject({ discardedBytes: 0, summary: expect.stringMatching(/^0 bytes lost \(measured: \d+ bytes of WAL past the fork/) });
    expect(users?.discarded?.map((d) => [d.step, d.state, d.discardedBytes])).toEqual([['rebuild-standbys', 'not-diverged', 0], ['rebuild-old-primaries', 'not-diverged', 0]]);
    expect(result.rpo.met).toBe(false);
    expect(result.rpo.measuredBytes).toBeGreaterThanOrEqual(discarded?.discardedBytes ?? Infinity);

    // Every node, counted: east (primary again) and west (its standby) hold the same rows, none of the diverged ones;
    // the set-aside copy still holds them.
    for (const name of DATABASES) {
      expect(await inRecovery(db(name).primary)).toBe(false);
      expect(await inRecovery(db(name).standby)).toBe(true);
      const east = await count(db(name).primary, name);
      expect(east).toBeGreaterThanOrEqual(westCounts[name] ?? Infinity);
      await expect.poll(() => count(db(name).standby, name), { timeout: 15_000 }).toBe(east);
    }
    expect(await count(db('orders').primary, 'orders', "payload LIKE 'diverged %'")).toBe(0);
    expect(await count(db('orders').standby, 'orders', "payload LIKE 'diverged %'")).toBe(0);
    expect(await withStoppedCluster(copy, (node) => ids(node, 'orders', "payload LIKE 'diverged %'"))).toEqual(divergedIds);

    // The final notification and the status say it too.
    const status = await handle.query(statusQuery);
    expect(status.state).toBe('completed');
    expect(status.gates.find((g) => g.id === 'discard-divergence')).toMatchObject({ state: 'approved', decidedBy: 'bob' });
    expect(status.rpo.measuredBytes).toBe(result.rpo.measuredBytes);
    const journal = readFileSync(lab.loaded.journalPath, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
    const final = journal.find((j) => j.workflowId === handle.workflowId && j.kind === 'final');
    expect(String(final?.body)).toMatch(/orders: east \d+ bytes discarded .* kept in .*; west 0 bytes lost \(measured/);
    expect(String(final?.body)).toMatch(/users: east 0 bytes lost \(measured/);

    // lifeboat report shows the reconciliation in every format.
    const md = await writeReport(temporal.client, lab.loaded, handle.workflowId, 'md');
    const text = readFileSync(md.file, 'utf8');
    expect(text).toContain('## Reconciliation: what rebuilt former primaries held that the current primaries did not');
    expect(text).toContain('(matches the evidence chain)');
    expect(text).toContain(`- Missing on current (${DIVERGED_ROWS}), keys: ${divergedIds.join(' ')}`);
    expect(text).toContain(`| ${divergedIds[0]} | missing |`);
    expect(text).toMatch(/- RPO: target 0s, \d+ bytes not replayed, seconds unknown \(MISSED\)/);
    const json = JSON.parse(readFileSync((await writeReport(temporal.client, lab.loaded, handle.workflowId, 'json')).file, 'utf8')) as RunReport;
    expect(json.reconciliations).toHaveLength(1);
    expect(json.reconciliations[0]).toMatchObject({ verified: true, report: { database: 'orders', totals: { missing: DIVERGED_ROWS } } });
    const html = readFileSync((await writeReport(temporal.client, lab.loaded, handle.workflowId, 'html')).file, 'utf8');
    expect(html).toContain(`Missing on current (${DIVERGED_ROWS})`);
  });

  it('rejected at discard-divergence: rolls back without having rebuilt anything', { timeout: 600_000 }, async () => {
    const { divergedIds, eastCounts, westCounts } = await divergeAndEvacuate();
    // East's host is back but its databases are not started: the failback finds the clusters as the crash left them.
    await lab.lab.up({ temporal: false, databases: false });
    await serviceFrozenAgain();
    const eastDir = lab.lab.clusters('orders').primary.dataDir;
    const before = controlData(eastDir);
    expect(before['Database cluster state']).toBe('in production');

    const handle = await startFailback();
    const { copy } = await checkTheGate(handle, divergedIds);
    await decideGate(temporal.client, lab.loaded, { workflowId: handle.workflowId, gate: 'discard-divergence', as: 'bob', comment: 'keep east as it is', decision: 'reject' });
    const err = await handle.result().then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(WorkflowFailedError);
    expect(((err as WorkflowFailedError).cause as ApplicationFailure).type).toBe(FailureType.GateRejected);
    const status = await handle.query(statusQuery);
    expect(status.state).toBe('rolled-back');
    expect(status.steps.filter((s) => s.id.startsWith('rebuild-')).map((s) => s.state)).toEqual(['pending', 'pending']);
    expect(status.steps.find((s) => s.id === 'measure-divergence')?.state).toBe('compensated');

    // Nothing rebuilt: east's clusters are still stopped, untouched since the crash (same control file), and still
    // fenced by the evacuation (its standby.signal and marker stay: a restart would come back read-only).
    for (const name of DATABASES) {
      const dir = lab.lab.clusters(name).primary.dataDir;
      expect(clusterPid({ dataDir: dir })).toBeUndefined();
      expect(existsSync(path.join(dir, 'standby.signal'))).toBe(true);
      expect(existsSync(path.join(dir, 'lifeboat-fence.json'))).toBe(true);
    }
    expect(controlData(eastDir)).toEqual(before);
    expect(existsSync(path.join(copy, 'PG_VERSION'))).toBe(true);

    // Every node, counted: west serves what it had; east and its copy still hold the diverged rows.
    for (const name of DATABASES) {
      expect(await inRecovery(db(name).standby)).toBe(false);
      expect(await count(db(name).standby, name)).toBe(westCounts[name]);
    }
    expect(await withStoppedCluster(copy, (node) => ids(node, 'orders', "payload LIKE 'diverged %'"))).toEqual(divergedIds);
    for (const name of DATABASES) {
      expect(await withStoppedCluster(lab.lab.clusters(name).primary.dataDir, (node) => count(node, name))).toBe(eastCounts[name]);
    }
  });
});
