/**
 * What the CLI does to runs, over a Temporal client: start, decide a gate,
 * read the status, cancel, resolve. Every refusal becomes a RunRefusedError
 * whose message says why and what to do.
 */
import {
  WorkflowExecutionAlreadyStartedError,
  WorkflowFailedError,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  WorkflowUpdateRPCTimeoutOrCancelledError,
  type Client,
  type WorkflowHandle,
  type WorkflowHandleWithFirstExecutionRunId,
  type WorkflowStartOptions,
} from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { LoadedConfig } from '../config/load';
import { FailureType } from '../contract/failures';
import {
  decideUpdate,
  requestCancelUpdate,
  resolveSignal,
  statusQuery,
  type DecideResult,
  type ResolveRequest,
  type RunbookStatus,
  type RunContext,
  ROLE_SETS,
} from '../contract/runbook';
import type { AnyRunbookDefinition, WorkflowOf } from '../contract/definition';
import { planStart, plannedHolds, requirePerson, runMemo, type PlannedStartOf, type StartRequest } from './start';
import { inspectHold } from '../lib/holds';
import { loadApprovalKey, signApproval, signMessage } from '../lib/approval-keys';
import { cancelMessage, resolveMessage, startDigest, startMessage } from '../contract/approvals';
import { runUrl, temporalTarget } from '../lib/temporal';
import { GiveUp, waitFor } from '../lib/processes';

/** A command that Temporal or the run refused; the message is for the person at the keyboard. */
export class RunRefusedError extends Error {
  override readonly name = 'RunRefusedError';
}

export interface StartedRun {
  workflowId: string;
  runId: string;
  url: string;
}

export async function startRun(client: Client, loaded: LoadedConfig, request: StartRequest): Promise<StartedRun> {
  const target = temporalTarget(loaded);
  // A sentinel's start carries no key: its run is vouched for by the sentinel at admission instead (activities/governance.ts).
  if (request.trigger === undefined) requireKeyWhenSigning(loaded, request.keyFile, 'a start');
  const plan = signStart(planStart(loaded, { ...request, uiUrl: request.uiUrl ?? target.uiUrl }), request.keyFile);
  await enforceCooldown(client, loaded, request, plan.workflowId);
  // The run claims its targets itself (whatever starts it); asking first gives the commander the holder's name at once.
  for (const hold of plannedHolds(plan)) {
    const held = await inspectHold(client, hold, { endOrphan: false });
    // A hold whose members are closing is the run's to wait for: it claims once they have closed.
    if (held.state === 'held' && !held.closing) throw new RunRefusedError(`${held.description}: nothing was started; wait for that run to end, or cancel it`);
  }
  try {
    const options = {
      taskQueue: target.taskQueue,
      workflowId: plan.workflowId,
      typedSearchAttributes: plan.searchAttributes,
      memo: runMemo(plan, request.runbook),
      staticSummary: plan.staticSummary,
      staticDetails: plan.staticDetails,
      // One run per business key: a second run on the same target is refused while one runs.
      workflowIdConflictPolicy: 'FAIL',
      workflowIdReusePolicy: 'ALLOW_DUPLICATE',
    } as const;
    // Each runbook's module built `plan` as a PlannedStartOf its definition; the union is started as any of them.
    const handle = await startPlanned<AnyRunbookDefinition>(client, plan, options);
    return { workflowId: handle.workflowId, runId: handle.firstExecutionRunId, url: runUrl(target, handle.workflowId, handle.firstExecutionRunId) };
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError) {
      throw new RunRefusedError(`a run with id '${plan.workflowId}' is already running: see 'lifeboat status ${plan.workflowId}' (a run with another --id would be refused too: the running one holds its targets)`);
    }
    throw err;
  }
}

/** With approvals.signatures required the worker refuses unsigned commands: say so before sending one. */
function requireKeyWhenSigning(loaded: LoadedConfig, keyFile: string | undefined, what: string): void {
  if (keyFile === undefined && loaded.config.approvals.signatures === 'required') {
    throw new RunRefusedError(`${what} must be signed (approvals.signatures: required in ${loaded.file}): pass --key <your private key file> or set LIFEBOAT_APPROVAL_KEY`);
  }
}

/**
 * Signs the start as its initiator: the signature covers the whole input (but itself) and the workflow id and
 * type, so the run verifies who started it and that nothing in its input was changed on the way.
 */
export function signStart<P extends PlannedStartOf<AnyRunbookDefinition>>(plan: P, keyFile: string | undefined, now = new Date()): P {
  if (keyFile === undefined) return plan;
  const key = loadApprovalKey(keyFile);
  // Every runbook's input carries the run's context under `run` (contract/definition.ts).
  const given = plan.input as { run: RunContext };
  const input = { ...given, run: { ...given.run, signedAt: now.toISOString() } };
  const inputDigest = startDigest(input);
  const startSignature = signMessage(key, startMessage({ workflowId: plan.workflowId, workflowType: plan.workflowType, initiator: input.run.initiator, inputDigest }));
  return { ...plan, input: { ...input, run: { ...input.run, startSignature } } };
}

