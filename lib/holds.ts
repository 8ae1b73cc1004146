/**
 * Reads a target's hold from the Temporal server: who holds it, whether its
 * members still run, and where the holder stands. Used by the hold activities
 * (inside runs) and by `lifeboat start` (to refuse early, with the same words).
 */
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { describeTarget, holdQuery, holdWorkflowId, memberChain, sameMember, type HoldInspection, type HoldMember, type TargetRef } from '../contract/holds';
import { isFinalState, statusQuery, type RunbookStatus } from '../contract/runbook';

/**
 * The open run of `member`'s chain, as the server says; undefined when the chain has ended (a missing
 * run has ended). A reset or continued member is open under its new run id; a later run that merely
 * reuses the workflow id starts a chain of its own and is not the member.
 */
export async function openRunOf(client: Client, member: HoldMember): Promise<string | undefined> {
  let description;
  try {
    description = await client.workflow.getHandle(member.workflowId).describe();
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return undefined;
    throw err;
  }
  if (description.status.name !== 'RUNNING') return undefined;
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
 * Inspects `target`'s hold. A hold whose members have all ended (a holder
 * terminated before the hold noticed) is free; with `endOrphan` (a run about
 * to claim it) it is ended here, so it never outlives them.
 */
export async function inspectHold(client: Client, target: TargetRef, options: { endOrphan: boolean }): Promise<HoldInspection> {
  const name = describeTarget(target);
  const handle = client.workflow.getHandle(holdWorkflowId(target));
  let description;
  try {
    description = await handle.describe();
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return { state: 'free', description: `${name} is free` };
    throw err;
  }
  if (description.status.name !== 'RUNNING') return { state: 'free', description: `${name} is free` };
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
