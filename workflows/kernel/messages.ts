/**
 * The run's message handlers (their definitions are in contract/runbook.ts):
 * the status query, the approve/reject signals and the decide Update for
 * gates, the requestCancel Update and the resolve signal. Validators reject
 * only what is not a request at all; every rule is checked in the handler, so
 * a refusal is recorded in the run (and its evidence) and the caller still
 * gets the reason.
 */
import { ApplicationFailure, log, setHandler, workflowInfo } from '@temporalio/workflow';
import { cancelMessage, resolveMessage } from '../../contract/approvals';
import {
  approveSignal,
  decideUpdate,
  isFinalState,
  rejectSignal,
  requestCancelUpdate,
  resolveSignal,
  statusQuery,
  type DecideRequest,
  type DecideResult,
  type GateDecision,
} from '../../contract/runbook';
import { cancelSchema, shapeRefusal } from '../../contract/requests';
import { refuseOperator, refuseResolve, refuseSignedCommand } from './decisions';
import type { Gates } from './gates';
import type { RunLedger } from './ledger';
import type { Steps } from './steps';

/** What the run tells its handlers: whether it was admitted under the worker's policy, and how a cancel it accepted takes effect. */
export interface HandlerHooks {
  /** Runs admitted at start check signed cancels and resolutions (older runs replay as they ran). */
  governed: boolean;
  /** A cancel the run accepted (signed, when signatures are required): the run rolls back now. */
  cancelAccepted(): void;
}

export function registerHandlers(ledger: RunLedger, gates: Gates, steps: Steps, hooks: HandlerHooks = { governed: false, cancelAccepted: () => undefined }): void {
  // ledger.context, read at each message: the run adopts the worker's policy at admission.
  const decide = (request: DecideRequest): DecideResult => {
    const refusal = gates.refusal(request);
    return refusal ? refuse(ledger, 'decide', request, refusal) : gates.apply(request);
  };

  setHandler(statusQuery, () => ledger.snapshot());
  const onSignal = (decision: 'approve' | 'reject') => (payload: GateDecision) => {
    const request = { ...(isObject(payload) ? payload : {}), decision } as DecideRequest;
    const refusal = gates.refusal(payload === undefined ? undefined : request);
    if (refusal) {
      ledger.record('decision-refused', `${decision} refused: ${refusal}`, { by: str(request.approver), gate: str(request.gate) });
      log.warn('gate decision refused', { decision, refusal });
      ledger.publish();
      return;
    }
    gates.apply(request);
  };
  setHandler(approveSignal, onSignal('approve'));
  setHandler(rejectSignal, onSignal('reject'));
  // An Update, so the CLI gets an answer: the gate's new state, or the reason it was refused.
  setHandler(decideUpdate, (request) => {
    if (request.decision !== 'approve' && request.decision !== 'reject') return refuse(ledger, 'decide', request, 'decision must be "approve" or "reject"');
    return decide(request);
  }, {
    validator: (request) => {
      if (!isObject(request)) throw new Error('a decision must be an object {gate, approver, decision, comment?, nonce?, signature?}');
    },
  });
  setHandler(requestCancelUpdate, (request) => {
    const { status } = ledger;
    const { context } = ledger;
    const { workflowId, runId } = workflowInfo();
    const refusal = shapeRefusal(cancelSchema, request)
      ?? refuseOperator(request.by, context, 'cancel a run')
      ?? (hooks.governed ? refuseSignedCommand(request.signature, request.by, context, 'cancel', () => cancelMessage({ workflowId, runId, by: request.by, reason: request.reason })) : undefined)
      ?? (isFinalState(status.state) ? `the run has already ended (${status.state})` : undefined)
      ?? (status.pointOfNoReturnPassed ? 'the run is past its point of no return: cancelling would not roll it back; let it finish or resolve by hand' : undefined);
    if (refusal) return refuse(ledger, 'cancel', request, refusal);
    ledger.record('cancel-requested', `cancel requested: ${request.reason}`, { by: request.by });
    ledger.publish();
    if (hooks.governed) hooks.cancelAccepted();
    return { accepted: true as const };
  }, {
    validator: (request) => {
      if (!isObject(request)) throw new Error('a cancel request must be an object {by, reason}');
    },
  });
  setHandler(resolveSignal, (request) => {
    const { context, status } = ledger;
    const { workflowId, runId } = workflowInfo();
    const attention = status.attention?.id ?? '';
    const refusal = refuseResolve(request, context, steps.awaitingResolution)
      ?? (request.attention !== undefined && request.attention !== attention ? `the resolution is for another failed undo (${str(request.attention) ?? '?'}); the run waits on ${attention}` : undefined)
      ?? (hooks.governed ? refuseSignedCommand(request.signature, request.by, context, 'resolution', () => resolveMessage({ workflowId, runId, attention, action: request.action, by: request.by, comment: request.comment })) : undefined);
    if (refusal) {
      ledger.record('decision-refused', `resolve refused: ${refusal}`, { by: isObject(request) ? str(request.by) : undefined });
      ledger.publish();
      return;
    }
    ledger.record('resolved', `${request.action}: ${request.comment}`, { by: request.by });
    steps.resolve(request);
  });
}

/** Records a refused Update (who, what, which rule) and fails it with the reason. */
function refuse(ledger: RunLedger, what: 'decide' | 'cancel', request: { approver?: unknown; by?: unknown; gate?: unknown; decision?: unknown }, refusal: string): never {
  const by = str(request.approver) ?? str(request.by);
  ledger.record('decision-refused', `${what === 'decide' ? String(request.decision ?? 'decision') : 'cancel'} refused: ${refusal}`, { by, gate: str(request.gate) });
  ledger.publish();
  throw ApplicationFailure.nonRetryable(refusal, 'DecisionRefused');
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}

/** A name from an untrusted request, for the refusal's record: at most 200 characters, marked when cut. */
function str(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  return value.length > 200 ? `${value.slice(0, 200)}… (${value.length} characters)` : value;
}