/**
 * Starts a planned run typed by its runbook's definition: the input is the one its workflow takes
 * (test/contract/registry.typecheck.ts checks every registered workflow has that signature), and the
 * CLI never imports workflow code.
 */
export function startPlanned<D extends AnyRunbookDefinition>(client: Client, plan: PlannedStartOf<D>, options: Omit<WorkflowStartOptions<WorkflowOf<D>>, 'args'>): Promise<WorkflowHandleWithFirstExecutionRunId<WorkflowOf<D>>> {
  const args: Parameters<WorkflowOf<D>> = [plan.input];
  return client.workflow.start<WorkflowOf<D>>(plan.workflowType, { ...options, args });
}

/**
 * A run on the same target that ended less than `cooldownMinutes` ago blocks a new one, unless an
 * admin passes --force: two evacuations of one region in a row are more often a mistake than a need.
 */
async function enforceCooldown(client: Client, loaded: LoadedConfig, request: StartRequest, workflowId: string): Promise<void> {
  const runbooks: Record<string, { cooldownMinutes: number } | undefined> = loaded.config.runbooks;
  const minutes = (Object.hasOwn(runbooks, request.runbook) ? runbooks[request.runbook] : undefined)?.cooldownMinutes ?? 0;
  if (minutes <= 0) return;
  if (request.force) {
    requirePerson(loaded, request.as, ROLE_SETS.overrideCooldown, 'override a cooldown (--force)');
    return;
  }
  // describe() reads the latest run of the id from the history store: unlike visibility, never stale.
  let last;
  try {
    last = await client.workflow.getHandle(workflowId).describe();
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return;
    throw err;
  }
  if (last.status.name === 'RUNNING' || !last.closeTime) return; // the conflict policy refuses it with its own message
  if (Date.now() - last.closeTime.getTime() < minutes * 60_000) {
    // A run refused or skipped at its claim changed nothing: it starts no cooldown.
    if (await changedNothing(client, workflowId, last.runId)) return;
    throw new RunRefusedError(
      `${workflowId} last ran until ${last.closeTime.toISOString()} (${last.status.name.toLowerCase()}), within the ${minutes}-minute cooldown: an admin may start it anyway with --force`,
    );
  }
}

/** Whether a closed run ended before changing anything: refused (TargetHeld, RunRefused) or skipped (a drill that found its target held). */
async function changedNothing(client: Client, workflowId: string, runId: string): Promise<boolean> {
  try {
    const result: unknown = await client.workflow.getHandle(workflowId, runId).result();
    return typeof result === 'object' && result !== null && 'skipped' in result;
  } catch (err) {
    const type = err instanceof WorkflowFailedError && err.cause instanceof ApplicationFailure ? err.cause.type : undefined;
    return type === FailureType.TargetHeld || type === FailureType.RunRefused;
  }
}

/** A handle to an open run, or a clear refusal for an unknown id or an ended run. */
async function openRun(client: Client, workflowId: string, action: string): Promise<WorkflowHandle> {
  const handle = client.workflow.getHandle(workflowId);
  const description = await describeOrRefuse(client, workflowId);
  if (description.status.name !== 'RUNNING') {
    throw new RunRefusedError(`run '${workflowId}' has already ended (${description.status.name.toLowerCase()}): nothing to ${action}`);
  }
  return handle;
}

async function describeOrRefuse(client: Client, workflowId: string) {
  try {
    return await client.workflow.getHandle(workflowId).describe();
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) {
      throw new RunRefusedError(`no run with id '${workflowId}' in namespace '${client.options.namespace}': check the id ('lifeboat status' prints it at start)`);
    }
    throw err;
  }
}

export interface DecideCommand {
  workflowId: string;
  gate: string;
  as?: string;
  comment?: string;
  decision: 'approve' | 'reject';
  /** The approver's Ed25519 private key (PEM): the decision is signed with it. */
  keyFile?: string;
}

