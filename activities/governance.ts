/**
 * The admission activity: the worker's trusted policy for a run, and where the
 * run came from as the server records it (a Schedule that really started it, a
 * parent that is a Lifeboat run of this worker, and that parent's own record of
 * the gate decision a child was pre-approved with). Facts only: the workflow
 * judges them (contract/governance.ts), so the judgement replays.
 */
import { ApplicationFailure } from '@temporalio/common';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import type { AdmissionFacts, AdmissionRequest, PreApproval, RunOrigin, TrustedPolicy, VerifiedPreApproval } from '../contract/governance';
import { FailureType } from '../contract/failures';
import { sentinelStatusQuery, statusQuery, type RunbookStatus } from '../contract/runbook';
import { startDigest } from '../contract/approvals';
import { sentinelId } from '../contract/sentinel';

export interface GovernanceDependencies {
  /** The worker's policy for one runbook, from its own config. */
  policy(runbook: string): TrustedPolicy;
  /** Workflow types whose runs may start children and pre-approve them: the runbooks this worker runs. */
  runbookTypes: ReadonlySet<string>;
  /** schedules.initiator: who scheduled runs start as. */
  scheduleInitiator?: string;
  /**
   * The startDigest of the input the worker's own config schedules under `scheduleId` (what `schedules apply`
   * writes), or undefined for a Schedule the config does not ask for: only those vouch for a run.
   */
  scheduledInput?(scheduleId: string): string | undefined;
  /** How long to look for this run among the Schedule's actions (the scheduler records a start just after it). */
  scheduleLookupMs?: number;
  /** sentinels: in the worker's config: who its runs start as, and the policy of a watched target (undefined: not watched). */
  sentinels?: { identity: string; policyOf(target: import('../contract/sentinel').SentinelTarget): { policy: 'confirm' | 'auto' | 'notify'; vetoSeconds: number } | undefined };
}

/** How old a sentinel's declaration may be when the run it started is admitted. */
const DECLARATION_MAX_AGE_MS = 10 * 60_000;

export function createGovernanceActivities(deps: { governance?: GovernanceDependencies; client?: Client }) {
  const client = (): Client => {
    if (!deps.client) throw ApplicationFailure.nonRetryable("this worker has no Temporal client to check a run's Schedule or parent with", FailureType.NotConfigured);
    return deps.client;
  };
  return {
    /** The worker's policy for the run, and its origin as the server records it. */
    async admitRun(input: AdmissionRequest): Promise<AdmissionFacts> {
      const { governance } = deps;
      if (!governance) throw ApplicationFailure.nonRetryable('this worker has no trusted policy (config) to admit runs with', FailureType.NotConfigured);
      const policy = governance.policy(input.runbook);
      const signatureUsedBy = input.signedAt !== undefined ? await earlierRunSince(client(), input, input.signedAt) : undefined;
      if (signatureUsedBy) return { policy, origin: { kind: 'client' }, signatureUsedBy };
      if (input.scheduledBy !== undefined) {
        return { policy, origin: await scheduleOrigin(client(), governance, input, input.scheduledBy) };
      }
      if (input.trigger !== undefined && !input.parent) return { policy, origin: await sentinelOrigin(client(), governance, input) };
      if (!input.parent) return { policy, origin: { kind: 'client' } };
      const { origin, status } = await parentOrigin(client(), governance, input);
      if (!input.preApproval) return { policy, origin };
      if (!status) return { policy, origin, preApproval: { refused: origin.kind === 'parent' ? (origin.why ?? 'the parent is not verified') : 'no parent' } };
      return { policy, origin, preApproval: await confirmWithParent(client(), input, status, input.preApproval) };
    },
    /**
     * At the child's gate, whether its parent still vouches for the pre-approval it was admitted with: open,
     * waiting on this child, the gate still approved at that opening (a reset child replays its admission).
     */
    async confirmPreApproval(input: { parent: { workflowId: string; runId: string }; child: string; preApproval: VerifiedPreApproval }): Promise<{ refused?: string }> {
      const handle = client().workflow.getHandle(input.parent.workflowId, input.parent.runId);
      let description;
      try {
        description = await handle.describe();
      } catch (err) {
        if (err instanceof WorkflowNotFoundError) return { refused: 'the parent run is not on the server' };
        throw err;
      }
      if (description.status.name !== 'RUNNING') return { refused: `the parent run has ended (${description.status.name.toLowerCase()})` };
      const { preApproval: pre } = input;
      const verdict = checkPreApproval(input.parent.workflowId, await handle.query(statusQuery), { by: pre.approvers[0] ?? '?', at: pre.at, comment: pre.comment, parent: pre.parent, gate: pre.gate, nonce: pre.nonce }, input.child);
      return 'refused' in verdict ? { refused: verdict.refused } : {};
    },
  };
}

