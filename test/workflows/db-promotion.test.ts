/**
 * db-promotion against the real Temporal dev server and real PostgreSQL
 * streaming replication: every assertion about the database is read back from
 * the servers themselves.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import type { HistoryAndWorkflowId } from '@temporalio/client';
import { Worker } from '@temporalio/worker';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { cancelRun, decideGate, resolveRun, startRun } from '../../cli/runs';
import { postgresDatabase, type LoadedConfig } from '../../config/load';
import { FailureType } from '../../contract/failures';
import { approveSignal, decideUpdate, resolveSignal, statusQuery, type RunbookStatus } from '../../contract/runbook';
import type { dbPromotion } from '../../workflows';
import { workflowsSourcePath } from '../../workers/worker';
import { createTestLab, type TestLab } from '../helpers/lab';
import { waitForStreaming } from '../../lab/postgres';
import { inRecovery, sql, timeline, tryWrite, countRows } from '../helpers/postgres';
import { gateWaiting, startTestTemporal, waitForStatus, type TestTemporal } from '../helpers/temporal';

const HISTORIES = path.join(__dirname, '..', 'histories');

let lab: TestLab;
let temporal: TestTemporal;
let counter = 0;

beforeAll(async () => {
  lab = await createTestLab('promotion');
  temporal = await startTestTemporal(lab.loaded);
});

afterAll(async () => {
  await temporal?.close();
  await lab?.destroy();
});

function orders(loaded: LoadedConfig = lab.loaded) {
  return postgresDatabase(loaded.config, 'orders');
}

/** Starts a planned promotion as alice, with a unique workflow id. */
async function start(extra: { as?: string; mode?: string; detectedAt?: string } = {}): Promise<WorkflowHandle<typeof dbPromotion>> {
  const started = await startRun(temporal.client, lab.loaded, {
    runbook: 'db-promotion',
    params: ['database=orders', `mode=${extra.mode ?? 'planned'}`],
    as: extra.as ?? 'alice',
    id: `db-promotion:orders:test-${process.pid}-${++counter}`,
    detectedAt: extra.detectedAt,
    drill: true,
  });
  return temporal.client.workflow.getHandle<typeof dbPromotion>(started.workflowId);
}

async function failureOf(handle: WorkflowHandle): Promise<WorkflowFailedError> {
  const err = await handle.result().then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(WorkflowFailedError);
  return err as WorkflowFailedError;
}

