/**
 * The kernel's target holds: before a run changes anything it claims every
 * target it may change, by starting the target's hold workflow (the server
 * admits one per id). A child run of the holder (or of a member) asks to join
 * its parent's hold and goes on once the hold, on the server's word, has let it
 * in; any other contender is refused with who holds the target and where they stand.
 */
import {
  ApplicationFailure,
  getExternalWorkflowHandle,
  isCancellation,
  ParentClosePolicy,
  patched,
  ChildWorkflowCancellationType,
  proxyActivities,
  sleep,
  startChild,
  workflowInfo,
  WorkflowIdReusePolicy,
} from '@temporalio/workflow';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import type { HoldActivities } from '../../activities/holds';
import {
  describeTarget,
  holdWorkflowId,
  joinHoldSignal,
  memberChain,
  releaseHoldSignal,
  type HoldInspection,
  type HolderInfo,
  type HoldMember,
  type JoinDecision,
  type TargetRef,
} from '../../contract/holds';
import { FailureType } from '../../contract/failures';
import { targetHold } from '../target-hold';
import { call } from '../call';

const holds = proxyActivities<HoldActivities>({
  startToCloseTimeout: '20 seconds',
  retry: { initialInterval: '1 second', maximumAttempts: 5 },
});

/** A poll: the hold asks the server about this run's parent, then says. */
const JOIN_DECISION_POLL = {
  startToCloseTimeout: '10 seconds',
  retry: { initialInterval: '250 milliseconds', backoffCoefficient: 1, maximumAttempts: 80 },
} as const;

/** A contender that found a hold whose members all ended retries this often (the inspection ended it). */
const CLAIM_ATTEMPTS = 5;

/** How long a contender waits for a hold whose members have all finished to close (a run's last notifications may take a minute). */
const CLOSING_WAIT_MS = 90_000;

/** Runs from before contenders waited for closing members were refused at once. */
const PATCH_WAIT_FOR_CLOSING = 'lifeboat-hold-wait-for-closing';

/** Runs from before the hold verified joiners joined on their signal alone (and only a parent's own run). */
const PATCH_VERIFIED_JOIN = 'lifeboat-hold-verified-join';

/** Runs that met their own hold (a reset to before the claim) take it as theirs; older histories were refused. */
const PATCH_OWN_CHAIN = 'lifeboat-hold-own-chain';

export interface ClaimedHold {
  target: TargetRef;
  /** `claimed`: this run started the hold; `joined`: its parent holds it. */
  how: 'claimed' | 'joined';
}

/** Claims `targets` for this run into `claimed` (so a partial claim is released too); throws TargetHeld (nothing changed) when one is held by another run. */
export async function claimHolds(targets: readonly TargetRef[], holder: Omit<HolderInfo, keyof HoldMember>, note: (detail: string) => void, claimed: ClaimedHold[]): Promise<void> {
  const me = thisRun();
  const info = workflowInfo();
  // One order for every run (regions before databases, by name): two runs never wait on each other's half.
  const ordered = [...targets].sort((a, b) => (a.kind === b.kind ? (a.name < b.name ? -1 : a.name > b.name ? 1 : 0) : a.kind === 'region' ? -1 : 1));
  for (const target of ordered) {
    const id = holdWorkflowId(target);
    const nextWait = claimWaits();
    for (;;) {
      try {
        await startChild(targetHold, {
          workflowId: id,
          args: [{ target, holder: { ...me, ...holder } }],
          // The hold ends when its members do (it checks them), not when the claimant closes:
          // a child promotion the claimant let in may still be changing the target.
          parentClosePolicy: ParentClosePolicy.ABANDON,
          cancellationType: ChildWorkflowCancellationType.ABANDON,
          workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE,
          staticSummary: `hold on ${describeTarget(target)} for ${me.workflowId}`,
        });
        claimed.push({ target, how: 'claimed' });
        note(`holds ${describeTarget(target)}`);
        break;
      } catch (err) {
        if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
        const held = await call(holds.inspectHold, { startToCloseTimeout: '20 seconds', retry: { initialInterval: '1 second', maximumAttempts: 5 } }, `who holds ${describeTarget(target)}?`, { target });
        if (heldByThisChain(held, me) && patched(PATCH_OWN_CHAIN)) {
          // A reset of this run (to before its claim) meets the hold its first run claimed: the server counts it as that member.
          claimed.push({ target, how: 'claimed' });
          note(`still holds ${describeTarget(target)} (claimed by an earlier run of this workflow)`);
          break;
        }
        const parent = info.parent;
        if (parent !== undefined && heldByParent(held, parent)) {
          await getExternalWorkflowHandle(id).signal(joinHoldSignal, me);
          if (patched(PATCH_VERIFIED_JOIN)) await confirmJoin(target, me, parent);
          claimed.push({ target, how: 'joined' });
          note(`joins its parent's hold on ${describeTarget(target)}`);
          break;
        }
        const wait = nextWait(held);
        if (wait !== undefined) {
          await sleep(wait, { summary: held.state === 'free' ? `claim ${describeTarget(target)} again` : `wait for ${held.holder?.workflowId ?? 'the holder'} to close` });
          continue;
        }
        throw targetHeld(target, held.holder, `${held.description}: this run changed nothing; wait for that run to end, or cancel it`);
      }
    }
  }
}