export type GovernanceActivities = ReturnType<typeof createGovernanceActivities>;

/** Another execution of this workflow id started since `since` (the server's visibility store), if any. */
async function earlierRunSince(client: Client, input: AdmissionRequest, since: string): Promise<string | undefined> {
  const t = Date.parse(since);
  if (Number.isNaN(t)) return undefined; // a signing time that is no time: admitRun refuses the signature itself
  const at = new Date(t - 1000).toISOString();
  const query = `WorkflowId = ${JSON.stringify(input.workflowId)} AND StartTime >= ${JSON.stringify(at)}`;
  for await (const run of client.workflow.list({ query })) {
    if (run.runId !== input.firstExecutionRunId) return run.runId;
  }
  return undefined;
}

/** A Schedule vouches for a run only if it exists, runs this workflow type and lists this very run among its actions. */
async function scheduleOrigin(client: Client, governance: GovernanceDependencies, input: AdmissionRequest, scheduleId: string): Promise<RunOrigin> {
  const refuse = (why: string): RunOrigin => ({ kind: 'schedule', scheduleId, verified: false, why });
  // Any client may create a Schedule: only one the worker's own config asks for, with the very input it schedules, vouches.
  const expected = governance.scheduledInput?.(scheduleId);
  if (expected === undefined) return refuse(`'${scheduleId}' is not a Schedule of this worker's config (schedules:)`);
  if (expected !== input.inputDigest) return refuse(`the run's input is not the one the worker's config schedules under '${scheduleId}' (the Schedule was changed outside 'lifeboat schedules apply')`);
  const deadline = Date.now() + (governance.scheduleLookupMs ?? 20_000);
  for (;;) {
    let description;
    try {
      description = await client.schedule.getHandle(scheduleId).describe();
    } catch (err) {
      return refuse(`no Schedule '${scheduleId}' on the server (${(err as Error).message})`);
    }
    const action = description.action;
    if (action.type !== 'startWorkflow' || action.workflowType !== input.workflowType) {
      return refuse(`Schedule '${scheduleId}' starts ${action.type === 'startWorkflow' ? action.workflowType : action.type}, not ${input.workflowType}`);
    }
    const started = [...description.info.runningActions, ...description.info.recentActions.map((a) => a.action)];
    if (started.some((a) => a.workflow.workflowId === input.workflowId && a.workflow.firstExecutionRunId === input.firstExecutionRunId)) {
      return { kind: 'schedule', scheduleId, verified: true, initiator: governance.scheduleInitiator };
    }
    if (Date.now() > deadline) return refuse(`Schedule '${scheduleId}' did not start ${input.workflowId} (run ${input.firstExecutionRunId}): it is not among its actions`);
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

/**
 * A sentinel vouches for a run only if the worker's config has sentinels watching the run's target, the
 * workflow the trigger names is that target's sentinel (its id, type sentinel, open, on this task queue),
 * and it recorded this declaration, unused by any other run, a few minutes ago at most, with these votes.
 */
/** How long admission waits for the sentinel to record the run its start created (its start call returning). */
const SENTINEL_RECORD_WAIT_MS = 20_000;

async function sentinelOrigin(client: Client, governance: GovernanceDependencies, input: AdmissionRequest): Promise<RunOrigin> {
  const trigger = input.trigger as NonNullable<AdmissionRequest['trigger']>;
  const base = { kind: 'sentinel' as const, workflowId: String(trigger.sentinel) };
  const refuse = (why: string): RunOrigin => ({ ...base, verified: false, why });
  const sentinels = governance.sentinels;
  if (!sentinels) return refuse('this worker\'s config has no sentinels:');
  const target = trigger.target;
  const watched = typeof target === 'object' && target !== null ? sentinels.policyOf(target) : undefined;
  if (!watched) return refuse('the worker\'s config does not watch that target');
  if (trigger.sentinel !== sentinelId(target)) return refuse(`${String(trigger.sentinel)} is not the sentinel of that target (${sentinelId(target)})`);
  const named = target.kind === 'database' ? target.database : target.region;
  if (input.target !== named) return refuse(`the declaration is for ${named}, this run acts on ${input.target ?? '?'}`);
  const expectedType = target.kind === 'database' ? 'dbPromotion' : 'regionalEvacuation';
  if (input.workflowType !== expectedType) return refuse(`a declared failure of ${named} starts ${expectedType}, not ${input.workflowType}`);
  let description;
  try {
    description = await client.workflow.getHandle(trigger.sentinel).describe();
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return refuse('no such sentinel on the server');
    throw err;
  }
  if (description.type !== 'sentinel') return refuse(`${trigger.sentinel} is a ${description.type}, not a sentinel`);
  if (description.status.name !== 'RUNNING') return refuse(`the sentinel is not running (${description.status.name.toLowerCase()})`);
  if (description.taskQueue !== input.taskQueue) return refuse(`the sentinel runs on task queue ${description.taskQueue}, not this worker's ${input.taskQueue}`);
  const handle = client.workflow.getHandle(trigger.sentinel, description.runId);
  const find = async () => (await handle.query(sentinelStatusQuery)).declarations.find((d) => d.declaration === trigger.declaration);
  let declared = await find();
  if (!declared) return refuse(`the sentinel has no declaration ${trigger.declaration}`);
  const { declaration: _id, ...given } = trigger;
  if (startDigest(declared.trigger) !== startDigest(given)) return refuse('the run\'s votes are not the ones the sentinel declared');
  // The sentinel records the run it started once its start returns: until then the declaration is no one's.
  // Only the run the sentinel itself started (this id, this first run) is vouched for; a refused start vouches for none.
  for (let waited = 0; declared && declared.workflowId === undefined && declared.refused === undefined && waited < SENTINEL_RECORD_WAIT_MS; waited += 250) {
    await new Promise((resolve) => setTimeout(resolve, 250));
    declared = await find();
  }
  if (!declared) return refuse(`the sentinel no longer holds declaration ${trigger.declaration}`);
  if (declared.refused !== undefined) return refuse(`the sentinel's own start on that declaration was refused (${declared.refused}): it started no run`);
  if (declared.workflowId === undefined) return refuse(`the sentinel has not recorded a run for that declaration within ${SENTINEL_RECORD_WAIT_MS / 1000} s: it did not start this one`);
  if (declared.workflowId !== input.workflowId || declared.firstExecutionRunId !== input.firstExecutionRunId) {
    return refuse(`that declaration started another run (${declared.workflowId} ${declared.firstExecutionRunId ?? ''}): one declaration starts one run, the sentinel's own`);
  }
  if (Date.now() - Date.parse(declared.trigger.declaredAt) > DECLARATION_MAX_AGE_MS) return refuse(`the declaration is from ${declared.trigger.declaredAt}, more than 10 minutes ago`);
  return { ...base, verified: true, initiator: sentinels.identity, policy: watched.policy, vetoSeconds: watched.vetoSeconds };
}

/** A parent vouches for a child only if it is an open run of one of this worker's runbooks; its status says who started it. */
async function parentOrigin(client: Client, governance: GovernanceDependencies, input: AdmissionRequest): Promise<{ origin: RunOrigin; status?: RunbookStatus }> {
  const parent = input.parent as NonNullable<AdmissionRequest['parent']>;
  const base = { kind: 'parent' as const, workflowId: parent.workflowId };
  if (parent.namespace !== input.namespace) return { origin: { ...base, verified: false, why: `the parent runs in namespace ${parent.namespace}, not ${input.namespace}` } };
  let description;
  try {
    description = await client.workflow.getHandle(parent.workflowId, parent.runId).describe();
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return { origin: { ...base, verified: false, why: 'the parent run is not on the server' } };
    throw err;
  }
  const workflowType = description.type;
  if (!governance.runbookTypes.has(workflowType)) {
    return { origin: { ...base, workflowType, verified: false, why: `the parent is a ${workflowType}, not a runbook of this worker` } };
  }
  if (description.status.name !== 'RUNNING') return { origin: { ...base, workflowType, verified: false, why: `the parent run has ended (${description.status.name.toLowerCase()})` } };
  // A workflow type is only a name: a parent on another task queue is served by someone else's worker.
  if (description.taskQueue !== input.taskQueue) return { origin: { ...base, workflowType, verified: false, why: `the parent runs on task queue ${description.taskQueue}, not this worker's ${input.taskQueue}` } };
  const status = await client.workflow.getHandle(parent.workflowId, parent.runId).query(statusQuery);
  return { origin: { ...base, workflowType, verified: true, initiator: status.initiator }, status };
}

/**
 * The parent lists a child as running once it has seen the child start, which may come just after the child's
 * first task: ask again for a few seconds before concluding the parent does not wait on this run.
 */
async function confirmWithParent(client: Client, input: AdmissionRequest, first: RunbookStatus, pre: PreApproval): Promise<{ verified: VerifiedPreApproval } | { refused: string }> {
  const parent = input.parent as NonNullable<AdmissionRequest['parent']>;
  const deadline = Date.now() + 10_000;
  let status = first;
  for (;;) {
    const listed = status.children.some((c) => c.workflowId === input.workflowId && c.state === 'running');
    if (listed || Date.now() > deadline) return checkPreApproval(parent.workflowId, status, pre, input.workflowId);
    await new Promise((resolve) => setTimeout(resolve, 300));
    status = await client.workflow.getHandle(parent.workflowId, parent.runId).query(statusQuery);
  }
}

/** The parent's own record of the gate: approved, this opening, at this time; its approvers (and comment) are the ones the child counts. */
function checkPreApproval(parent: string, status: RunbookStatus, pre: PreApproval, child: string): { verified: VerifiedPreApproval } | { refused: string } {
  if (pre.parent !== undefined && pre.parent !== parent) return { refused: `it names ${pre.parent} as its parent, but the run's parent is ${parent}` };
  // The parent must be waiting on this very child now (an approval is not reusable by a reset or a later run).
  if (!status.children.some((c) => c.workflowId === child && c.state === 'running')) return { refused: `the parent ${parent} does not list ${child} among its running children` };
  const gate = pre.gate !== undefined ? status.gates.find((g) => g.id === pre.gate) : status.gates.find((g) => g.state === 'approved' && g.decidedAt === pre.at);
  if (!gate) return { refused: `the parent ${parent} has no gate ${pre.gate ?? `approved at ${pre.at}`}` };
  if (gate.state !== 'approved') return { refused: `gate ${gate.id} of ${parent} is ${gate.state}, not approved` };
  if (pre.nonce !== undefined && gate.nonce !== pre.nonce) return { refused: `gate ${gate.id} of ${parent} was approved at another opening (${gate.nonce ?? '?'}, not ${pre.nonce})` };
  if (gate.decidedAt !== pre.at) return { refused: `gate ${gate.id} of ${parent} was decided at ${gate.decidedAt ?? '?'}, not ${pre.at}` };
  const approvers = [...new Set(gate.approvals.map((a) => a.by))];
  return { verified: { parent, gate: gate.id, nonce: gate.nonce, at: pre.at, comment: gate.comment ?? '', approvers: approvers.length > 0 ? approvers : (gate.decidedBy?.split(' + ') ?? []) } };
}
