/**
 * "An RPO that is measured, or said to be unknown", against the real Temporal dev
 * server and real PostgreSQL streaming replication. A standby is disconnected for
 * real: its primary_conninfo points at a closed port and is reloaded, so its WAL
 * receiver cannot reach the primary and pg_stat_replication has no row (replay_lag
 * NULL). Every row count is read back from the servers themselves.
 */
import { readFileSync } from 'node:fs';
import { WorkflowFailedError, type HistoryAndWorkflowId, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { Worker } from '@temporalio/worker';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { decideGate, startRun } from '../../cli/runs';
import { formatStatus } from '../../cli/format';
import { postgresDatabase } from '../../config/load';
import { dbPromotionWorkflowId } from '../../contract/db-promotion';
import { FailureType } from '../../contract/failures';
import { rpoMet } from '../../contract/rpo';
import { ranToEnd, statusQuery, type RunbookStatus } from '../../contract/runbook';
import { startCluster, stopCluster } from '../../lab/postgres';
import { freePort } from '../../lib/processes';
import { workflowsSourcePath } from '../../workers/worker';
import type { dbPromotion, regionalEvacuation } from '../../workflows';
import { createTestLab, type TestLab } from '../helpers/lab';
import { countRows, inRecovery, sql, tryWrite } from '../helpers/postgres';
import { gateWaiting, startTestTemporal, waitForStatus, type TestTemporal } from '../helpers/temporal';

const DATABASES = ['orders', 'users'];

let lab: TestLab;
let temporal: TestTemporal;
let counter = 0;
/** Histories of this file's runs (the patched paths: set-aside, streaming re-checks), replayed by the last test. */
const recorded: HistoryAndWorkflowId[] = [];

async function record(handle: WorkflowHandle): Promise<void> {
  recorded.push({ workflowId: handle.workflowId, history: await handle.fetchHistory() });
}

beforeAll(async () => {
  lab = await createTestLab('rpo', { databases: DATABASES, regions: true });
  temporal = await startTestTemporal(lab.loaded);
});

afterAll(async () => {
  await temporal?.close();
  await lab?.destroy();
});

const db = (name: string) => postgresDatabase(lab.loaded.config, name);

/** Points the standby's WAL receiver at a closed port (postgresql.auto.conf): once applied, it cannot reach its primary. */
async function pointStandbyAway(name: string): Promise<void> {
  const closed = await freePort();
  await sql(db(name).standby, 'postgres', `ALTER SYSTEM SET primary_conninfo = 'host=127.0.0.1 port=${closed} user=postgres application_name=lifeboat-test connect_timeout=2'`);
}

/** Disconnects a streaming standby for real: closed port, reload (the WAL receiver restarts with it). */
async function disconnectStandby(name: string): Promise<void> {
  await pointStandbyAway(name);
  await sql(db(name).standby, 'postgres', 'SELECT pg_reload_conf()');
  await waitDisconnected(name);
}

async function waitDisconnected(name: string): Promise<void> {
  const { standby, primary } = db(name);
  // Seen from both sides: no WAL sender on the primary, no streaming WAL receiver on the standby.
  await expect.poll(async () => (await sql<{ n: number }>(primary, 'postgres', 'SELECT count(*)::int AS n FROM pg_stat_replication'))[0]?.n, { timeout: 30_000 }).toBe(0);
  await expect.poll(async () => (await sql<{ s: string | null }>(standby, 'postgres', 'SELECT (SELECT status FROM pg_stat_wal_receiver LIMIT 1) AS s'))[0]?.s ?? 'none', { timeout: 30_000 }).not.toBe('streaming');
}

/** The user's 1,000 rows, written on the primary only. */
async function insertLostRows(name: string): Promise<void> {
  await sql(db(name).primary, name, "INSERT INTO lab_records (payload) SELECT 'lost ' || g FROM generate_series(1, 1000) g");
}

async function lostRows(node: { host: string; port: number; region: string }, name: string): Promise<number> {
  const [row] = await sql<{ n: number }>(node, name, "SELECT count(*)::int AS n FROM lab_records WHERE payload LIKE 'lost %'");
  return row?.n ?? -1;
}

/**
 * The rows on an old primary that the fence shut down: started again, its standby.signal brings it up as a
 * read-only standby (the fence holds), and the rows it kept are counted there.
 */
async function lostRowsOnFencedPrimary(name: string): Promise<number> {
  await startCluster(lab.lab.clusters(name).primary);
  expect(await inRecovery(db(name).primary)).toBe(true);
  return lostRows(db(name).primary, name);
}

/** The Markdown the Temporal UI shows as the run's current details. */
async function currentDetails(handle: WorkflowHandle): Promise<string> {
  const metadata = await handle.query<{ currentDetails?: string }>('__temporal_workflow_metadata');
  return metadata.currentDetails ?? '';
}

async function approve(handle: WorkflowHandle, gate: string, comment = 'go'): Promise<void> {
  await waitForStatus(handle, gateWaiting(gate), `gate ${gate}`, 120_000);
  await decideGate(temporal.client, lab.loaded, { workflowId: handle.workflowId, gate, as: 'bob', comment, decision: 'approve' });
}

async function failureOf(handle: WorkflowHandle): Promise<WorkflowFailedError> {
  const err = await handle.result().then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(WorkflowFailedError);
  return err as WorkflowFailedError;
}

function journal(): Array<Record<string, unknown>> {
  return readFileSync(lab.loaded.journalPath, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
}

async function startPromotion(mode: 'planned' | 'unplanned'): Promise<WorkflowHandle<typeof dbPromotion>> {
  const started = await startRun(temporal.client, lab.loaded, {
    runbook: 'db-promotion', params: ['database=orders', `mode=${mode}`], as: 'alice', id: `db-promotion:orders:rpo-${process.pid}-${++counter}`, drill: true,
  });
  return temporal.client.workflow.getHandle<typeof dbPromotion>(started.workflowId);
}

describe('RPO: measured, or said to be unknown', () => {
  beforeEach(async () => {
    await lab.lab.reset({ seedRows: 20 });
  });

  it("the user's run: a disconnected standby, 1,000 rows on the primary, unplanned: bytes > 0, seconds unknown, not met, and the loss is real", async () => {
    const { primary, standby } = db('orders');
    await disconnectStandby('orders');
    await insertLostRows('orders');

    const handle = await startPromotion('unplanned');
    const waiting = await waitForStatus(handle, gateWaiting('promote'), 'the promote gate');
    // What the approver sees before the point of no return.
    expect(waiting.rpo.measuredBytes).toBeGreaterThan(100_000);
    expect(waiting.rpo.measuredSeconds).toBeUndefined();
    expect(waiting.rpo.met).toBe(false);
    expect(waiting.rpo.verdict).toBe(`${waiting.rpo.measuredBytes} bytes not replayed, seconds unknown`);
    // The fence shut the reachable old primary down cleanly: the loss is exact, from its final LSN.
    expect(waiting.rpo.method).toMatch(/^unplanned: the old primary was shut down cleanly by the fence at .*: \d+ bytes of WAL it never received are lost; seconds unknown/);
    const details = await currentDetails(handle);
    expect(details).toContain(`RPO target 5s, ${waiting.rpo.measuredBytes} bytes not replayed, seconds unknown (MISSED)`);
    expect(details).not.toMatch(/\(met\)/);
    expect(formatStatus(waiting)).toContain(`RPO: target 5s, ${waiting.rpo.measuredBytes} bytes not replayed, seconds unknown (MISSED): ${waiting.rpo.verdict}`);

    await approve(handle, 'promote', 'accepting the loss: east is gone');
    const result = await handle.result();
    expect(result.rpo.met).toBe(false);
    expect(result.rpo.measuredSeconds).toBeUndefined();
    expect(result.rpo.measuredBytes).toBe(waiting.rpo.measuredBytes);
    expect(result.rpo.verdict).toBe(waiting.rpo.verdict);
    const final = await handle.query(statusQuery);
    expect(final.state).toBe('completed');
    expect(final.rpo).toMatchObject({ met: false, measuredBytes: waiting.rpo.measuredBytes });

    // The loss the report admits, counted on both nodes: west was promoted without the 1,000 rows.
    expect(await inRecovery(standby)).toBe(false);
    expect(await lostRowsOnFencedPrimary('orders')).toBe(1000);
    expect(await lostRows(standby, 'orders')).toBe(0);
    const final_ = journal().find((n) => n.workflowId === handle.workflowId && n.kind === 'final');
    expect(String(final_?.body)).toContain('seconds unknown (MISSED)');
    await record(handle);
  });

  it('planned: the fence shuts the primary down, the standby replays its shutdown checkpoint; losing the connection afterwards loses nothing', async () => {
    const { primary, standby } = db('orders');
    const before = await countRows(primary, 'orders');
    const handle = await startPromotion('planned');
    const waiting = await waitForStatus(handle, gateWaiting('promote'), 'the promote gate');
    expect(waiting.rpo).toMatchObject({ measuredBytes: 0, measuredSeconds: 0, met: true });
    // Fenced by a clean shutdown: no client reaches the old primary.
    expect(await tryWrite(primary, 'orders', 'fenced?')).toMatch(/ECONNREFUSED/);

    // A standby of a shut-down primary streams nothing more; it already holds every byte the primary wrote.
    await pointStandbyAway('orders');
    await sql(standby, 'postgres', 'SELECT pg_reload_conf()');
    await decideGate(temporal.client, lab.loaded, { workflowId: handle.workflowId, gate: 'promote', as: 'bob', decision: 'approve' });
    const result = await handle.result();
    expect(result.rpo).toMatchObject({ measuredBytes: 0, met: true });
    expect(result.fence).toMatchObject({ fenced: true });
    // Every row the old primary had is on the new one.
    expect(await inRecovery(standby)).toBe(false);
    expect(await countRows(standby, 'orders')).toBe(before);
    await record(handle);
  });

  it("planned: a standby that cannot replay the fenced primary's final LSN is refused at catch-up and the run rolls back", async () => {
    const { primary, standby } = db('orders');
    // Replay paused: the standby cannot reach the shutdown checkpoint within catchUpTimeoutSeconds.
    await sql(standby, 'postgres', 'SELECT pg_wal_replay_pause()');
    const handle = await startPromotion('planned');
    const failure = await failureOf(handle);
    // The catch-up is what refuses it (ReplayBehind, or the step's own failure wrapping the poll's last answer).
    expect([FailureType.ReplayBehind, FailureType.StepFailed]).toContain((failure.cause as ApplicationFailure).type);
    const status = await handle.query(statusQuery);
    expect(status.steps.find((s) => s.id === 'catch-up')?.state).toBe('failed');
    expect(status.state).toBe('rolled-back');
    expect(status.gates[0]?.state).toBe('pending');
    expect(status.steps.find((s) => s.id === 'fence-primary')?.state).toBe('compensated');
    await sql(standby, 'postgres', 'SELECT pg_wal_replay_resume()');
    // The undo started the old primary again (the standby is still in recovery): it takes writes.
    expect(await tryWrite(primary, 'orders', 'writable again')).toBeUndefined();
    expect(await inRecovery(standby)).toBe(true);
    await record(handle);
  });

  it('evacuation: the promote-databases gate shows each database’s lag and streaming state; a pre-approved child beyond its target stops at its own gate for a person', async () => {
    const orders = db('orders');
    await disconnectStandby('orders');
    await insertLostRows('orders');

    const started = await startRun(temporal.client, lab.loaded, {
      runbook: 'regional-evacuation', params: ['region=east', 'mode=unplanned'], as: 'alice', id: `regional-evacuation:east:rpo-${process.pid}-${++counter}`, drill: true,
    });
    const handle = temporal.client.workflow.getHandle<typeof regionalEvacuation>(started.workflowId);
    await approve(handle, 'drain-traffic');
    const atGate = await waitForStatus(handle, gateWaiting('promote-databases'), 'gate promote-databases', 120_000);

    // Before the point of no return, per database: read from the servers, judged by the one rule.
    const rows = Object.fromEntries((atGate.replication ?? []).map((r) => [r.database, r]));
    expect(Object.keys(rows).sort()).toEqual(['orders', 'users']);
    expect(rows.orders).toMatchObject({ standbyRegion: 'west', standbyReachable: true, streaming: false, primaryReachable: true, targetSeconds: 5, met: false });
    expect(rows.orders?.measuredBytes).toBeGreaterThan(100_000);
    expect(rows.orders?.measuredSeconds).toBeUndefined();
    expect(rows.orders?.verdict).toBe(`${rows.orders?.measuredBytes} bytes not replayed, seconds unknown`);
    expect(rows.users).toMatchObject({ standbyRegion: 'west', streaming: true, primaryReachable: true, targetSeconds: 5 });
    expect(rows.users?.measuredBytes).toBeDefined();
    expect(rows.users?.met).toBe(rpoMet(5, rows.users ?? {}));
    const opened = atGate.events.filter((e) => e.kind === 'gate-opened' && e.gate === 'promote-databases').at(-1);
    expect(opened?.detail).toContain(`orders: standby west NOT streaming, ${rows.orders?.measuredBytes} bytes not replayed, seconds unknown, MISSED (target 5s)`);
    expect(opened?.detail).toContain('users: standby west streaming');
    const details = await currentDetails(handle);
    expect(details).toContain('| database | standby | streaming | WAL not replayed | lag | RPO |');
    expect(details).toContain(`| orders | west | NOT streaming | ${rows.orders?.measuredBytes} bytes | seconds unknown | MISSED (target 5s): ${rows.orders?.verdict} |`);
    expect(details).toMatch(/\| users \| west \| streaming \| \d+ bytes \|/);

    // The parent's approval reaches the children; orders' RPO at promotion is still unknown in seconds.
    await decideGate(temporal.client, lab.loaded, { workflowId: handle.workflowId, gate: 'promote-databases', as: 'bob', comment: 'evacuate', decision: 'approve' });
    const child = temporal.client.workflow.getHandle<typeof dbPromotion>(dbPromotionWorkflowId('orders'));
    const stopped: RunbookStatus = await waitForStatus(child, gateWaiting('promote'), 'the orders child at its own gate', 120_000);
    expect(stopped.rpo).toMatchObject({ met: false, targetSeconds: 5 });
    expect(stopped.rpo.measuredSeconds).toBeUndefined();
    const setAside = stopped.events.find((e) => e.kind === 'pre-approval-set-aside');
    expect(setAside).toMatchObject({ by: 'bob', gate: 'promote' });
    expect(setAside?.detail).toMatch(/^gate promote: the approval by bob at the parent run's gate does not cover this: RPO at promotion time is target 5s, \d+ bytes not replayed, seconds unknown \(MISSED\): \d+ bytes not replayed, seconds unknown; a person must approve here$/);
    expect(stopped.gates[0]).toMatchObject({ state: 'waiting', approvers: ['bob', 'carol'] });
    // It waits for a person: not promoted, and the on-call is paged at once.
    expect(await inRecovery(orders.standby)).toBe(true);
    await expect.poll(() => journal().some((n) => n.workflowId === child.workflowId && n.kind === 'escalation' && String(n.subject).includes('gate promote needs a person')), { timeout: 30_000 }).toBe(true);
    // users was within its target: the parent's approval was enough there.
    await expect.poll(async () => (await handle.query(statusQuery)).children.find((c) => c.target === 'users')?.state, { timeout: 120_000 }).toBe('completed');
    const parent = await handle.query(statusQuery);
    expect(parent.children.find((c) => c.target === 'orders')?.state).toBe('running');
    expect(parent.state).toBe('running');

    // A person decides at the child's gate; the evacuation finishes and reports the RPO as missed.
    await decideGate(temporal.client, lab.loaded, { workflowId: child.workflowId, gate: 'promote', as: 'carol', comment: 'east is gone: accept the loss', decision: 'approve' });
    const result = ranToEnd(await handle.result());
    expect(result.databases.map((d) => [d.database, d.state])).toEqual([['orders', 'promoted'], ['users', 'promoted']]);
    expect(result.rpo.met).toBe(false);
    expect(result.rpo.measuredSeconds).toBeUndefined();
    expect(result.rpo.measuredBytes).toBeGreaterThan(100_000);
    const childResult = result.databases.find((d) => d.database === 'orders')?.result;
    expect(childResult?.rpo).toMatchObject({ met: false });
    expect(childResult?.rpo.measuredSeconds).toBeUndefined();
    const childStatus = await child.query(statusQuery);
    expect(childStatus.gates[0]).toMatchObject({ state: 'approved', decidedBy: 'carol' });
    expect((await handle.query(statusQuery)).rpo.met).toBe(false);

    // The loss, counted on both nodes.
    expect(await inRecovery(orders.standby)).toBe(false);
    expect(await lostRowsOnFencedPrimary('orders')).toBe(1000);
    expect(await lostRows(orders.standby, 'orders')).toBe(0);
    await record(handle);
    await record(child);
  });
});

describe('replay', () => {
  it("replays this file's histories deterministically", async () => {
    expect(recorded.length).toBe(5);
    const results = [];
    for await (const result of Worker.runReplayHistories({ workflowsPath: workflowsSourcePath(), replayName: 'rpo-replay' }, recorded)) results.push(result);
    expect(results).toHaveLength(recorded.length);
    expect(results.filter((r) => r.error).map((r) => `${r.workflowId}: ${r.error?.message}`)).toEqual([]);
  });
});
