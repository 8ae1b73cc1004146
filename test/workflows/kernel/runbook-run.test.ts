/**
 * The kernel's orchestration rules against the real Temporal dev server, with
 * typed fake activities and no PostgreSQL: a gate that escalates then times
 * out, an RTO breach under policy rollback, an undo that keeps failing
 * (needs-attention), and the point of no return sealing the undos before it,
 * on a small runbook written on the kernel and on the real db-promotion.
 */
import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Context } from '@temporalio/activity';
import { Client, Connection, WorkflowFailedError, WorkflowUpdateFailedError, type HistoryAndWorkflowId, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure, CancelledFailure, type Workflow } from '@temporalio/common';
import { historyFromJSON, historyToJSON } from '@temporalio/common/lib/proto-utils';
import { bundleWorkflowCode, DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createDatabaseActivities, type DatabaseActivities } from '../../../activities/database';
import { createEvidenceActivities, type EvidenceActivities } from '../../../activities/evidence';
import { createGovernanceActivities, type GovernanceActivities } from '../../../activities/governance';
import { cancelMessage, resolveMessage, startDigest, startMessage } from '../../../contract/approvals';
import type { TrustedPolicy } from '../../../contract/governance';
import { generateApprovalKey, loadApprovalKey, rawPublicKey, signMessage } from '../../../lib/approval-keys';
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
  type GatePolicy,
  type RunbookStatus,
  type RunContext,
} from '../../../contract/runbook';
import { ensureNamespace } from '../../../lab/temporal-server';
import { activityNames, ActivityCalls, deferred, fakeActivities } from '../../helpers/fakes';
import { gateWaiting, waitForStatus } from '../../helpers/temporal';
import type { dbPromotion } from '../../../workflows';
import type { rehearsal, rehearsalParent, RehearsalActivities, RehearsalInput, RehearsalStepId } from './workflows';

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

/** The worker's policy for a runbook: this file's people, no gate rules of its own (each run's gates stand). */
const defaultPolicy = (): TrustedPolicy => ({ people, approvalKeys: {}, signatures: 'optional', gates: {} });
let trusted: (runbook: string) => TrustedPolicy = defaultPolicy;

/** Runs `test` with the worker's policy changed by `policy`, then restores the default. */
async function underPolicy(policy: (runbook: string) => TrustedPolicy, test: () => Promise<void>): Promise<void> {
  trusted = policy;
  try {
    await test();
  } finally {
    trusted = defaultPolicy;
  }
}

/** The kernel's own activities (admission, notifications, evidence), faked: every page and every sealed record is in `calls`. */
function kernelFakes(calls: ActivityCalls): NotificationActivities & EvidenceActivities & GovernanceActivities {
  return {
    // The real admission activity against the real server; the worker's policy is `trusted` (a test may change it).
    ...createGovernanceActivities({ governance: { policy: (runbook) => trusted(runbook), runbookTypes: new Set(['rehearsal', 'rehearsalParent', 'dbPromotion']), scheduleLookupMs: 2000 }, client }),
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
    await withRun<typeof rehearsal>('gate-timeout', 'rehearsal', [rehearsalInput({ gate: { escalateAfterSeconds: 1, timeoutSeconds: 10 } })], rehearsalFakes(), async ({ handle, calls }) => {
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
      expect(kinds(status).filter((k) => k !== 'escalation')).toEqual(['started', 'admitted', 'gate-opened', 'decision-refused', 'gate-timed-out', 'finished']);

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
      expect(calls.names(DATABASE_ACTIVITIES)).toEqual(['chooseStandby', 'preflightPromotion', 'fencePrimary', 'confirmPromotable', 'waitForReplay', 'unfencePrimary']);
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
      expect(kinds(status).filter((k) => k !== 'escalation')).toEqual(['started', 'admitted', 'step-budget-breach', 'rto-breach', 'step-failed', 'finished']);
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
      expect(calls.names(DATABASE_ACTIVITIES)).toEqual(['chooseStandby', 'preflightPromotion', 'fencePrimary', 'confirmPromotable', 'waitForReplay', 'confirmPromotable', 'promoteStandby', 'verifyWrite']);
      const status = await handle.query(statusQuery);
      expect(status.state).toBe('failed');
      expect(status.events.find((e) => e.kind === 'point-of-no-return')?.detail).toBe('step promote is irreversible; undos no longer offered: fence-primary');
      expect(pages(calls).map((n) => [n.audience, n.kind, n.subject])).toEqual([['oncall', 'needs-attention', '[db-promotion drill] failed past the point of no return']]);
    });
  });
});