export async function decideGate(client: Client, loaded: LoadedConfig, command: DecideCommand): Promise<DecideResult> {
  const approver = requirePerson(loaded, command.as, ROLE_SETS.decide, `${command.decision} a gate`);
  if (command.decision === 'reject' && !command.comment?.trim()) throw new RunRefusedError('a rejection needs --reason');
  const handle = await openRun(client, command.workflowId, command.decision);
  let signature: string | undefined;
  let nonce: string | undefined;
  if (command.keyFile) {
    // Sign what the run will verify: this run, this gate's current opening, this decision.
    const key = loadApprovalKey(command.keyFile);
    const gate = (await handle.query(statusQuery)).gates.find((g) => g.id === command.gate);
    if (!gate?.nonce || gate.state !== 'waiting') throw new RunRefusedError(`gate '${command.gate}' of ${command.workflowId} is not waiting: nothing to sign`);
    nonce = gate.nonce;
    signature = signApproval(key, { workflowId: command.workflowId, gate: command.gate, nonce, decision: command.decision, approver, comment: command.comment ?? '' });
  }
  try {
    return await handle.executeUpdate(decideUpdate, {
      args: [{ gate: command.gate, approver, comment: command.comment, decision: command.decision, ...(signature ? { signature, nonce } : {}) }],
    });
  } catch (err) {
    throw refusal(err, command.workflowId);
  }
}

export async function cancelRun(client: Client, loaded: LoadedConfig, workflowId: string, as: string | undefined, reason: string, keyFile?: string): Promise<void> {
  const by = requirePerson(loaded, as, ROLE_SETS.operate, 'cancel a run');
  if (!reason.trim()) throw new RunRefusedError('a cancel needs --reason');
  requireKeyWhenSigning(loaded, keyFile, 'a cancel');
  const handle = await openRun(client, workflowId, 'cancel');
  // Bound to this execution of the run: the signature is worthless for a later run with the same id.
  const runId = keyFile ? (await describeOrRefuse(client, workflowId)).runId : undefined;
  const signature = keyFile && runId ? signMessage(loadApprovalKey(keyFile), cancelMessage({ workflowId, runId, by, reason })) : undefined;
  try {
    // Recorded (and checked) by the run first, then the cancellation that runs the undos.
    await handle.executeUpdate(requestCancelUpdate, { args: [{ by, reason, ...(signature ? { signature } : {}) }] });
  } catch (err) {
    throw refusal(err, workflowId);
  }
  await handle.cancel();
}

export async function resolveRun(
  client: Client,
  loaded: LoadedConfig,
  workflowId: string,
  request: Pick<ResolveRequest, 'action' | 'comment'> & { as?: string; keyFile?: string },
): Promise<RunbookStatus> {
  const by = requirePerson(loaded, request.as, ROLE_SETS.operate, 'resolve a run');
  requireKeyWhenSigning(loaded, request.keyFile, 'a resolution');
  const handle = await openRun(client, workflowId, 'resolve');
  const before = await handle.query(statusQuery);
  if (before.state !== 'needs-attention') throw new RunRefusedError(`run '${workflowId}' is ${before.state}, not needs-attention: nothing to resolve`);
  const resolvedBefore = before.events.filter((e) => e.kind === 'resolved').length;
  const attention = before.attention?.id;
  let signature: string | undefined;
  if (request.keyFile) {
    // Bound to this run's execution and to the failed undo it waits on now.
    const { runId } = await describeOrRefuse(client, workflowId);
    signature = signMessage(loadApprovalKey(request.keyFile), resolveMessage({ workflowId, runId, attention: attention ?? '', action: request.action, by, comment: request.comment }));
  }
  await handle.signal(resolveSignal, { by, comment: request.comment, action: request.action, ...(attention ? { attention } : {}), ...(signature ? { signature } : {}) });
  // A signal has no answer: wait until the run records it (or refuses it) before reporting.
  return waitFor(
    `run '${workflowId}' to record the resolution`,
    async () => {
      const status = await handle.query(statusQuery);
      const refused = status.events.slice(before.events.length).find((e) => e.kind === 'decision-refused' && e.by === by);
      if (refused) throw new GiveUp(refused.detail);
      return status.events.filter((e) => e.kind === 'resolved').length > resolvedBefore ? status : undefined;
    },
    15_000,
    200,
  ).catch((err: unknown) => {
    throw new RunRefusedError((err as Error).message);
  });
}

export async function runStatus(client: Client, workflowId: string): Promise<RunbookStatus> {
  await describeOrRefuse(client, workflowId);
  try {
    return await client.workflow.getHandle(workflowId).query(statusQuery);
  } catch (err) {
    throw new RunRefusedError(`run '${workflowId}' exists but did not answer the status query (is a worker running? 'lifeboat worker'): ${(err as Error).message}`);
  }
}

function refusal(err: unknown, workflowId: string): Error {
  if (err instanceof WorkflowUpdateFailedError) {
    const cause = err.cause;
    const message = cause instanceof ApplicationFailure || cause instanceof Error ? cause.message : err.message;
    return new RunRefusedError(`refused: ${message}`);
  }
  if (err instanceof WorkflowNotFoundError) return new RunRefusedError(`run '${workflowId}' has ended or does not exist`);
  if (err instanceof WorkflowUpdateRPCTimeoutOrCancelledError) {
    return new RunRefusedError(`run '${workflowId}' did not answer in time: is a worker running ('lifeboat worker')?`);
  }
  return err instanceof Error ? err : new Error(String(err));
}
