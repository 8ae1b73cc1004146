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
import { statusQuery, type RunbookStatus } from '../contract/runbook';

export interface GovernanceDependencies {
  /** The worker's policy for one runbook, from its own config. */
  policy(runbook: string): TrustedPolicy;
  /** Workflow types whose runs may start children and pre-approve them: the runbooks this worker runs. */
  runbookTypes: ReadonlySet<string>;
  /** schedules.initiator: who scheduled runs start as. */
  scheduleInitiator?: string;
  /** How long to look for this run among the Schedule's actions (the scheduler records a start just after it). */
  scheduleLookupMs?: number;
}

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
      if (input.scheduledBy !== undefined) {
        return { policy, origin: await scheduleOrigin(client(), governance, input, input.scheduledBy) };
      }
      if (!input.parent) return { policy, origin: { kind: 'client' } };
      const { origin, status } = await parentOrigin(client(), governance, input.parent);
      if (!input.preApproval) return { policy, origin };
      if (!status) return { policy, origin, preApproval: { refused: origin.kind === 'parent' ? (origin.why ?? 'the parent is not verified') : 'no parent' } };
      return { policy, origin, preApproval: checkPreApproval(input.parent.workflowId, status, input.preApproval) };
    },
  };
}

export type GovernanceActivities = ReturnType<typeof createGovernanceActivities>;

/** A Schedule vouches for a run only if it exists, runs this workflow type and lists this very run among its actions. */
async function scheduleOrigin(client: Client, governance: GovernanceDependencies, input: AdmissionRequest, scheduleId: string): Promise<RunOrigin> {
  const refuse = (why: string): RunOrigin => ({ kind: 'schedule', scheduleId, verified: false, why });
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

/** A parent vouches for a child only if it is an open run of one of this worker's runbooks; its status says who started it. */
async function parentOrigin(client: Client, governance: GovernanceDependencies, parent: { workflowId: string; runId: string }): Promise<{ origin: RunOrigin; status?: RunbookStatus }> {
  const base = { kind: 'parent' as const, workflowId: parent.workflowId };
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
  const status = await client.workflow.getHandle(parent.workflowId, parent.runId).query(statusQuery);
  return { origin: { ...base, workflowType, verified: true, initiator: status.initiator }, status };
}

/** The parent's own record of the gate: approved, this opening, at this time; its approvers (and comment) are the ones the child counts. */
function checkPreApproval(parent: string, status: RunbookStatus, pre: PreApproval): { verified: VerifiedPreApproval } | { refused: string } {
  if (pre.parent !== undefined && pre.parent !== parent) return { refused: `it names ${pre.parent} as its parent, but the run's parent is ${parent}` };
  const gate = pre.gate !== undefined ? status.gates.find((g) => g.id === pre.gate) : status.gates.find((g) => g.state === 'approved' && g.decidedAt === pre.at);
  if (!gate) return { refused: `the parent ${parent} has no gate ${pre.gate ?? `approved at ${pre.at}`}` };
  if (gate.state !== 'approved') return { refused: `gate ${gate.id} of ${parent} is ${gate.state}, not approved` };
  if (pre.nonce !== undefined && gate.nonce !== pre.nonce) return { refused: `gate ${gate.id} of ${parent} was approved at another opening (${gate.nonce ?? '?'}, not ${pre.nonce})` };
  if (gate.decidedAt !== pre.at) return { refused: `gate ${gate.id} of ${parent} was decided at ${gate.decidedAt ?? '?'}, not ${pre.at}` };
  const approvers = [...new Set(gate.approvals.map((a) => a.by))];
  return { verified: { parent, gate: gate.id, nonce: gate.nonce, at: pre.at, comment: gate.comment ?? '', approvers: approvers.length > 0 ? approvers : (gate.decidedBy?.split(' + ') ?? []) } };
}
