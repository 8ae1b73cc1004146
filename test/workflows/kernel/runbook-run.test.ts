/**
 * The kernel's orchestration rules against the real Temporal dev server, with
 * typed fake activities and no PostgreSQL: a gate that escalates then times
 * out, an RTO breach under policy rollback, an undo that keeps failing
 * (needs-attention), and the point of no return sealing the undos before it,
 * on a small runbook written on the kernel and on the real db-promotion.
 */
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Context } from '@temporalio/activity';
import { Client, Connection, WorkflowFailedError, type HistoryAndWorkflowId, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure, CancelledFailure, type Workflow } from '@temporalio/common';
import { historyFromJSON, historyToJSON } from '@temporalio/common/lib/proto-utils';
import { bundleWorkflowCode, DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createDatabaseActivities, type DatabaseActivities } from '../../../activities/database';
import { createEvidenceActivities, type EvidenceActivities } from '../../../activities/evidence';
import { createHoldActivities, type HoldActivities } from '../../../activities/holds';
import { createNotificationActivities, type NotificationActivities } from '../../../activities/notify';
import type { DbPromotionInput } from '../../../contract/db-promotion';
import type { FenceResult, Notification, ReplicationInspection } from '../../../contract/database';
import { verifyChain, type EvidenceRecord } from '../../../contract/evidence';
import { FailureType } from '../../../contract/failures';
import { holdWorkflowId } from '../../../contract/holds';
import {
  decideUpdate,
  requestCancelUpdate,
  resolveSignal,
  searchAttributes,
  statusQuery,
  type RunbookStatus,
  type RunContext,
} from '../../../contract/runbook';
import { ensureNamespace } from '../../../lab/temporal-server';
import { activityNames, ActivityCalls, deferred, fakeActivities } from '../../helpers/fakes';
import { gateWaiting, waitForStatus } from '../../helpers/temporal';
import type { dbPromotion } from '../../../workflows';
import type { rehearsal, RehearsalActivities, RehearsalInput, RehearsalStepId } from './workflows';

const NAMESPACE = 'lifeboat-test-kernel';
const HISTORIES = path.join(__dirname, '..', '..', 'histories', 'kernel');

const people: RunContext['people'] = { alice: ['commander'], bob: ['approver'], carol: ['commander', 'approver'], erin: ['admin'] };

let connection: NativeConnection;
let client: Client;
let bundle: { code: string };
let counter = 0;
/** Histories of this file's runs, replayed by the last test. */
const recorded: HistoryAndWorkflowId[] = [];

beforeAll(async () => {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const address = inject('temporalAddress');
  await ensureNamespace(address, NAMESPACE);
  connection = await NativeConnection.connect({ address });
  client = new Client({ connection: await Connection.connect({ address }), namespace: NAMESPACE });
  bundle = await bundleWorkflowCode({ workflowsPath: path.join(__dirname, 'workflows.ts'), logger: quietLogger() });
});

afterAll(async () => {
  await client?.connection.close();
  await connection?.close();
});

/** The kernel's own activities (notifications, evidence), faked: every page and every sealed record is in `calls`. */
function kernelFakes(calls: ActivityCalls): NotificationActivities & EvidenceActivities {
  return {
    ...fakeActivities<NotificationActivities>(activityNames(createNotificationActivities({ routes: { incident: [], oncall: [] }, record: async () => undefined })), {
      notify: async () => ({ channel: 'fake', deliveredAt: new Date().toISOString() }),
    }, calls),
    ...fakeActivities<EvidenceActivities>(activityNames(createEvidenceActivities({ stores: [] })), {
      appendEvidence: async () => undefined,
      anchorEvidence: async () => ({ state: 'not-configured' }),
    }, calls),
  };
}

/** A change that runs until the test settles `until`, heartbeating; its cancellation rejects it. */
async function heldOpen<T>(until: Promise<T>): Promise<T> {
  const context = Context.current();
  const beat = setInterval(() => context.heartbeat(), 200);
  try {
    return await Promise.race([until, context.cancelled]);
  } finally {
    clearInterval(beat);
  }
}

