/**
 * Leaving a return watch (contract/return-watch.ts): a run past its point of no
 * return that could not reach part of the lost region starts the watch as a
 * child that outlives it, and lets it into its hold on the watch's target
 * before the run itself leaves that hold, so the target is never free while a
 * node on it is not fenced.
 */
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import { ChildWorkflowCancellationType, ParentClosePolicy, startChild, workflowInfo, WorkflowIdReusePolicy } from '@temporalio/workflow';
import { describeDuty, returnWatchTarget, returnWatchWorkflowId, type ReturnDuty, type ReturnWatchInput } from '../../contract/return-watch';
import type { RunContext } from '../../contract/runbook';
import { returnWatch } from '../return-watch';
import { admitToHold, type ClaimedHold } from './holds';

export interface LeftWatch {
  workflowId: string;
  /** Whether the watch joined this run's hold on its target (false: this run did not hold it). */
  holds: boolean;
  description: string;
}

export async function leaveReturnWatch(duty: ReturnDuty, runbook: string, context: RunContext, claimed: readonly ClaimedHold[], probeEverySeconds?: number): Promise<LeftWatch> {
  const workflowId = returnWatchWorkflowId(duty);
  const input: ReturnWatchInput = { duty, leftBy: workflowInfo().workflowId, runbook, incident: context.incident, drill: context.drill, ...(probeEverySeconds ? { probeEverySeconds } : {}) };
  let watch;
  try {
    watch = await startChild(returnWatch, {
      workflowId,
      args: [input],
      // The watch is why the run could end: it must outlive it, and a cancel of the run leaves it running.
      parentClosePolicy: ParentClosePolicy.ABANDON,
      cancellationType: ChildWorkflowCancellationType.ABANDON,
      workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE,
      staticSummary: describeDuty(duty),
    });
  } catch (err) {
    // One already runs under this id (its target was not held by it, or it was started by hand): this run
    // goes on, and says so; that watch refuses to act unless the run that left it holds the target.
    if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
    return { workflowId, holds: false, description: `${workflowId} already runs, so this run left no watch of its own: check it will ${describeDuty(duty)}` };
  }
  const holds = await admitToHold(claimed, returnWatchTarget(duty), { workflowId, runId: watch.firstExecutionRunId });
  return { workflowId, holds, description: `${workflowId} will ${describeDuty(duty)}${holds ? '; it holds the target until then' : ''}` };
}
