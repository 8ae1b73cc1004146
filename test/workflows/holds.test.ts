/**
 * Target holds against the real Temporal dev server and real PostgreSQL: a
 * second run on a held database is refused before it changes anything,
 * whatever its id or its starter (the CLI, a raw start, a Schedule), a hold
 * never outlives its holder, and what others may send or do to a hold (a
 * reset of its holder) never frees a target a run still changes.
 */
import { randomUUID } from 'node:crypto';
import { WorkflowFailedError, type WorkflowHandle, type WorkflowHandleWithFirstExecutionRunId } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decideGate, RunRefusedError, startRun } from '../../cli/runs';
import { planStart } from '../../cli/start';
import { postgresDatabase } from '../../config/load';
import { FailureType } from '../../contract/failures';
import { holdQuery, holdWorkflowId, joinHoldSignal, releaseHoldSignal, TARGET_HOLD_WORKFLOW_TYPE, type TargetRef } from '../../contract/holds';
import { statusQuery } from '../../contract/runbook';
import type { dbPromotion, targetHold } from '../../workflows';
import { createTestLab, type TestLab } from '../helpers/lab';
import { countRows, inRecovery, tryWrite } from '../helpers/postgres';
import { gateWaiting, startTestTemporal, waitForStatus, type TestTemporal } from '../helpers/temporal';
import { waitFor } from '../../lib/processes';
import { inspectHold } from '../../lib/holds';
import { waitForStreaming } from '../../lab/postgres';

let lab: TestLab;
let temporal: TestTemporal;
let counter = 0;
const ORDERS: TargetRef = { kind: 'database', name: 'orders' };
const HOLD = holdWorkflowId(ORDERS);

beforeAll(async () => {
  lab = await createTestLab('holds');
  temporal = await startTestTemporal(lab.loaded);
});

afterAll(async () => {
  await temporal?.close();
  await lab?.destroy();
});

const orders = () => postgresDatabase(lab.loaded.config, 'orders');
const nextId = () => `db-promotion:orders:holds-${process.pid}-${++counter}`;

async function startA(): Promise<WorkflowHandle<typeof dbPromotion>> {
  const started = await startRun(temporal.client, lab.loaded, { runbook: 'db-promotion', params: ['database=orders', 'mode=planned'], as: 'alice', id: nextId(), drill: true });
  return temporal.client.workflow.getHandle<typeof dbPromotion>(started.workflowId);
}

/** The same start the CLI plans, sent as a raw `temporal workflow start` would: no CLI check in front. */
async function rawStart(id: string, mode: 'planned' | 'unplanned' = 'planned'): Promise<WorkflowHandle<typeof dbPromotion>> {
  const plan = planStart(lab.loaded, { runbook: 'db-promotion', params: ['database=orders', `mode=${mode}`], as: 'carol', id, drill: true });
  if (plan.workflowType !== 'dbPromotion') throw new Error('expected a db-promotion plan');
  return temporal.client.workflow.start<typeof dbPromotion>('dbPromotion', { taskQueue: lab.taskQueue, workflowId: id, args: [plan.input] });
}

/** `temporal workflow reset --type LastWorkflowTask`: a new run from the last completed workflow task; the server terminates the old run. */
async function resetToLastWorkflowTask(handle: WorkflowHandle): Promise<{ before: string; after: string }> {
  const { runId } = await handle.describe();
  const history = await handle.fetchHistory();
  const lastTask = (history.events ?? []).filter((e) => e.workflowTaskCompletedEventAttributes).at(-1);
  if (!lastTask?.eventId) throw new Error(`${handle.workflowId} has no completed workflow task to reset to`);
  const reset = await temporal.client.workflowService.resetWorkflowExecution({
    namespace: lab.loaded.config.temporal.namespace,
    workflowExecution: { workflowId: handle.workflowId, runId },
    workflowTaskFinishEventId: lastTask.eventId,
    requestId: randomUUID(),
    reason: 'test: an operator resets the holder',
  });
  return { before: runId, after: reset.runId };
}

