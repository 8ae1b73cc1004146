/**
 * Reads a target's hold from the Temporal server: who holds it, whether its
 * members still run, where the holder stands, and whether a run may join it. Used by the hold activities
 * (inside runs) and by `lifeboat start` (to refuse early, with the same words).
 */
import { WorkflowNotFoundError, type Client, type WorkflowExecutionDescription } from '@temporalio/client';
import {
  describeTarget,
  holdQuery,
  holdWorkflowId,
  memberChain,
  sameMember,
  TARGET_HOLD_WORKFLOW_TYPE,
  type HoldInspection,
  type HoldMember,
  type JoinDecision,
  type JoinVerdict,
  type TargetRef,
} from '../contract/holds';
import { isFinalState, statusQuery, type RunbookStatus } from '../contract/runbook';

/**
 * The open run of `member`'s chain, as the server says; undefined when the chain has ended (a missing
 * run has ended). A reset or continued member is open under its new run id; a later run that merely
 * reuses the workflow id starts a chain of its own and is not the member.
 */
export async function openRunOf(client: Client, member: HoldMember): Promise<string | undefined> {
  const description = await describeRun(client, member.workflowId);
  if (description?.status.name !== 'RUNNING') return undefined;
  const firstRunId = description.raw.workflowExecutionInfo?.firstRunId;
  // A server that does not report the chain: only the member's own run counts (a reset of it reads as ended).
  if (!firstRunId) return description.runId === member.runId ? description.runId : undefined;
  return firstRunId === memberChain(member) ? description.runId : undefined;
}

/** The members whose chain still runs, as the server says. */
export async function openMembers(client: Client, members: readonly HoldMember[]): Promise<HoldMember[]> {
  const open: HoldMember[] = [];
  for (const member of members) if (await openRunOf(client, member)) open.push(member);
  return open;
}

/**
 * May `joiner` join a hold of `members`? Only when the server records its parent execution as a
 * member whose chain still runs: the kernel's child runs (their parent is the holder or a member) and
 * a child a member adds itself. Whoever sent the signal, the answer is the server's, never the signal's.
 */
export async function admission(client: Client, members: readonly HoldMember[], joiner: HoldMember): Promise<JoinVerdict> {
  const run = await describeRun(client, joiner.workflowId, joiner.runId);
  if (!run) return { refused: `${joiner.workflowId} (run ${joiner.runId}) is no run the server knows` };
  // A hold is its claimant's child too: let in, it would keep itself (or another target's hold) alive.
  if (run.type === TARGET_HOLD_WORKFLOW_TYPE) return { refused: `${joiner.workflowId} is a hold, never a member` };
  const member = chainOf(run);
  if (!(await openRunOf(client, member))) return { refused: `${joiner.workflowId} has ended` };
  const parent = run.raw.workflowExecutionInfo?.parentExecution;
  if (!parent?.workflowId || !parent.runId) return { refused: `${joiner.workflowId} was not started by a run (it has no parent)` };
  const parentRun = await describeRun(client, parent.workflowId, parent.runId);
  const via = parentRun && members.find((m) => sameMember(m, chainOf(parentRun)));
  if (!via) return { refused: `its parent ${parent.workflowId} is not a member of this hold` };
  if (!(await openRunOf(client, via))) return { refused: `its parent ${parent.workflowId} has ended` };
  return { admitted: member };
}

/** What `target`'s hold decided about `joiner`; undefined while it has not decided. */
export async function joinDecision(client: Client, target: TargetRef, joiner: HoldMember): Promise<JoinDecision | undefined> {
  const hold = await describeRun(client, holdWorkflowId(target));
  if (hold?.status.name !== 'RUNNING') return { admitted: false, reason: `the hold on ${describeTarget(target)} has ended` };
  const state = await client.workflow.getHandle(hold.workflowId, hold.runId).query(holdQuery);
  if (state.members.some((m) => sameMember(m, joiner))) return { admitted: true };
  const turnedAway = state.turnedAway?.findLast((t) => t.joiner.workflowId === joiner.workflowId && t.joiner.runId === joiner.runId);
  return turnedAway ? { admitted: false, reason: turnedAway.reason } : undefined;
}