interface Run<W extends Workflow> {
  handle: WorkflowHandle<W>;
  calls: ActivityCalls;
}

/**
 * Starts `workflow` on a worker of its own (the file's bundle, `activities` as fakes, a fresh task
 * queue) and runs `test` while the worker serves the run; the run's history is kept for the replay.
 */
async function withRun<W extends Workflow>(
  name: string,
  workflowType: string,
  args: Parameters<W>,
  activities: (calls: ActivityCalls) => object,
  test: (run: Run<W>) => Promise<void>,
): Promise<void> {
  const calls = new ActivityCalls();
  const taskQueue = `kernel-${name}-${process.pid}-${++counter}`;
  const worker = await Worker.create({
    connection,
    namespace: NAMESPACE,
    taskQueue,
    workflowBundle: bundle,
    activities: { ...kernelFakes(calls), ...activities(calls) },
  });
  await worker.runUntil(async () => {
    // Started by type name (the test process never loads workflow code); `args` were checked as Parameters<W>.
    const started = await client.workflow.start<Workflow>(workflowType, { taskQueue, workflowId: `${taskQueue}-run`, args: [...args] });
    const handle = client.workflow.getHandle<W>(started.workflowId);
    await test({ handle, calls });
    await handle.result().catch(() => undefined);
    const history = await handle.fetchHistory();
    recorded.push({ workflowId: handle.workflowId, history });
    if (process.env.LIFEBOAT_RECORD_HISTORIES === '1') writeFileSync(path.join(HISTORIES, `${name}.json`), historyToJSON(history));
  });
}

function rehearsalInput(changes: Partial<RehearsalInput> = {}): RehearsalInput {
  return {
    run: { initiator: 'alice', detectedAt: new Date().toISOString(), drill: true, people },
    rto: { budgetSeconds: 3600, onBreach: 'continue' },
    gate: { escalateAfterSeconds: 600, timeoutSeconds: 1200 },
    compensationAttempts: 1,
    ...changes,
  };
}

/** The rehearsal's activities: `change` answers per step (default: done), `undo` likewise. */
function rehearsalFakes(answers: { change?: Partial<Record<RehearsalStepId, () => Promise<void>>>; undo?: Partial<Record<RehearsalStepId, () => Promise<void>>> } = {}) {
  return (calls: ActivityCalls) =>
    fakeActivities<RehearsalActivities>(['change', 'undo'], {
      change: async ({ step }) => {
        await answers.change?.[step]?.();
        return { step };
      },
      undo: async ({ step }) => answers.undo?.[step]?.(),
    }, calls);
}

async function failureOf(handle: WorkflowHandle): Promise<ApplicationFailure> {
  const err: unknown = await handle.result().then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(WorkflowFailedError);
  const cause = (err as WorkflowFailedError).cause;
  expect(cause).toBeInstanceOf(ApplicationFailure);
  return cause as ApplicationFailure;
}

const kinds = (status: RunbookStatus) => status.events.map((e) => e.kind);
const stepStates = (status: RunbookStatus) => Object.fromEntries(status.steps.map((s) => [s.id, s.state]));
const pages = (calls: ActivityCalls) => calls.of('notify').map(([n]) => n as Notification);
const undone = (calls: ActivityCalls) => calls.of('undo').map(([input]) => (input as { step: string }).step);
const sealed = (calls: ActivityCalls) => calls.of('appendEvidence').flatMap(([records]) => records as EvidenceRecord[]);