/** Cancels `run` before its point of no return: its own undo lifts its fence, and west streams from east again. */
async function rollBack(run: WorkflowHandle): Promise<void> {
  await run.cancel();
  await run.result().catch(() => undefined);
  expect((await run.query(statusQuery)).state).toBe('rolled-back');
  expect(await tryWrite(orders().primary, 'orders', 'after rollback')).toBeUndefined();
  await waitForStreaming(lab.lab.clusters('orders').standby);
}

/** An open workflow that has nothing to do with orders: a type no worker knows, on a queue nobody polls. */
async function unrelatedOpenWorkflow(): Promise<WorkflowHandleWithFirstExecutionRunId> {
  return temporal.client.workflow.start('unrelatedWorkflow', { taskQueue: `${lab.taskQueue}-nobody`, workflowId: `unrelated-${process.pid}-${++counter}` });
}

/** The hold has checked its members with the server (an activity completed) since the last `signal` it received. */
async function holdCheckedSince(signal: string): Promise<true | undefined> {
  const { events } = await temporal.client.workflow.getHandle(HOLD).fetchHistory();
  const all = events ?? [];
  const signalled = all.findLastIndex((e) => e.workflowExecutionSignaledEventAttributes?.signalName === signal);
  return signalled >= 0 && all.slice(signalled).some((e) => e.activityTaskCompletedEventAttributes) ? true : undefined;
}

/** The hold ended by itself (completed), not ended by a contender's inspection. */
async function holdCompletes(): Promise<void> {
  await waitFor('the hold to end', async () => ((await temporal.client.workflow.getHandle(HOLD).describe()).status.name === 'COMPLETED' ? true : undefined), 30_000, 200);
}

async function refusal(handle: WorkflowHandle): Promise<ApplicationFailure> {
  const err = await handle.result().then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(WorkflowFailedError);
  const cause = (err as WorkflowFailedError).cause;
  expect(cause).toBeInstanceOf(ApplicationFailure);
  return cause as ApplicationFailure;
}