describe('admission: the worker decides who may do what', () => {
  const keys = mkdtempSync(path.join(os.tmpdir(), 'lifeboat-kernel-keys-'));
  const keyOf = (who: string) => path.join(keys, `${who}.pem`);
  const publicKeys = Object.fromEntries(['alice', 'bob', 'carol', 'erin'].map((who) => [who, generateApprovalKey(keyOf(who))]));
  const signedPolicy = (): TrustedPolicy => ({ people, approvalKeys: publicKeys, signatures: 'required', gates: {} });
  /** What `lifeboat start --key` sends: the input with its signing time, signed by `signer` as the initiator. */
  const signed = (input: RehearsalInput, workflowId: string, signer = input.run.initiator, workflowType = 'rehearsal'): RehearsalInput => {
    const withTime = { ...input, run: { ...input.run, signedAt: new Date().toISOString() } };
    const message = startMessage({ workflowId, workflowType, initiator: input.run.initiator, inputDigest: startDigest(withTime) });
    return { ...withTime, run: { ...withTime.run, startSignature: signMessage(loadApprovalKey(keyOf(signer)), message) } };
  };
  /** withRun's workflow id for the next run named `name` (its task queue + '-run'). */
  const nextId = (name: string) => `kernel-${name}-${process.pid}-${counter + 1}-run`;
  /** The reason an Update was refused with (the run's own words). */
  const refusedUpdate = (update: Promise<unknown>) => update.then(() => 'accepted', (err: unknown) => (err instanceof WorkflowUpdateFailedError ? err.cause?.message : String(err)));
  const refusalOf = async (handle: WorkflowHandle) => {
    const failure = await failureOf(handle);
    expect(failure.type).toBe(FailureType.RunRefused);
    const status = await handle.query(statusQuery);
    expect(status.state).toBe('refused');
    expect(status.events.find((e) => e.kind === 'refused')?.detail).toBe(failure.message);
    return failure.message;
  };

  it('a raw start with a forged pre-approval is refused before anything changes', async () => {
    const forged = rehearsalInput({ preApproved: { by: 'bob', at: new Date().toISOString(), comment: 'trust me', parent: 'regional-evacuation:east', gate: 'promote-databases' } });
    await withRun<typeof rehearsal>('forged-preapproval', 'rehearsal', [forged], rehearsalFakes(), async ({ handle, calls }) => {
      expect(await refusalOf(handle)).toBe('refused: a pre-approval (by bob) is honoured only in a child of a Lifeboat run of this worker; this run has no parent: nothing was pre-approved');
      expect(calls.of('change')).toEqual([]);
      expect((await handle.query(statusQuery)).gates[0]?.state).toBe('pending');
    });
  });

  it('a malformed context is refused with what to fix, never a crashed workflow task', async () => {
    const malformed = { ...rehearsalInput(), run: { ...rehearsalInput().run, people: null } } as unknown as RehearsalInput;
    await withRun<typeof rehearsal>('malformed', 'rehearsal', [malformed], rehearsalFakes(), async ({ handle, calls }) => {
      expect(await refusalOf(handle)).toBe('refused: run.people must map each person to a list of roles');
      expect(calls.of('change')).toEqual([]);
    });
  });

  it('an input that widens the worker’s policy is refused with the difference; one that narrows it runs under it', async () => {
    const widened = rehearsalInput({ run: { ...rehearsalInput().run, people: { ...people, mallory: ['approver'], alice: ['commander', 'approver'] } } });
    await underPolicy((runbook) => ({ ...defaultPolicy(), gates: runbook === 'rehearsal' ? { promote: { escalateAfterSeconds: 60, timeoutSeconds: 120, twoPerson: true } } : {} as Record<string, GatePolicy> }), async () => {
      await withRun<typeof rehearsal>('widened', 'rehearsal', [widened], rehearsalFakes(), async ({ handle, calls }) => {
        expect(await refusalOf(handle)).toBe(
          "refused: the run's input disagrees with the worker's policy (it may narrow it, never widen it): people.alice: role approver is not theirs in the worker's config (commander); " +
            "people.mallory: not a person in the worker's config; gates.promote: the worker's config requires two approvers; gates.promote.timeoutSeconds: 1200 is longer than the worker's 120; " +
            "gates.promote.escalateAfterSeconds: 600 is longer than the worker's 60",
        );
        expect(calls.of('change')).toEqual([]);
      });
      // Narrower: fewer people (no carol) and a stricter gate. Admitted; the gate is the input's and only bob may decide it.
      const narrowed = rehearsalInput({ run: { ...rehearsalInput().run, people: { alice: ['commander'], bob: ['approver'] } }, gate: { escalateAfterSeconds: 30, timeoutSeconds: 60, twoPerson: true } });
      await withRun<typeof rehearsal>('narrowed', 'rehearsal', [narrowed], rehearsalFakes(), async ({ handle }) => {
        const waiting = await waitForStatus(handle, gateWaiting('promote'), 'the promote gate');
        expect(waiting.gates[0]).toMatchObject({ approvers: ['bob'], required: 2 });
        expect(waiting.events.find((e) => e.kind === 'admitted')?.detail).toBe("started by a client; policy from the worker's config (signatures optional)");
        expect(await refusedUpdate(handle.executeUpdate(decideUpdate, { args: [{ gate: 'promote', approver: 'carol', decision: 'approve' }] }))).toBe("'carol' is not a configured person: add them under people: in the config");
        await handle.cancel();
      });
    });
  });

  it('a two-person gate of a child fed one approval at its parent waits for a second, different approver', async () => {
    const child = { rto: { budgetSeconds: 3600, onBreach: 'continue' as const }, gate: { escalateAfterSeconds: 600, timeoutSeconds: 1200, twoPerson: true }, compensationAttempts: 1 };
    const input = { run: rehearsalInput().run, gate: { escalateAfterSeconds: 600, timeoutSeconds: 1200 }, child };
    await withRun<typeof rehearsalParent>('parent-approval', 'rehearsalParent', [input], rehearsalFakes(), async ({ handle }) => {
      await waitForStatus(handle, gateWaiting('go'), 'the parent gate');
      await handle.executeUpdate(decideUpdate, { args: [{ gate: 'go', approver: 'bob', decision: 'approve', comment: 'go ahead' }] });
      const childHandle = client.workflow.getHandle(`${handle.workflowId}-child`);
      const waiting = await waitForStatus(childHandle, gateWaiting('promote'), 'the child gate');
      expect(waiting.gates[0]).toMatchObject({ required: 2, approvals: [expect.objectContaining({ by: 'bob', comment: `at gate go of ${handle.workflowId}: go ahead` })] });
      expect(waiting.events.find((e) => e.kind === 'admitted')?.detail).toBe(`started by rehearsalParent ${handle.workflowId} (a Lifeboat run of this worker); policy from the worker's config (signatures optional)`);
      expect(await refusedUpdate(childHandle.executeUpdate(decideUpdate, { args: [{ gate: 'promote', approver: 'bob', decision: 'approve' }] }))).toBe("'bob' already approved gate 'promote': a two-person gate needs a second, different approver");
      await expect(childHandle.executeUpdate(decideUpdate, { args: [{ gate: 'promote', approver: 'carol', decision: 'approve', comment: 'second pair of eyes' }] })).resolves.toMatchObject({ state: 'approved', decidedBy: 'bob + carol' });
      await expect(handle.result()).resolves.toMatchObject({ child: { changed: ['freeze', 'drain', 'promote', 'verify'] } });
    });
  });

  it('a pre-approval the parent no longer vouches for at the child’s gate (the parent ended) is set aside: a person decides', async () => {
    const drain = deferred<void>();
    const child = { rto: { budgetSeconds: 3600, onBreach: 'continue' as const }, gate: { escalateAfterSeconds: 600, timeoutSeconds: 1200 }, compensationAttempts: 1 };
    const input = { run: rehearsalInput().run, gate: { escalateAfterSeconds: 600, timeoutSeconds: 1200 }, child };
    await withRun<typeof rehearsalParent>('parent-withdrew', 'rehearsalParent', [input], rehearsalFakes({ change: { drain: () => heldOpen(drain.promise) } }), async ({ handle }) => {
      await waitForStatus(handle, gateWaiting('go'), 'the parent gate');
      await handle.executeUpdate(decideUpdate, { args: [{ gate: 'go', approver: 'bob', decision: 'approve' }] });
      const childHandle = client.workflow.getHandle(`${handle.workflowId}-child`);
      // Admitted with the parent's approval; before its gate opens, the parent is gone.
      await waitForStatus(childHandle, (st) => st.steps.some((x) => x.id === 'drain' && x.state === 'running'), 'the child draining');
      await handle.terminate('test: the parent is lost');
      drain.resolve();
      const waiting = await waitForStatus(childHandle, gateWaiting('promote'), 'the child gate');
      expect(waiting.gates[0]?.approvals).toEqual([]);
      expect(waiting.events.find((e) => e.kind === 'pre-approval-set-aside')?.detail).toBe(
        "gate promote: the approval by bob at the parent run's gate does not cover this: the parent run no longer vouches for it (the parent run has ended (terminated)); a person must approve here",
      );
      await childHandle.executeUpdate(decideUpdate, { args: [{ gate: 'promote', approver: 'carol', decision: 'approve' }] });
      await expect(childHandle.result()).resolves.toMatchObject({ changed: ['freeze', 'drain', 'promote', 'verify'] });
    });
  });

  it('with signatures required: an unsigned start, a start signed by someone else or altered after signing is refused', async () => {
    await underPolicy(signedPolicy, async () => {
      await withRun<typeof rehearsal>('unsigned-start', 'rehearsal', [rehearsalInput()], rehearsalFakes(), async ({ handle, calls }) => {
        expect(await refusalOf(handle)).toBe("refused: the run's input disagrees with the worker's policy (it may narrow it, never widen it): signatures: the worker requires signed decisions (approvals.signatures: required), the input says optional; this worker requires signed starts (approvals.signatures: required): start it with 'lifeboat start … --as alice --key <alice's private key>'");
        expect(calls.of('change')).toEqual([]);
      });
      const base = rehearsalInput({ run: { ...rehearsalInput().run, signatures: 'required' } });
      // carol is a commander too, but she signs as alice with her own key: not alice's signature.
      await withRun<typeof rehearsal>('start-as-another', 'rehearsal', [signed(base, nextId('start-as-another'), 'carol')], rehearsalFakes(), async ({ handle }) => {
        expect(await refusalOf(handle)).toMatch(/^refused: the start signature is not alice's signature of this start \(workflow kernel-start-as-another-\d+-\d+-run, rehearsal, this input\)/);
      });
      const altered = signed(base, nextId('altered-start'));
      await withRun<typeof rehearsal>('altered-start', 'rehearsal', [{ ...altered, rto: { budgetSeconds: 99999, onBreach: 'continue' } }], rehearsalFakes(), async ({ handle }) => {
        expect(await refusalOf(handle)).toMatch(/the input was altered$/);
      });
    });
  });

  it('with signatures required: a signed start runs; cancel and resolve must be signed by the operator', async () => {
    const base = rehearsalInput({ run: { ...rehearsalInput().run, signatures: 'required' } });
    await underPolicy(signedPolicy, async () => {
      const signedInput = signed(base, nextId('signed-cancel'));
      await withRun<typeof rehearsal>('signed-cancel', 'rehearsal', [signedInput], rehearsalFakes(), async ({ handle, calls }) => {
        const waiting = await waitForStatus(handle, gateWaiting('promote'), 'the promote gate');
        expect(waiting.events.find((e) => e.kind === 'admitted')?.detail).toBe("started by a client; policy from the worker's config (signatures required, start signed)");
        expect(await refusedUpdate(handle.executeUpdate(requestCancelUpdate, { args: [{ by: 'alice', reason: 'false alarm' }] }))).toBe('a cancel on this run must be signed (approvals.signatures: required): sign with --key <file>');
        const { runId } = await handle.describe();
        const wrong = signMessage(loadApprovalKey(keyOf('alice')), cancelMessage({ workflowId: handle.workflowId, runId, by: 'alice', reason: 'another reason' }));
        expect(await refusedUpdate(handle.executeUpdate(requestCancelUpdate, { args: [{ by: 'alice', reason: 'false alarm', signature: wrong }] }))).toBe("the signature is not alice's signature of this cancel: signed with another key, for another run or request, or altered");
        // A raw workflow cancel names nobody: ignored and recorded, the run still waits at its gate.
        await handle.cancel();
        const ignored = await waitForStatus(handle, (st) => st.events.some((e) => e.kind === 'cancel-requested' && e.detail.startsWith('cancel ignored')), 'the raw cancel to be ignored');
        expect(ignored.gates[0]?.state).toBe('waiting');
        expect(calls.of('undo')).toEqual([]);
        // The signed request alone rolls the run back.
        const signature = signMessage(loadApprovalKey(keyOf('alice')), cancelMessage({ workflowId: handle.workflowId, runId, by: 'alice', reason: 'false alarm' }));
        await expect(handle.executeUpdate(requestCancelUpdate, { args: [{ by: 'alice', reason: 'false alarm', signature }] })).resolves.toEqual({ accepted: true });
        await handle.result().catch(() => undefined);
        expect(undone(calls)).toEqual(['drain', 'freeze']);
        const status = await handle.query(statusQuery);
        expect(status.events.filter((e) => e.kind === 'decision-refused').map((e) => e.by)).toEqual(['alice', 'alice']);

        // The same signed start sent again (copied from the history) after the run ended: a signature starts one run.
        const replayed = await client.workflow.start<typeof rehearsal>('rehearsal', { taskQueue: handle.workflowId.replace(/-run$/, ''), workflowId: handle.workflowId, args: [signedInput] });
        expect(await refusalOf(client.workflow.getHandle(replayed.workflowId, replayed.firstExecutionRunId))).toMatch(/^refused: this signed start was already used by run [\w-]+ of kernel-signed-cancel-/);
        expect(calls.of('change')).toHaveLength(2);
      });

      const fakes = rehearsalFakes({
        change: { drain: async () => { throw ApplicationFailure.nonRetryable('the load balancer refused the change', 'DrainRefused'); } },
        undo: { freeze: async () => { throw ApplicationFailure.retryable('the write freeze is stuck', 'FreezeStuck'); } },
      });
      await withRun<typeof rehearsal>('signed-resolve', 'rehearsal', [signed(base, nextId('signed-resolve'))], fakes, async ({ handle }) => {
        const stuck = await waitForStatus(handle, (s) => s.state === 'needs-attention', 'needs-attention');
        expect(stuck.attention).toEqual({ id: 'freeze#1', step: 'freeze' });
        await handle.signal(resolveSignal, { by: 'erin', action: 'done-by-hand', comment: 'unfroze by hand', attention: 'freeze#1' });
        const refused = await waitForStatus(handle, (s) => kinds(s).includes('decision-refused'), 'the refused resolve');
        expect(refused.events.find((e) => e.kind === 'decision-refused')?.detail).toBe('resolve refused: a resolution on this run must be signed (approvals.signatures: required): sign with --key <file>');
        const { runId } = await handle.describe();
        const signature = signMessage(loadApprovalKey(keyOf('erin')), resolveMessage({ workflowId: handle.workflowId, runId, attention: 'freeze#1', action: 'done-by-hand', by: 'erin', comment: 'unfroze by hand' }));
        await handle.signal(resolveSignal, { by: 'erin', action: 'done-by-hand', comment: 'unfroze by hand', attention: 'freeze#1', signature });
        await failureOf(handle);
        const status = await handle.query(statusQuery);
        expect(status.state).toBe('rolled-back');
        expect(status.events.filter((e) => e.kind === 'resolved').map((e) => e.by)).toEqual(['erin']);
      });
    });
    expect(rawPublicKey(loadApprovalKey(keyOf('alice')))).toBe(publicKeys.alice);
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
      // One standby: the choice is that one.
      chooseStandby: async () => ({ target: 'standby', region: standby.region, candidates: [{ ...standby, priority: 0, reachable: true, inRecovery: true, streaming: true, eligible: true }], reason: `promote ${standby.region}`, nowhereAllowed: false }),
      followNewPrimary: async () => [],
      confirmPromotable: async () => undefined,
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