/** A run's description; undefined when the server knows no such run. Without `runId`, the current run of the id. */
async function describeRun(client: Client, workflowId: string, runId?: string): Promise<WorkflowExecutionDescription | undefined> {
  try {
    return await client.workflow.getHandle(workflowId, runId).describe();
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return undefined;
    throw err;
  }
}

/** A described run as a hold member: its chain as the server records it. */
function chainOf(run: WorkflowExecutionDescription): HoldMember {
  return { workflowId: run.workflowId, runId: run.runId, firstExecutionRunId: run.raw.workflowExecutionInfo?.firstRunId || run.runId };
}

/**
 * Inspects `target`'s hold. A hold whose members have all ended (a holder
 * terminated before the hold noticed) is free; with `endOrphan` (a run about
 * to claim it) it is ended here, so it never outlives them.
 */
export async function inspectHold(client: Client, target: TargetRef, options: { endOrphan: boolean }): Promise<HoldInspection> {
  const name = describeTarget(target);
  const description = await describeRun(client, holdWorkflowId(target));
  if (description?.status.name !== 'RUNNING') return { state: 'free', description: `${name} is free` };
  // This run of the hold, by its run id: a newer hold claimed meanwhile must never be read or ended for this one.
  const run = client.workflow.getHandle(holdWorkflowId(target), description.runId);
  const hold = await run.query(holdQuery);
  const open: HoldMember[] = [];
  const statuses: (RunbookStatus | undefined)[] = [];
  let holderStatus: RunbookStatus | undefined;
  for (const member of hold.members) {
    const openRun = await openRunOf(client, member);
    if (!openRun) continue;
    // Its status from its open run: after a reset that is not the run that claimed or joined.
    const status = await runStatus(client, member.workflowId, openRun);
    open.push(member);
    statuses.push(status);
    if (sameMember(member, hold.holder)) holderStatus = status;
  }
  if (open.length === 0) {
    if (!options.endOrphan) return { state: 'free', description: `${name} is free (its last holder ${hold.holder.workflowId} has ended)` };
    await run.terminate(`every member of the hold on ${name} has ended`).catch((err: unknown) => {
      if (!(err instanceof WorkflowNotFoundError)) throw err;
    });
    return { state: 'free', description: `${name} is free (its last holder ${hold.holder.workflowId} had ended)` };
  }
  const claimedBy = description.raw.workflowExecutionInfo?.parentExecution;
  const where = open.some((m) => sameMember(m, hold.holder)) ? phase(holderStatus) : `ended; still held by ${open.map((m) => m.workflowId).join(', ')}`;
  return {
    state: 'held',
    holder: hold.holder,
    members: open,
    // Each member's own word (a query of its run), not a release signal anyone may send.
    ...(statuses.every((s) => s !== undefined && isFinalState(s.state)) ? { closing: true } : {}),
    ...(claimedBy?.workflowId && claimedBy.runId ? { claimedBy: { workflowId: claimedBy.workflowId, runId: claimedBy.runId } } : {}),
    description: `${name} is held by ${hold.holder.workflowId} (${hold.holder.initiator}, started ${clock(hold.holder.startedAt)}, ${where})`,
  };
}

/** A run's runbook status; undefined when it does not answer (not a runbook run, or no worker). */
async function runStatus(client: Client, workflowId: string, runId: string): Promise<RunbookStatus | undefined> {
  try {
    return await client.workflow.getHandle(workflowId, runId).query(statusQuery);
  } catch {
    return undefined;
  }
}

function phase(status: RunbookStatus | undefined): string {
  if (!status) return 'running';
  if (status.state === 'waiting-approval') return `waiting at ${status.phase}`;
  return `${status.state} at ${status.phase}`;
}

/** `21:02 UTC` today, else the date too: what a commander reads at a glance. */
function clock(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const hhmm = d.toISOString().slice(11, 16);
  const today = new Date().toISOString().slice(0, 10) === d.toISOString().slice(0, 10);
  return today ? `${hhmm} UTC` : `${d.toISOString().slice(0, 10)} ${hhmm} UTC`;
}