describe('gates and decisions', () => {
  it('a gate nobody decides escalates, then times out; the undos run in reverse and the chain records it', async () => {
    await withRun<typeof rehearsal>('gate-timeout', 'rehearsal', [rehearsalInput({ gate: { escalateAfterSeconds: 1, timeoutSeconds: 4 } })], rehearsalFakes(), async ({ handle, calls }) => {
      await waitForStatus(handle, gateWaiting('promote'), 'the promote gate');
      // A person without the approver role is refused, with the reason, and the refusal is recorded.
      await expect(handle.executeUpdate(decideUpdate, { args: [{ gate: 'promote', approver: 'alice', decision: 'approve' }] })).rejects.toMatchObject({
        cause: { type: 'DecisionRefused', message: "'alice' does not have the approver role (roles: commander)" },
      });

      const failure = await failureOf(handle);
      expect(failure.type).toBe(FailureType.GateRejected);
      expect(failure.message).toBe('gate promote timed out');

      const status = await handle.query(statusQuery);
      expect(status.state).toBe('rolled-back');
      expect(status.gates[0]).toMatchObject({ id: 'promote', state: 'timed-out' });
      expect(status.gates[0]?.escalatedAt).toBeDefined();
      expect(stepStates(status)).toEqual({ freeze: 'compensated', drain: 'compensated', promote: 'pending', verify: 'pending' });
      expect(kinds(status).filter((k) => k !== 'escalation')).toEqual(['started', 'gate-opened', 'decision-refused', 'gate-timed-out', 'finished']);

      expect(calls.of('change')).toEqual([[{ step: 'freeze' }], [{ step: 'drain' }]]);
      expect(undone(calls)).toEqual(['drain', 'freeze']);
      expect(pages(calls)).toEqual([
        expect.objectContaining({ audience: 'oncall', kind: 'escalation', severity: 'warning', subject: '[rehearsal drill] gate promote still waiting', workflowId: handle.workflowId }),
      ]);
      expect(pages(calls)[0]?.body).toMatch(/^Gate promote has waited 1s for an approver \(bob, carol\)\./);

      // Every record reached the store, in one unbroken chain ending with the outcome.
      const records = sealed(calls);
      expect(verifyChain(records, status.evidence)).toMatchObject({ ok: true });
      expect(records.map((r) => r.kind)).toEqual(expect.arrayContaining(['decision-refused', 'gate-timed-out', 'step-compensated']));
      expect(records.at(-1)).toMatchObject({ kind: 'finished', outcome: { state: 'rolled-back' } });
    });
  });

  it('db-promotion: a rejection at its gate unfences the old primary it fenced', async () => {
    const database = `kernel-reject-${process.pid}`;
    await withRun<typeof dbPromotion>('db-promotion-rejected', 'dbPromotion', [promotionInput(database)], promotionFakes(), async ({ handle, calls }) => {
      await waitForStatus(handle, gateWaiting('promote'), 'the promote gate');
      await handle.executeUpdate(decideUpdate, { args: [{ gate: 'promote', approver: 'bob', decision: 'reject', comment: 'not tonight' }] });

      const failure = await failureOf(handle);
      expect(failure.type).toBe(FailureType.GateRejected);
      expect(failure.message).toBe('gate promote rejected by bob: not tonight');
      expect(calls.names(DATABASE_ACTIVITIES)).toEqual(['preflightPromotion', 'fencePrimary', 'waitForReplay', 'unfencePrimary']);
      expect(calls.of('unfencePrimary')).toEqual([[{ database, towards: 'standby' }]]);
      const status = await handle.query(statusQuery);
      expect(status.state).toBe('rolled-back');
      expect(stepStates(status)).toMatchObject({ 'fence-primary': 'compensated', promote: 'pending' });
      // The run left its hold: the database is free for the next run.
      await expect(client.workflow.getHandle(holdWorkflowId({ kind: 'database', name: database })).result()).resolves.toMatchObject({ releasedAt: expect.any(String) });
    });
  });
});

