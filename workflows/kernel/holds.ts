/**
 * The kernel's target holds: before a run changes anything it claims every
 * target it may change, by starting the target's hold workflow (the server
 * admits one per id). A child run of the holder joins its parent's hold; any
 * other contender is refused with who holds the target and where they stand.
 */
import {
  ApplicationFailure,
  getExternalWorkflowHandle,
  ParentClosePolicy,
  ChildWorkflowCancellationType,
  proxyActivities,
  sleep,
  startChild,
  workflowInfo,
  WorkflowIdReusePolicy,
} from '@temporalio/workflow';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import type { HoldActivities } from '../../activities/holds';
import { describeTarget, holdWorkflowId, joinHoldSignal, releaseHoldSignal, type HolderInfo, type HoldMember, type TargetRef } from '../../contract/holds';
import { FailureType } from '../../contract/failures';
import { targetHold } from '../target-hold';

const holds = proxyActivities<HoldActivities>({
  startToCloseTimeout: '20 seconds',
  retry: { initialInterval: '1 second', maximumAttempts: 5 },
});

/** A contender that found a hold whose members all ended retries this often (the inspection ended it). */
const CLAIM_ATTEMPTS = 5;

export interface ClaimedHold {
  target: TargetRef;
  /** `claimed`: this run started the hold; `joined`: its parent holds it. */
  how: 'claimed' | 'joined';
}

/** Claims `targets` for this run into `claimed` (so a partial claim is released too); throws TargetHeld (nothing changed) when one is held by another run. */
export async function claimHolds(targets: readonly TargetRef[], holder: Omit<HolderInfo, 'workflowId' | 'runId'>, note: (detail: string) => void, claimed: ClaimedHold[]): Promise<void> {
  const info = workflowInfo();
  const me: HoldMember = { workflowId: info.workflowId, runId: info.runId };
  // One order for every run (regions before databases, by name): two runs never wait on each other's half.
  const ordered = [...targets].sort((a, b) => (a.kind === b.kind ? (a.name < b.name ? -1 : a.name > b.name ? 1 : 0) : a.kind === 'region' ? -1 : 1));
  for (const target of ordered) {
    const id = holdWorkflowId(target);
    for (let attempt = 1; ; attempt++) {
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
        const held = await holds.inspectHold.executeWithOptions(
          { startToCloseTimeout: '20 seconds', retry: { initialInterval: '1 second', maximumAttempts: 5 }, summary: `who holds ${describeTarget(target)}?` },
          [{ target }],
        );
        const parent = info.parent;
        const byParent = parent !== undefined && held.state === 'held'
          && ((held.claimedBy?.workflowId === parent.workflowId && held.claimedBy.runId === parent.runId)
            || (held.members ?? []).some((m) => m.workflowId === parent.workflowId && m.runId === parent.runId));
        if (byParent) {
          await getExternalWorkflowHandle(id).signal(joinHoldSignal, me);
          claimed.push({ target, how: 'joined' });
          note(`joins its parent's hold on ${describeTarget(target)}`);
          break;
        }
        if (held.state === 'free' && attempt < CLAIM_ATTEMPTS) {
          await sleep(attempt * 500, { summary: `claim ${describeTarget(target)} again` });
          continue;
        }
        throw ApplicationFailure.create({
          type: FailureType.TargetHeld,
          message: `${held.description}: this run changed nothing; wait for that run to end, or cancel it`,
          nonRetryable: true,
          details: [{ target, holder: held.holder }],
        });
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
  const { workflowId, runId } = workflowInfo();
  for (const { target } of claimed) {
    await getExternalWorkflowHandle(holdWorkflowId(target)).signal(releaseHoldSignal, { workflowId, runId }).catch(() => undefined);
  }
}