describe('one changing run per target', () => {
  it('refuses a second promotion with another --id, from the CLI and from a raw start, before it changes anything; the first one completes with one writable primary', async () => {
    const rowsEast = await countRows(orders().primary, 'orders');
    const a = await startA();
    await waitForStatus(a, gateWaiting('promote'), 'A waits at gate promote');

    // The CLI refuses at once, naming the holder and where it stands.
    const cli = await startRun(temporal.client, lab.loaded, { runbook: 'db-promotion', params: ['database=orders', 'mode=planned'], as: 'carol', id: nextId(), drill: true }).then(() => undefined, (e: unknown) => e);
    expect(cli).toBeInstanceOf(RunRefusedError);
    expect((cli as Error).message).toMatch(new RegExp(`orders is held by ${a.workflowId} \\(alice, started \\d\\d:\\d\\d UTC, waiting at gate promote\\)`));

    // A raw start meets the same hold inside the run: refused, nothing fenced or undone.
    const b = await rawStart(nextId());
    const failure = await refusal(b);
    expect(failure.type).toBe(FailureType.TargetHeld);
    expect(failure.message).toContain(`orders is held by ${a.workflowId}`);
    const bStatus = await b.query(statusQuery);
    expect(bStatus.state).toBe('refused');
    expect(bStatus.steps.every((s) => s.state === 'pending')).toBe(true);
    expect(bStatus.events.map((e) => e.kind)).toContain('refused');

    await decideGate(temporal.client, lab.loaded, { workflowId: a.workflowId, gate: 'promote', as: 'bob', decision: 'approve', comment: 'go' });
    const result = await a.result();
    expect(result.newPrimary.region).toBe('west');
    // Exactly one writable primary: west takes writes, east (fenced by A, never unfenced by B) refuses them.
    expect(await inRecovery(orders().standby)).toBe(false);
    expect(await tryWrite(orders().standby, 'orders', 'after promotion')).toBeUndefined();
    expect(await tryWrite(orders().primary, 'orders', 'split brain?')).toBeDefined();
    expect(await countRows(orders().standby, 'orders')).toBe(rowsEast + 1); // every east row, plus the one written on west above
    // The hold ended with its holder.
    await holdCompletes();
    await lab.lab.reset();
  });

  it('refuses a run started by a Temporal Schedule the config does not ask for, before it claims anything, while the database is held', async () => {
    const a = await startA();
    await waitForStatus(a, gateWaiting('promote'), 'A waits at gate promote');
    const id = nextId();
    const plan = planStart(lab.loaded, { runbook: 'db-promotion', params: ['database=orders', 'mode=planned'], as: 'carol', id, drill: true, scheduled: true });
    const schedule = await temporal.client.schedule.create({
      scheduleId: `holds-${process.pid}-${counter}`,
      spec: { intervals: [{ every: '365 days' }] },
      action: { type: 'startWorkflow', workflowType: 'dbPromotion', taskQueue: lab.taskQueue, workflowId: id, args: [plan.input] },
      state: { paused: true },
    });
    try {
      await schedule.trigger();
      const started = await waitFor('the scheduled run to start', async () => (await schedule.describe()).info.recentActions[0]?.action.workflow.workflowId, 20_000, 200);
      const scheduled = temporal.client.workflow.getHandle(started);
      const failure = await refusal(scheduled);
      // Any client can create a Schedule: only the config's own vouch for a run, so this one is refused at admission.
      expect(failure.type).toBe(FailureType.RunRefused);
      expect(failure.message).toContain(`'holds-${process.pid}-${counter}' is not a Schedule of this worker's config (schedules:)`);
      expect((await temporal.client.workflow.getHandle(HOLD).query(holdQuery)).holder.workflowId).toBe(a.workflowId);
    } finally {
      await schedule.delete();
    }
    await rollBack(a);
  });

  it('frees the target when its holder is terminated: a hold never outlives its holder', async () => {
    const a = await startA();
    await waitForStatus(a, gateWaiting('promote'), 'A waits at gate promote');
    const hold = await temporal.client.workflow.getHandle(HOLD).query(holdQuery);
    expect(hold.holder.workflowId).toBe(a.workflowId);
    await a.terminate('test: the holder dies without running its undo');
    // East stays fenced by the dead run (terminate runs no undo); the next run may claim the database
    // (unplanned: east is down, fenced by A's shutdown).
    const b = await rawStart(nextId(), 'unplanned');
    await waitForStatus(b, gateWaiting('promote'), 'B claims the freed database and waits at its gate');
    const claimed = await temporal.client.workflow.getHandle(HOLD).query(holdQuery);
    expect(claimed.holder.workflowId).toBe(b.workflowId);
    await b.cancel();
    await b.result().catch(() => undefined);
    expect((await b.query(statusQuery)).state).toBe('rolled-back');
    // B's undo leaves A's fence alone: it is not B's to lift, and the standby was never promoted by a live run.
    expect(await tryWrite(orders().primary, 'orders', 'still fenced by A')).toMatch(/ECONNREFUSED/);
    await lab.lab.reset();
  });

  it('keeps the target held by a holder reset at its gate: the reset run is the member, a contender is refused', async () => {
    const a = await startA();
    await waitForStatus(a, gateWaiting('promote'), 'A waits at gate promote');
    const { before, after } = await resetToLastWorkflowTask(a);
    expect(after).not.toBe(before);
    expect((await temporal.client.workflow.getHandle(a.workflowId, before).describe()).status.name).toBe('TERMINATED');
    await waitForStatus(a, gateWaiting('promote'), 'the reset run waits at gate promote');
    expect((await a.describe()).runId).toBe(after);

    // The run that claimed is terminated, but its reset carries on changing orders: still held, by the same chain.
    const b = await rawStart(nextId());
    const failure = await refusal(b);
    expect(failure.type).toBe(FailureType.TargetHeld);
    expect(failure.message).toMatch(new RegExp(`orders is held by ${a.workflowId} \\(alice, started \\d\\d:\\d\\d UTC, waiting at gate promote\\)`));
    const hold = await temporal.client.workflow.getHandle(HOLD).query(holdQuery);
    expect(hold.members).toEqual([{ workflowId: a.workflowId, runId: before, firstExecutionRunId: before }]);

    await a.cancel();
    await a.result().catch(() => undefined);
    expect((await a.query(statusQuery)).state).toBe('rolled-back');
    // The fence names the run that put it in place (workflow id and run id): the reset run's undo leaves it, so the lab is reset.
    await lab.lab.reset();
  });

  it('ends at once a hold started raw for a holder that never claimed it: a real run then claims the target', async () => {
    const decoy = await unrelatedOpenWorkflow();
    const holder = { workflowId: decoy.workflowId, runId: decoy.firstExecutionRunId, runbook: 'db-promotion', initiator: 'mallory', startedAt: new Date().toISOString() };
    const forged = await temporal.client.workflow.start<typeof targetHold>(TARGET_HOLD_WORKFLOW_TYPE, { taskQueue: lab.taskQueue, workflowId: HOLD, args: [{ target: ORDERS, holder }] });
    const failure = await refusal(forged);
    expect(failure.type).toBe(FailureType.HoldNotClaimed);
    expect(failure.message).toBe(`this hold on orders names ${decoy.workflowId} (run ${decoy.firstExecutionRunId}) as its holder but was started by no run (a raw start): it holds nothing and ends`);
    expect((await decoy.describe()).status.name).toBe('RUNNING'); // the named holder still runs: only the check ended the hold

    const a = await startA();
    await waitForStatus(a, gateWaiting('promote'), 'A claims orders and waits at its gate');
    expect((await temporal.client.workflow.getHandle(HOLD).query(holdQuery)).holder.workflowId).toBe(a.workflowId);
    await rollBack(a);
    await decoy.terminate('test: done');
  });

  it('keeps the holder after a forged releaseHold while it waits at its gate: a second run is still refused', async () => {
    const a = await startA();
    await waitForStatus(a, gateWaiting('promote'), 'A waits at gate promote');
    const hold = temporal.client.workflow.getHandle(HOLD);
    // `temporal workflow signal --name releaseHold` with the holder's own ids, by someone else.
    const { runId } = await a.describe();
    await hold.signal(releaseHoldSignal, { workflowId: a.workflowId, runId });
    await waitFor('the hold to check its members after the release', () => holdCheckedSince(releaseHoldSignal.name), 20_000, 200);
    expect((await hold.query(holdQuery)).members.map((m) => m.workflowId)).toEqual([a.workflowId]);
    expect((await hold.describe()).status.name).toBe('RUNNING');

    const b = await rawStart(nextId());
    const failure = await refusal(b);
    expect(failure.type).toBe(FailureType.TargetHeld);
    expect(failure.message).toContain(`orders is held by ${a.workflowId}`);

    // A's own release, once A has closed, ends the hold by itself.
    await rollBack(a);
    await holdCompletes();
  });

  it('turns away a forged joinHold of an unrelated open workflow: once the holder ends the target is free', async () => {
    const a = await startA();
    await waitForStatus(a, gateWaiting('promote'), 'A waits at gate promote');
    const hold = temporal.client.workflow.getHandle(HOLD);
    const members = (await hold.query(holdQuery)).members;
    const decoy = await unrelatedOpenWorkflow();
    // `temporal workflow signal --name joinHold` naming a workflow that would keep orders held as long as it runs.
    await hold.signal(joinHoldSignal, { workflowId: decoy.workflowId, runId: decoy.firstExecutionRunId });
    const turnedAway = await waitFor('the hold to decide on the joiner', async () => (await hold.query(holdQuery)).turnedAway?.find((t) => t.joiner.workflowId === decoy.workflowId), 20_000, 200);
    expect(turnedAway.reason).toBe(`${decoy.workflowId} was not started by a run (it has no parent)`);
    // The hold itself is A's child: let in, it would keep itself alive after A.
    const { runId } = await hold.describe();
    await hold.signal(joinHoldSignal, { workflowId: HOLD, runId });
    const itself = await waitFor('the hold to decide on itself', async () => (await hold.query(holdQuery)).turnedAway?.find((t) => t.joiner.workflowId === HOLD), 20_000, 200);
    expect(itself.reason).toBe(`${HOLD} is a hold, never a member`);
    expect((await hold.query(holdQuery)).members).toEqual(members);

    await rollBack(a);
    await holdCompletes();
    expect((await decoy.describe()).status.name).toBe('RUNNING');
    expect((await inspectHold(temporal.client, ORDERS, { endOrphan: false })).state).toBe('free');
    await decoy.terminate('test: done');
  });
});