describe('clocks', () => {
  it('an RTO breach under policy rollback cancels the running step and rolls back; a step over budget pages first', async () => {
    const drainCancelled = deferred<void>();
    const fakes = rehearsalFakes({
      change: {
        drain: () => heldOpen(new Promise<void>(() => undefined)).catch((err: unknown) => {
          if (err instanceof CancelledFailure) drainCancelled.resolve();
          throw err;
        }),
      },
    });
    // The budgets leave the drain's own budget time to run out first, even on a busy machine.
    const input = rehearsalInput({ rto: { budgetSeconds: 5, onBreach: 'rollback' }, stepBudgets: { drain: 1 } });
    await withRun<typeof rehearsal>('rto-rollback', 'rehearsal', [input], fakes, async ({ handle, calls }) => {
      const failure = await failureOf(handle);
      expect(failure.type).toBe(FailureType.RtoBudgetExceeded);
      expect(failure.message).toBe('RTO budget of 5s exceeded; policy rollback: the run was rolled back');
      await drainCancelled.promise; // the activity itself was told

      const status = await handle.query(statusQuery);
      expect(status.state).toBe('rolled-back');
      expect(status.rto).toMatchObject({ breached: true, budgetSeconds: 5, onBreach: 'rollback' });
      expect(status.steps.find((s) => s.id === 'drain')).toMatchObject({ state: 'compensated', budgetBreached: true, note: 'cancelled' });
      expect(kinds(status).filter((k) => k !== 'escalation')).toEqual(['started', 'step-budget-breach', 'rto-breach', 'step-failed', 'finished']);
      expect(status.events.find((e) => e.kind === 'rto-breach')?.detail).toBe('RTO budget of 5s exceeded; policy rollback: rolling back');
      expect(undone(calls)).toEqual(['drain', 'freeze']);
      expect(pages(calls).map((n) => [n.audience, n.kind, n.severity, n.subject])).toEqual([
        ['oncall', 'rto-breach', 'warning', '[rehearsal drill] step drain over budget'],
        ['oncall', 'rto-breach', 'critical', '[rehearsal drill] RTO budget exceeded (5s)'],
      ]);
      expect((await handle.describe()).typedSearchAttributes.get(searchAttributes.rtoBreached)).toBe(true);
    });
  });
});