/** Lets a child this run started (e.g. a return watch) into this run's hold on `target`, before this run leaves it. */
export async function admitToHold(claimed: readonly ClaimedHold[], target: TargetRef, member: HoldMember): Promise<boolean> {
  if (!claimed.some((c) => c.target.kind === target.kind && c.target.name === target.name)) return false;
  await getExternalWorkflowHandle(holdWorkflowId(target)).signal(joinHoldSignal, member);
  return true;
}

/** Leaves every hold this run claimed or joined; a hold ends when its last member leaves. */
export async function releaseHolds(claimed: readonly ClaimedHold[]): Promise<void> {
  const me = thisRun();
  for (const { target } of claimed) {
    await getExternalWorkflowHandle(holdWorkflowId(target)).signal(releaseHoldSignal, me).catch(() => undefined);
  }
}

/**
 * Is the hold its parent's (the claimant, or a member)? Since the hold verifies joiners itself, the
 * parent's workflow id is enough to ask: a parent reset after its claim has another run id.
 */
function heldByParent(held: HoldInspection, parent: { workflowId: string; runId: string }): boolean {
  if (held.state !== 'held') return false;
  const runs = [...(held.claimedBy ? [held.claimedBy] : []), ...(held.members ?? [])];
  if (runs.some((m) => m.workflowId === parent.workflowId && m.runId === parent.runId)) return true;
  return runs.some((m) => m.workflowId === parent.workflowId) && patched(PATCH_VERIFIED_JOIN);
}

/** Waits for the hold's word on this run's join; turned away (or no answer), the run is refused: it changed nothing. */
async function confirmJoin(target: TargetRef, me: HoldMember, parent: { workflowId: string }): Promise<void> {
  const decision = await call(holds.joinDecision, JOIN_DECISION_POLL, `was this run let into the hold on ${describeTarget(target)}?`, { target, joiner: me }).catch((err: unknown): JoinDecision => {
    if (isCancellation(err)) throw err;
    return { admitted: false, reason: `it gave no answer: ${err instanceof Error ? err.message : String(err)}` };
  });
  if (!decision.admitted) {
    throw targetHeld(target, undefined, `${describeTarget(target)} is held by this run's parent ${parent.workflowId}, but its hold turned this run away (${decision.reason}): this run changed nothing`);
  }
}

function targetHeld(target: TargetRef, holder: HolderInfo | undefined, message: string): ApplicationFailure {
  return ApplicationFailure.create({ type: FailureType.TargetHeld, message, nonRetryable: true, details: [{ target, holder }] });
}

/**
 * How long to wait before claiming again, or undefined: refused. A hold whose members have all ended
 * was ended by the inspection (a few quick retries); one whose members have all finished and are
 * closing (they released it a moment ago) is waited for, growing to 5 s, up to CLOSING_WAIT_MS.
 */
function claimWaits(): (held: HoldInspection) => number | undefined {
  let freeAttempts = 0;
  let waitedForClosing = 0;
  return (held) => {
    if (held.state === 'free') return ++freeAttempts < CLAIM_ATTEMPTS ? freeAttempts * 500 : undefined;
    if (!held.closing || waitedForClosing >= CLOSING_WAIT_MS || !patched(PATCH_WAIT_FOR_CLOSING)) return undefined;
    const wait = Math.min(waitedForClosing + 1_000, 5_000);
    waitedForClosing += wait;
    return wait;
  };
}

/** This run as a hold member: by its chain, which a reset or a continue-as-new keeps. */
function thisRun(): HoldMember {
  const { workflowId, runId, firstExecutionRunId } = workflowInfo();
  return { workflowId, runId, firstExecutionRunId };
}

function heldByThisChain(held: HoldInspection, me: HoldMember): boolean {
  return held.state === 'held' && (held.members ?? []).some((m) => m.workflowId === me.workflowId && memberChain(m) === memberChain(me));
}