function journal(): Array<Record<string, unknown>> {
  if (!existsSync(lab.loaded.journalPath)) return [];
  return readFileSync(lab.loaded.journalPath, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

/** Histories of the runs above, replayed by the last test. */
const recorded: HistoryAndWorkflowId[] = [];

describe('db-promotion', () => {
  beforeEach(async () => {
    await lab.lab.reset({ seedRows: 50 });
  });

  it('promotes the standby after a second person approves: standby writable, old primary fenced, RPO 0', async () => {
    const db = orders();
    const before = await countRows(db.primary, 'orders');
    const handle = await start();
    const waiting = await waitForStatus(handle, gateWaiting('promote'), 'the promote gate');
    // The approver sees a fenced primary and a caught-up standby before the point of no return.
    expect(waiting.steps.map((s) => [s.id, s.state])).toEqual([
      ['preflight', 'done'],
      ['fence-primary', 'done'],
      ['catch-up', 'done'],
      ['promote', 'pending'],
      ['verify-write', 'pending'],
      ['follow-new-primary', 'pending'],
      ['record-evidence', 'pending'],
    ]);
    expect(waiting.rpo).toMatchObject({ measuredBytes: 0, measuredSeconds: 0, met: true });
    // Fenced by a clean shutdown on its host: no client reaches it at all.
    expect(await tryWrite(db.primary, 'orders', 'during fence')).toMatch(/ECONNREFUSED/);

    const decided = await decideGate(temporal.client, lab.loaded, { workflowId: handle.workflowId, gate: 'promote', as: 'bob', comment: 'go', decision: 'approve' });
    expect(decided).toMatchObject({ gate: 'promote', state: 'approved', decidedBy: 'bob' });

    const result = await handle.result();
    expect(result).toMatchObject({ database: 'orders', mode: 'planned', alreadyPromoted: false, timeline: 2 });
    expect(result.newPrimary).toEqual({ region: 'west', host: db.standby.host, port: db.standby.port });
    expect(result.rpo).toMatchObject({ measuredBytes: 0, met: true });
    expect(result.rto.measuredSeconds).toBeGreaterThan(0);
    expect(result.rto.met).toBe(true);

    // The world, read back: west is a writable primary on timeline 2 with every row east had.
    expect(await inRecovery(db.standby)).toBe(false);
    expect(await timeline(db.standby)).toBe(2);
    expect(await tryWrite(db.standby, 'orders', 'after promotion')).toBeUndefined();
    expect(await countRows(db.standby, 'orders')).toBe(before + 1);
    const checks = await sql<{ run_id: string }>(db.standby, 'orders', 'SELECT run_id FROM lifeboat.write_checks');
    expect(checks.map((r) => r.run_id)).toEqual([handle.workflowId]);

    const status = await handle.query(statusQuery);
    expect(status.state).toBe('completed');
    expect(status.pointOfNoReturnPassed).toBe(true);
    expect(status.rollbackAvailable).toBe(false);
    expect(status.steps.every((s) => s.state === 'done')).toBe(true);
    expect(status.gates[0]).toMatchObject({ id: 'promote', state: 'approved', decidedBy: 'bob', comment: 'go' });

    const description = await handle.describe();
    expect(description.searchAttributes.LifeboatRunbook).toEqual(['db-promotion']);
    expect(description.searchAttributes.LifeboatPhase).toEqual(['completed']);
    expect(description.searchAttributes.LifeboatDrill).toEqual([true]);
    expect(description.searchAttributes.LifeboatRtoBreached).toEqual([false]);

    const history = await handle.fetchHistory();
    recorded.push({ workflowId: handle.workflowId, history });
    if (process.env.LIFEBOAT_RECORD_HISTORIES === '1') {
      writeFileSync(path.join(HISTORIES, 'db-promotion-planned-approved.json'), historyToJSON(history));
    }
  });

  it('rejection at the gate unfences the old primary and leaves the standby in recovery', async () => {
    const db = orders();
    const handle = await start();
    await waitForStatus(handle, gateWaiting('promote'), 'the promote gate');
    expect(await tryWrite(db.primary, 'orders', 'fenced?')).toMatch(/ECONNREFUSED/);

    await decideGate(temporal.client, lab.loaded, { workflowId: handle.workflowId, gate: 'promote', as: 'bob', comment: 'lag too high for my taste', decision: 'reject' });
    const failure = await failureOf(handle);
    expect(failure.cause).toBeInstanceOf(ApplicationFailure);
    expect((failure.cause as ApplicationFailure).type).toBe(FailureType.GateRejected);
    expect(failure.cause?.message).toContain('rejected by bob: lag too high for my taste');

    expect(await tryWrite(db.primary, 'orders', 'writable again')).toBeUndefined();
    expect(await inRecovery(db.standby)).toBe(true);
    const status = await handle.query(statusQuery);
    expect(status.state).toBe('rolled-back');
    expect(status.steps.find((s) => s.id === 'fence-primary')?.state).toBe('compensated');
    expect(status.steps.find((s) => s.id === 'promote')?.state).toBe('pending');
    expect(status.gates[0]).toMatchObject({ state: 'rejected', decidedBy: 'bob' });

    recorded.push({ workflowId: handle.workflowId, history: await handle.fetchHistory() });
    if (process.env.LIFEBOAT_RECORD_HISTORIES === '1') {
      writeFileSync(path.join(HISTORIES, 'db-promotion-rejected.json'), historyToJSON(await handle.fetchHistory()));
    }
  });

  it('a failure after fencing (standby cannot catch up) unfences the old primary and fails with the cause', async () => {
    const db = orders();
    // The rejection before restarted the old primary: the standby streams from it again within seconds.
    await waitForStreaming(lab.lab.clusters('orders').standby);
    // Really stop replay on the standby, then write on the primary: the standby cannot reach the final LSN.
    await sql(db.standby, 'postgres', 'SELECT pg_wal_replay_pause()');
    expect(await tryWrite(db.primary, 'orders', 'not yet replayed')).toBeUndefined();

    const slow = await createTestLabConfigVariant({ catchUpTimeoutSeconds: 3 });
    const started = await startRun(temporal.client, slow, {
      runbook: 'db-promotion', params: ['database=orders'], as: 'alice', id: `db-promotion:orders:test-${process.pid}-${++counter}`, drill: true,
    });
    const handle = temporal.client.workflow.getHandle(started.workflowId);
    const failure = await failureOf(handle);
    // The catch-up polls until catchUpTimeoutSeconds, then says which LSN the standby did not reach.
    expect((failure.cause as ApplicationFailure).type).toBe(FailureType.ReplayBehind);
    expect(failure.cause?.message).toMatch(/^standby of orders did not replay the fenced primary's final LSN [0-9A-F]+\/[0-9A-F]+ within catchUpTimeoutSeconds \(3s\): /);

    expect(await tryWrite(db.primary, 'orders', 'writable again')).toBeUndefined();
    const status = await handle.query(statusQuery);
    expect(status.state).toBe('rolled-back');
    expect(status.steps.map((s) => [s.id, s.state])).toEqual([
      ['preflight', 'done'],
      ['fence-primary', 'compensated'],
      ['catch-up', 'failed'],
      ['promote', 'pending'],
      ['verify-write', 'pending'],
      ['follow-new-primary', 'pending'],
      ['record-evidence', 'pending'],
    ]);
    expect(status.error?.type).toBe(FailureType.ReplayBehind);
    await sql(db.standby, 'postgres', 'SELECT pg_wal_replay_resume()');
    expect(await inRecovery(db.standby)).toBe(true);
  });

  it('refuses self-approval, unknown people and non-approvers with the reason, and changes nothing', async () => {
    const handle = await start({ as: 'carol' }); // carol is commander and approver
    const before = await waitForStatus(handle, gateWaiting('promote'), 'the promote gate');

    const decide = (approver: string) =>
      handle.executeUpdate(decideUpdate, { args: [{ gate: 'promote', approver, decision: 'approve' as const }] }).then(
        () => 'accepted',
        (err: Error) => (err.cause as Error | undefined)?.message ?? err.message,
      );
    expect(await decide('carol')).toBe("'carol' started this run and may not decide its gates (separation of duties)");
    expect(await decide('mallory')).toBe("'mallory' is not a configured person: add them under people: in the config");
    expect(await decide('dave')).toBe("'dave' does not have the approver role (roles: viewer)");
    const wrongGate = await handle.executeUpdate(decideUpdate, { args: [{ gate: 'nope', approver: 'bob', decision: 'approve' }] }).catch((e: Error) => (e.cause as Error).message);
    expect(wrongGate).toBe("unknown gate 'nope': this runbook's gates are promote");
    // Each refused Update is itself recorded in the run, with who and which rule.
    const recorded = (await handle.query(statusQuery)).events.filter((e) => e.kind === 'decision-refused');
    expect(recorded.map((e) => e.by)).toEqual(['carol', 'mallory', 'dave', 'bob']);
    expect(recorded[2]?.detail).toBe("approve refused: 'dave' does not have the approver role (roles: viewer)");

    // The CLI path says the same, before it reaches the run.
    await expect(decideGate(temporal.client, lab.loaded, { workflowId: handle.workflowId, gate: 'promote', as: 'carol', decision: 'approve' })).rejects.toThrow(
      'refused: \'carol\' started this run and may not decide its gates (separation of duties)',
    );
    await expect(decideGate(temporal.client, lab.loaded, { workflowId: handle.workflowId, gate: 'promote', as: 'dave', decision: 'approve' })).rejects.toThrow(
      "'dave' may not approve a gate: needs the approver role (has viewer)",
    );

    // A raw signal cannot bypass the rule: it is refused and recorded.
    await handle.signal(approveSignal, { gate: 'promote', approver: 'carol' });
    const after = await waitForStatus(handle, (s) => s.events.filter((e) => e.kind === 'decision-refused').length === 6, 'the refusal to be recorded');
    expect(after.gates).toEqual(before.gates);
    expect(after.state).toBe('waiting-approval');
    const refusal = after.events.filter((e) => e.kind === 'decision-refused').at(-1);
    expect(refusal).toMatchObject({ by: 'carol', gate: 'promote' });
    expect(refusal?.detail).toContain('separation of duties');

    // A late approval, once the run has ended, gets a clear answer (a duplicate one is covered in decisions.test.ts).
    await decideGate(temporal.client, lab.loaded, { workflowId: handle.workflowId, gate: 'promote', as: 'bob', decision: 'approve' });
    await handle.result();
    await expect(decideGate(temporal.client, lab.loaded, { workflowId: handle.workflowId, gate: 'promote', as: 'bob', decision: 'approve' })).rejects.toThrow(
      `run '${handle.workflowId}' has already ended (completed): nothing to approve`,
    );
  });

  it('a two-person gate needs two distinct approvers; the second approval opens it', async () => {
    const strict = await createTestLabConfigVariant({ gates: { promote: { escalateAfterSeconds: 120, timeoutSeconds: 300, twoPerson: true } } });
    const started = await startRun(temporal.client, strict, {
      runbook: 'db-promotion', params: ['database=orders'], as: 'alice', id: `db-promotion:orders:test-${process.pid}-${++counter}`, drill: true,
    });
    const handle = temporal.client.workflow.getHandle<typeof dbPromotion>(started.workflowId);
    await waitForStatus(handle, gateWaiting('promote'), 'the promote gate');
    const first = await decideGate(temporal.client, strict, { workflowId: handle.workflowId, gate: 'promote', as: 'bob', comment: 'lag 0', decision: 'approve' });
    expect(first.state).toBe('waiting');
    const half = await handle.query(statusQuery);
    expect(half.gates[0]).toMatchObject({ state: 'waiting', required: 2, approvals: [{ by: 'bob', comment: 'lag 0' }] });
    await expect(decideGate(temporal.client, strict, { workflowId: handle.workflowId, gate: 'promote', as: 'bob', decision: 'approve' })).rejects.toThrow(
      "refused: 'bob' already approved gate 'promote': a two-person gate needs a second, different approver",
    );
    const second = await decideGate(temporal.client, strict, { workflowId: handle.workflowId, gate: 'promote', as: 'carol', decision: 'approve' });
    expect(second).toMatchObject({ state: 'approved', decidedBy: 'bob + carol' });
    expect((await handle.result()).timeline).toBe(2);
  });

  it('a gate left waiting escalates, then times out and rolls back', async () => {
    const quick = await createTestLabConfigVariant({ gates: { promote: { escalateAfterSeconds: 1, timeoutSeconds: 3 } } });
    const started = await startRun(temporal.client, quick, {
      runbook: 'db-promotion', params: ['database=orders'], as: 'alice', id: `db-promotion:orders:test-${process.pid}-${++counter}`, drill: true,
    });
    const handle = temporal.client.workflow.getHandle(started.workflowId);
    const failure = await failureOf(handle);
    expect((failure.cause as ApplicationFailure).type).toBe(FailureType.GateRejected);
    expect(failure.cause?.message).toBe('gate promote timed out');

    const status = await handle.query(statusQuery);
    expect(status.gates[0]?.state).toBe('timed-out');
    expect(status.gates[0]?.escalatedAt).toBeDefined();
    expect(Date.parse(status.gates[0]?.escalatedAt ?? '') - Date.parse(status.gates[0]?.openedAt ?? '')).toBeGreaterThanOrEqual(1000);
    expect(status.state).toBe('rolled-back');
    expect(await tryWrite(orders().primary, 'orders', 'writable again')).toBeUndefined();
    const escalations = journal().filter((n) => n.workflowId === handle.workflowId && n.kind === 'escalation');
    expect(escalations).toHaveLength(1);
    expect(escalations[0]?.subject).toBe('[db-promotion drill] gate promote still waiting');
  });

  it('an RTO breach escalates and shows in status and search attributes; policy continue lets the run finish', async () => {
    const tight = await createTestLabConfigVariant({ rto: { budgetSeconds: 2, onBreach: 'continue' } });
    const started = await startRun(temporal.client, tight, {
      runbook: 'db-promotion', params: ['database=orders'], as: 'alice', id: `db-promotion:orders:test-${process.pid}-${++counter}`, drill: true,
    });
    const handle = temporal.client.workflow.getHandle<typeof dbPromotion>(started.workflowId);
    const breached = await waitForStatus(handle, (s) => s.rto.breached && s.state === 'waiting-approval', 'the RTO breach', 30_000);
    expect(breached.state).toBe('waiting-approval');
    expect(breached.events.some((e) => e.kind === 'rto-breach' && e.detail.includes('policy continue'))).toBe(true);

    const query = `WorkflowId = '${handle.workflowId}' AND LifeboatRtoBreached = true`;
    const found = await waitForVisibility(query);
    expect(found).toEqual([handle.workflowId]);
    await expect.poll(() => journal().some((n) => n.workflowId === handle.workflowId && n.kind === 'rto-breach'), { timeout: 15_000 }).toBe(true);

    await decideGate(temporal.client, tight, { workflowId: handle.workflowId, gate: 'promote', as: 'bob', decision: 'approve' });
    const result = await handle.result();
    expect(result.rto.met).toBe(false);
    expect(result.rto.measuredSeconds).toBeGreaterThan(2);
  });

  it('an RTO breach with policy rollback rolls the run back before the point of no return', async () => {
    const tight = await createTestLabConfigVariant({ rto: { budgetSeconds: 6, onBreach: 'rollback' } });
    const started = await startRun(temporal.client, tight, {
      runbook: 'db-promotion', params: ['database=orders'], as: 'alice', id: `db-promotion:orders:test-${process.pid}-${++counter}`, drill: true,
    });
    const handle = temporal.client.workflow.getHandle(started.workflowId);
    const failure = await failureOf(handle);
    expect((failure.cause as ApplicationFailure).type).toBe(FailureType.RtoBudgetExceeded);
    const status = await handle.query(statusQuery);
    expect(status.state).toBe('rolled-back');
    // The breach lands before the point of no return: at the gate (the usual case) or, on a loaded machine,
    // while the fence runs; either way nothing was promoted and whatever was fenced is undone.
    expect(status.steps.find((s) => s.id === 'promote')?.state).toBe('pending');
    expect(['cancelled', 'pending']).toContain(status.gates[0]?.state);
    const fence = status.steps.find((s) => s.id === 'fence-primary')?.state;
    expect(status.gates[0]?.state === 'cancelled' ? fence === 'compensated' : fence !== 'done').toBe(true);
    expect(await inRecovery(orders().standby)).toBe(true);
    expect(await tryWrite(orders().primary, 'orders', 'writable again')).toBeUndefined();
  });

  it('cancel by a commander runs the undos; an approver may not cancel', async () => {
    const handle = await start();
    await waitForStatus(handle, gateWaiting('promote'), 'the promote gate');
    await expect(cancelRun(temporal.client, lab.loaded, handle.workflowId, 'bob', 'no')).rejects.toThrow("'bob' may not cancel a run: needs the commander or admin role (has approver)");
    await cancelRun(temporal.client, lab.loaded, handle.workflowId, 'alice', 'false alarm: east recovered');
    const failure = await failureOf(handle);
    expect(failure.cause).toBeInstanceOf(CancelledFailure);
    const status: RunbookStatus = await handle.query(statusQuery);
    expect(status.state).toBe('rolled-back');
    expect(status.events.find((e) => e.kind === 'cancel-requested')).toMatchObject({ by: 'alice', detail: 'cancel requested: false alarm: east recovered' });
    expect(status.steps.find((s) => s.id === 'fence-primary')?.state).toBe('compensated');
    expect(await tryWrite(orders().primary, 'orders', 'writable again')).toBeUndefined();
    expect(await inRecovery(orders().standby)).toBe(true);
  });

  it('an undo that keeps failing leaves the run in needs-attention until a person resolves it', async () => {
    const db = orders();
    const patient = await createTestLabConfigVariant({ compensationAttempts: 2 });
    const started = await startRun(temporal.client, patient, {
      runbook: 'db-promotion', params: ['database=orders'], as: 'alice', id: `db-promotion:orders:test-${process.pid}-${++counter}`, drill: true,
    });
    const handle = temporal.client.workflow.getHandle(started.workflowId);
    await waitForStatus(handle, gateWaiting('promote'), 'the promote gate');
    // Someone promotes the standby by hand while the run waits: unfencing east now would make two writable primaries.
    await sql(db.standby, 'postgres', 'SELECT pg_promote(true, 60)');
    await decideGate(temporal.client, patient, { workflowId: handle.workflowId, gate: 'promote', as: 'bob', comment: 'abort', decision: 'reject' });

    const stuck = await waitForStatus(handle, (s) => s.state === 'needs-attention', 'needs-attention', 60_000);
    expect(stuck.phase).toBe('needs-attention: undo fence-primary');
    expect(stuck.events.find((e) => e.kind === 'compensation-failed')?.detail).toMatch(/^undo of step fence-primary failed: refusing to unfence orders east .* has left recovery \(it is a primary\); re-opening writes would make two writable primaries/);
    // The undo refused before touching anything: east is still down, west is the only primary.
    expect(await tryWrite(db.primary, 'orders', 'split brain?')).toMatch(/ECONNREFUSED/);
    // The page is delivered in the background: wait for it to land in the journal.
    await expect.poll(() => journal().some((n) => n.workflowId === handle.workflowId && n.kind === 'needs-attention' && n.severity === 'critical'), { timeout: 15_000 }).toBe(true);

    // Refused: a resolution by someone who may not, and one with no comment; the run stays put.
    await handle.signal(resolveSignal, { by: 'bob', comment: 'x', action: 'retry' });
    await handle.signal(resolveSignal, { by: 'alice', comment: ' ', action: 'retry' });
    const refused = await waitForStatus(handle, (s) => s.events.filter((e) => e.kind === 'decision-refused').length === 2, 'two refusals');
    expect(refused.state).toBe('needs-attention');

    // A retry meets the same check and is refused again; the commander then records what was done by hand.
    const after = await resolveRun(temporal.client, patient, handle.workflowId, { as: 'alice', action: 'retry', comment: 'try again' });
    expect(after.events.some((e) => e.kind === 'resolved' && e.by === 'alice')).toBe(true);
    await waitForStatus(handle, (s) => s.state === 'needs-attention' && s.events.filter((e) => e.kind === 'compensation-failed').length >= 2, 'refused again');
    await resolveRun(temporal.client, patient, handle.workflowId, { as: 'alice', action: 'done-by-hand', comment: 'west stays primary; east left fenced for a rebuild' });
    const failure = await failureOf(handle);
    expect((failure.cause as ApplicationFailure).type).toBe(FailureType.GateRejected);
    const final = await handle.query(statusQuery);
    expect(final.state).toBe('rolled-back');
    expect(final.steps.find((s) => s.id === 'fence-primary')?.note).toMatch(/^undone by hand by alice/);
    expect(await tryWrite(db.primary, 'orders', 'still fenced')).toMatch(/ECONNREFUSED/);
    await lab.lab.reset();
  });
});

describe('lifeboat runs', () => {
  it('lists this file\'s runs from visibility, filtered by runbook, state and drill', async () => {
    const { listRuns, runsQuery } = await import('../../cli/runs-list');
    await expect.poll(async () => (await listRuns(temporal.client, { runbook: 'db-promotion', drill: true, since: '1h' })).length, { timeout: 20_000 }).toBeGreaterThanOrEqual(8);
    const failed = await listRuns(temporal.client, { runbook: 'db-promotion', state: 'failed' });
    expect(failed.length).toBeGreaterThanOrEqual(3);
    expect(failed.every((r) => r.status === 'failed' && r.runbook === 'db-promotion' && r.drill)).toBe(true);
    const completed = await listRuns(temporal.client, { state: 'completed' });
    expect(completed.some((r) => r.phase === 'completed')).toBe(true);
    expect(() => runsQuery({ state: 'exploded' })).toThrow('--state must be one of running, completed, failed, canceled, cancelled, terminated, timed-out, not \'exploded\'');
    expect(() => runsQuery({ runbook: "x' OR 1=1" })).toThrow(/^--runbook must be a runbook name/);
    expect(() => runsQuery({ since: 'last week' })).toThrow("--since must look like 7d, 12h or 30m, not 'last week'");
  });
});

describe('replay', () => {
  it('replays the recorded histories of this file and the committed ones deterministically', async () => {
    const { historyFromJSON } = await import('@temporalio/common/lib/proto-utils');
    const committed = ['db-promotion-planned-approved.json', 'db-promotion-rejected.json']
      .map((file) => path.join(HISTORIES, file))
      .filter((file) => existsSync(file))
      .map((file) => ({ workflowId: path.basename(file, '.json'), history: historyFromJSON(JSON.parse(readFileSync(file, 'utf8'))) }));
    expect(committed).toHaveLength(2);
    expect(recorded.length).toBeGreaterThanOrEqual(2);
    const results = [];
    for await (const result of Worker.runReplayHistories(
      { workflowsPath: workflowsSourcePath(), replayName: 'db-promotion-replay' },
      [...committed, ...recorded],
    )) {
      results.push(result);
    }
    expect(results).toHaveLength(committed.length + recorded.length);
    expect(results.filter((r) => r.error).map((r) => `${r.workflowId}: ${r.error?.message}`)).toEqual([]);
  });
});

/** The same lab with a changed db-promotion policy (a config file of its own). */
async function createTestLabConfigVariant(dbPromotion: Record<string, unknown>): Promise<LoadedConfig> {
  const { parse, stringify } = await import('yaml');
  const { loadConfig } = await import('../../config/load');
  const base = parse(readFileSync(lab.configFile, 'utf8')) as { runbooks: { 'db-promotion': Record<string, unknown> } };
  base.runbooks['db-promotion'] = { ...base.runbooks['db-promotion'], ...dbPromotion };
  const file = path.join(lab.dir, `variant-${++counter}.yaml`);
  writeFileSync(file, stringify(base));
  return loadConfig(file);
}

async function waitForVisibility(query: string): Promise<string[]> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const ids: string[] = [];
    for await (const wf of temporal.client.workflow.list({ query })) ids.push(wf.workflowId);
    if (ids.length > 0 || Date.now() > deadline) return ids;
    await new Promise((r) => setTimeout(r, 250));
  }
}