describe('steps and compensation', () => {
  it('an undo that keeps failing puts the run in needs-attention until an operator resolves it', async () => {
    const fakes = rehearsalFakes({
      change: { drain: async () => { throw ApplicationFailure.nonRetryable('the load balancer refused the change', 'DrainRefused'); } },
      undo: { freeze: async () => { throw ApplicationFailure.retryable('the write freeze is stuck', 'FreezeStuck'); } },
    });
    await withRun<typeof rehearsal>('needs-attention', 'rehearsal', [rehearsalInput()], fakes, async ({ handle, calls }) => {
      const failedUndos = (s: RunbookStatus) => s.events.filter((e) => e.kind === 'compensation-failed').length;
      const stuck = await waitForStatus(handle, (s) => s.state === 'needs-attention', 'needs-attention');
      expect(stuck.phase).toBe('needs-attention: undo freeze');
      expect(stepStates(stuck)).toMatchObject({ freeze: 'done', drain: 'compensated' });
      // The page goes out in the background: the run does not wait for it.
      await expect.poll(() => pages(calls).map((n) => [n.audience, n.kind, n.severity, n.subject])).toEqual([['oncall', 'needs-attention', 'critical', '[rehearsal drill] undo of freeze failed']]);

      // An approver is no operator: refused and recorded, the run still waits.
      await handle.signal(resolveSignal, { by: 'bob', action: 'done-by-hand', comment: 'looks fine to me' });
      const refused = await waitForStatus(handle, (s) => kinds(s).includes('decision-refused'), 'the refused resolve');
      expect(refused.events.find((e) => e.kind === 'decision-refused')?.detail).toBe("resolve refused: 'bob' may not resolve a run (needs the commander or admin role; has approver)");
      expect(refused.state).toBe('needs-attention');

      // Retry: the undo runs again, fails again, and the run asks again.
      await handle.signal(resolveSignal, { by: 'alice', action: 'retry', comment: 'restarted the freeze service' });
      await waitForStatus(handle, (s) => s.state === 'needs-attention' && failedUndos(s) === 2, 'needs-attention again');

      await handle.signal(resolveSignal, { by: 'erin', action: 'done-by-hand', comment: 'unfroze by hand' });
      const failure = await failureOf(handle);
      expect(failure.type).toBe(FailureType.StepFailed);
      expect(failure.message).toBe('step drain failed: the load balancer refused the change');
      expect(failure.cause?.cause).toMatchObject({ type: 'DrainRefused' });

      const status = await handle.query(statusQuery);
      expect(status.state).toBe('rolled-back');
      expect(status.steps.find((s) => s.id === 'freeze')).toMatchObject({ state: 'compensated', note: 'undone by hand by erin: unfroze by hand' });
      expect(undone(calls)).toEqual(['drain', 'freeze', 'freeze']);
      expect(status.events.filter((e) => e.kind === 'resolved').map((e) => e.by)).toEqual(['alice', 'erin']);
    });
  });

  it('the point of no return seals the undos before it: a later failure ends the run failed, undoing nothing, and a cancel is refused', async () => {
    const verify = deferred<void>();
    const fakes = rehearsalFakes({ change: { verify: () => heldOpen(verify.promise) } });
    await withRun<typeof rehearsal>('point-of-no-return', 'rehearsal', [rehearsalInput()], fakes, async ({ handle, calls }) => {
      await waitForStatus(handle, gateWaiting('promote'), 'the promote gate');
      await expect(handle.executeUpdate(decideUpdate, { args: [{ gate: 'promote', approver: 'bob', decision: 'approve', comment: 'go' }] })).resolves.toMatchObject({ state: 'approved', decidedBy: 'bob' });

      const past = await waitForStatus(handle, (s) => s.steps.some((x) => x.id === 'verify' && x.state === 'running'), 'the verify step');
      expect(past).toMatchObject({ pointOfNoReturnPassed: true, rollbackAvailable: false });
      expect(past.steps.filter((s) => s.pastPointOfNoReturn).map((s) => s.id)).toEqual(['freeze', 'drain', 'promote']);
      expect(past.events.find((e) => e.kind === 'point-of-no-return')?.detail).toBe('step promote is irreversible; undos no longer offered: freeze, drain');

      await expect(handle.executeUpdate(requestCancelUpdate, { args: [{ by: 'alice', reason: 'changed my mind' }] })).rejects.toMatchObject({
        cause: { type: 'DecisionRefused', message: 'the run is past its point of no return: cancelling would not roll it back; let it finish or resolve by hand' },
      });
      await handle.cancel();
      await waitForStatus(handle, (s) => s.events.some((e) => e.kind === 'cancel-requested' && e.detail.startsWith('cancel ignored')), 'the ignored cancel');

      verify.reject(ApplicationFailure.nonRetryable('the synthetic check failed', 'CheckFailed'));
      const failure = await failureOf(handle);
      expect(failure.type).toBe(FailureType.StepFailed);
      expect(failure.message).toBe('step verify failed: the synthetic check failed');

      const status = await handle.query(statusQuery);
      expect(status.state).toBe('failed');
      expect(stepStates(status)).toEqual({ freeze: 'done', drain: 'done', promote: 'done', verify: 'failed' });
      expect(undone(calls)).toEqual([]);
      expect(pages(calls).map((n) => [n.kind, n.severity, n.subject])).toEqual([
        ['escalation', 'warning', '[rehearsal drill] cancel ignored past the point of no return'],
        ['needs-attention', 'critical', '[rehearsal drill] failed past the point of no return'],
      ]);
    });
  });

  it('db-promotion: past the promotion, a failed write check leaves the old primary fenced and pages', async () => {
    const database = `kernel-ponr-${process.pid}`;
    const fakes = promotionFakes({ verifyWrite: async () => { throw ApplicationFailure.nonRetryable('the write did not reach the new primary', 'WriteLost'); } });
    await withRun<typeof dbPromotion>('db-promotion-past-ponr', 'dbPromotion', [promotionInput(database)], fakes, async ({ handle, calls }) => {
      await waitForStatus(handle, gateWaiting('promote'), 'the promote gate');
      await handle.executeUpdate(decideUpdate, { args: [{ gate: 'promote', approver: 'carol', decision: 'approve', comment: 'go' }] });

      const failure = await failureOf(handle);
      expect(failure.type).toBe(FailureType.StepFailed);
      expect(failure.message).toBe('step verify-write failed: the write did not reach the new primary');
      expect(calls.names(DATABASE_ACTIVITIES)).toEqual(['preflightPromotion', 'fencePrimary', 'waitForReplay', 'promoteStandby', 'verifyWrite']);
      const status = await handle.query(statusQuery);
      expect(status.state).toBe('failed');
      expect(status.events.find((e) => e.kind === 'point-of-no-return')?.detail).toBe('step promote is irreversible; undos no longer offered: fence-primary');
      expect(pages(calls).map((n) => [n.audience, n.kind, n.subject])).toEqual([['oncall', 'needs-attention', '[db-promotion drill] failed past the point of no return']]);
    });
  });
});

