/**
 * The kernel's admission: before a run claims its targets or changes anything,
 * it reads the worker's trusted policy and its own origin (one activity, fixed in
 * history) and is admitted under that policy, or refused with the reason
 * (contract/governance.ts judges; this room asks and applies).
 */
import { ApplicationFailure, isCancellation, proxyLocalActivities, sleep, workflowInfo } from '@temporalio/workflow';
import { startDigest } from '../../contract/approvals';
import type { GovernanceActivities } from '../../activities/governance';
import { FailureType } from '../../contract/failures';
import { admitRun, type Admission, type AdmissionFacts } from '../../contract/governance';
import { failureMessage } from './failures';
import type { RunLedger } from './ledger';
import { scheduleIdOf } from './clocks';
import { describeVotes } from '../../contract/sentinel';

/**
 * A local activity: it runs in this worker and leaves only a marker in history, so no client can complete
 * it with an answer of its own (a regular activity can be completed by anyone who knows its id).
 * The Schedule check polls for up to 20 s while the scheduler records the start.
 */
const governance = proxyLocalActivities<GovernanceActivities>({
  startToCloseTimeout: '60 seconds',
  retry: { initialInterval: '1 second', maximumInterval: '10 seconds', maximumAttempts: 5, nonRetryableErrorTypes: [FailureType.NotConfigured] },
});

/** Admits the run under the worker's policy (the ledger adopts it), or throws the refusal (type RunRefused), recorded. */
export async function admit(ledger: RunLedger): Promise<Admission> {
  const info = workflowInfo();
  const { options } = ledger;
  let facts: AdmissionFacts;
  try {
    facts = await governance.admitRun({
      runbook: ledger.runbook,
      workflowId: info.workflowId,
      firstExecutionRunId: info.firstExecutionRunId,
      workflowType: info.workflowType,
      namespace: info.namespace,
      taskQueue: info.taskQueue,
      parent: info.parent ? { workflowId: info.parent.workflowId, runId: info.parent.runId, namespace: info.parent.namespace } : undefined,
      scheduledBy: scheduleIdOf(),
      inputDigest: options.input === undefined ? undefined : startDigest(options.input),
      ...(ledger.context.startSignature !== undefined && typeof ledger.context.signedAt === 'string' ? { signedAt: ledger.context.signedAt } : {}),
      preApproval: options.preApproved,
      ...(ledger.context.trigger !== undefined ? { trigger: ledger.context.trigger, target: options.target } : {}),
    });
  } catch (err) {
    if (isCancellation(err)) throw err; // cancelled while being admitted: a cancel, not a refusal
    await afterLocalActivity();
    throw refuse(ledger, [`the worker could not admit the run: ${failureMessage(err)}`]);
  }
  await afterLocalActivity();
  const admission = admitRun(facts, {
    context: ledger.context,
    gates: options.gates,
    input: options.input,
    workflowId: info.workflowId,
    workflowType: info.workflowType,
    startTime: info.runStartTime,
    preApproved: options.preApproved,
  });
  if (admission.refusals.length > 0) throw refuse(ledger, admission.refusals);
  ledger.adopt(admission.context, admission.gates);
  ledger.record('admitted', admission.summary + (admission.sentinel ? `. ${describeVotes(admission.sentinel.trigger)}; detected at ${admission.sentinel.trigger.detectedAt} (the RTO clock starts there)` : ''));
  return admission;
}

/**
 * A local activity's result reaches the workflow at a moment its replay does not see again (its marker
 * carries no such time), so workflow time right after one differs on replay; every record is sealed with
 * its time. A 1 ms timer puts the next record after an event in history, the same in the run and its replay.
 */
export async function afterLocalActivity(): Promise<void> {
  await sleep(1, { summary: 'after a local activity: the next record takes its time from history' });
}

function refuse(ledger: RunLedger, refusals: readonly string[]): ApplicationFailure {
  const failure = ApplicationFailure.create({ type: FailureType.RunRefused, message: `refused: ${refusals.join('; ')}`, nonRetryable: true });
  ledger.record('refused', failure.message);
  return failure;
}
