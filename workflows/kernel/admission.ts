/**
 * The kernel's admission: before a run claims its targets or changes anything,
 * it reads the worker's trusted policy and its own origin (one activity, fixed in
 * history) and is admitted under that policy, or refused with the reason
 * (contract/governance.ts judges; this room asks and applies).
 */
import { ApplicationFailure, proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { GovernanceActivities } from '../../activities/governance';
import { FailureType } from '../../contract/failures';
import { admitRun, type Admission, type AdmissionFacts } from '../../contract/governance';
import { call } from '../call';
import { failureMessage } from './failures';
import type { RunLedger } from './ledger';
import { scheduleIdOf } from './clocks';

const governance = proxyActivities<GovernanceActivities>({
  // The Schedule check polls for up to 20 s while the scheduler records the start.
  startToCloseTimeout: '60 seconds',
  retry: { initialInterval: '1 second', maximumInterval: '10 seconds', maximumAttempts: 5, nonRetryableErrorTypes: [FailureType.NotConfigured] },
});

/** Admits the run under the worker's policy (the ledger adopts it), or throws the refusal (type RunRefused), recorded. */
export async function admit(ledger: RunLedger): Promise<Admission> {
  const info = workflowInfo();
  const { options } = ledger;
  let facts: AdmissionFacts;
  try {
    facts = await call(governance.admitRun, {}, "admission: the worker's policy and the run's origin", {
      runbook: ledger.runbook,
      workflowId: info.workflowId,
      firstExecutionRunId: info.firstExecutionRunId,
      workflowType: info.workflowType,
      parent: info.parent ? { workflowId: info.parent.workflowId, runId: info.parent.runId } : undefined,
      scheduledBy: scheduleIdOf(),
      preApproval: options.preApproved,
    });
  } catch (err) {
    throw refuse(ledger, [`the worker could not admit the run: ${failureMessage(err)}`]);
  }
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
  ledger.record('admitted', admission.summary);
  return admission;
}

function refuse(ledger: RunLedger, refusals: readonly string[]): ApplicationFailure {
  const failure = ApplicationFailure.create({ type: FailureType.RunRefused, message: `refused: ${refusals.join('; ')}`, nonRetryable: true });
  ledger.record('refused', failure.message);
  return failure;
}