describe('replay', () => {
  it("replays this file's runs and the kernel histories recorded before the kernel was split", async () => {
    const committed = existsSync(HISTORIES)
      ? readdirSync(HISTORIES).filter((f) => f.endsWith('.json')).map((f) => ({ workflowId: `committed-${path.basename(f, '.json')}`, history: historyFromJSON(JSON.parse(readFileSync(path.join(HISTORIES, f), 'utf8'))) }))
      : [];
    expect(committed.length).toBeGreaterThanOrEqual(6);
    const results = [];
    for await (const result of Worker.runReplayHistories({ workflowBundle: bundle, replayName: 'kernel-replay' }, [...committed, ...recorded])) results.push(result);
    expect(results).toHaveLength(committed.length + recorded.length);
    expect(results.filter((r) => r.error).map((r) => `${r.workflowId}: ${r.error?.message}`)).toEqual([]);
  });
});

// ---- db-promotion with fake database activities -----------------------------

const DATABASE_ACTIVITIES = activityNames(createDatabaseActivities({ providers: new Map() }));

function promotionInput(database: string): DbPromotionInput {
  return {
    database,
    mode: 'planned',
    run: { initiator: 'alice', detectedAt: new Date().toISOString(), drill: true, people },
    policy: {
      rto: { budgetSeconds: 3600, onBreach: 'continue' },
      stepBudgets: {},
      gates: { promote: { escalateAfterSeconds: 600, timeoutSeconds: 1200 } },
      rpoTargetSeconds: 5,
      catchUpTimeoutSeconds: 30,
      compensationAttempts: 2,
    },
  };
}

/** A healthy pair: a reachable primary fenced by a clean shutdown, a streaming standby that replays its last LSN. */
function promotionFakes(answers: Partial<DatabaseActivities> = {}) {
  const primary = { region: 'east', host: '10.0.0.1', port: 5432 };
  const standby = { region: 'west', host: '10.0.1.1', port: 5432 };
  return (calls: ActivityCalls): DatabaseActivities & HoldActivities => ({
    // The holds are real (the hold itself checks with the server that a member has closed), on the test's client.
    ...createHoldActivities({ client }),
    ...fakeActivities<DatabaseActivities>(DATABASE_ACTIVITIES, {
      preflightPromotion: async ({ database }): Promise<ReplicationInspection> => ({
        database,
        standby: { ...standby, reachable: true, inRecovery: true, streaming: true },
        primary: { ...primary, reachable: true, currentLsn: '0/3000060' },
        lagBytes: 0,
        inspectedAt: new Date().toISOString(),
      }),
      fencePrimary: async (): Promise<FenceResult> => ({ fenced: true, finalLsn: '0/3000060', terminatedSessions: 0, method: 'clean shutdown', cleanShutdown: true }),
      waitForReplay: async ({ targetLsn }) => ({ targetLsn, replayLsn: targetLsn }),
      unfencePrimary: async () => undefined,
      promoteStandby: async () => ({ alreadyPromoted: false, timeline: 2, promotedAt: new Date().toISOString(), newPrimary: standby }),
      verifyWrite: async () => ({ ok: true, latencyMs: 3, node: standby }),
      ...answers,
    }, calls),
  });
}

/** The bundler's output only when it has something to say. */
function quietLogger() {
  const quiet = () => undefined;
  const say = (message: string) => console.warn(`bundler: ${message}`);
  return { log: quiet, trace: quiet, debug: quiet, info: quiet, warn: say, error: say };
}
