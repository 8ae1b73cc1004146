/**
 * The evidence keeper: the end of a run's evidence chain that the bucket did
 * not take before the run closed (the bucket may live in the failed region),
 * stored by this workflow, which outlives the run and keeps trying until it
 * is stored. One keeper per run, started by the run as a child it abandons
 * (ParentClosePolicy ABANDON): the server records the handover in the run's
 * history and the records in the keeper's input, so nothing depends on a
 * worker's memory, and the run closes without waiting for the bucket.
 * A head the ledger (evidence.ledger) had not taken by the run's close is
 * anchored here too, after the records, with the same persistence.
 */
import { log, proxyActivities, setHandler, sleep, type ActivityOptions } from '@temporalio/workflow';
import type { EvidenceActivities } from '../activities/evidence';
import { LEDGER_REFUSED, type AnchorState, type EvidenceKeeperInput, type EvidenceKeeperResult } from '../contract/evidence';
import { failureMessage } from './kernel/failures';
import { evidencePendingQuery } from '../contract/runbook';
import { call } from './call';

/**
 * The run's own last store attempt may still be under way when it hands over (its activity has a
 * 30 s start-to-close timeout): the keeper lets it end first, so a late write of the run, made from
 * an older read of the log, cannot land after the keeper's and drop records.
 */
const RUN_ATTEMPT_SETTLE_MS = 30_000;

const evidence = proxyActivities<EvidenceActivities>({ startToCloseTimeout: '30 seconds' });

/** Stores `input.records` (idempotent by sequence number) and anchors `input.anchor`, retrying without limit until the bucket and the ledger take them. */
export async function evidenceKeeper(input: EvidenceKeeperInput): Promise<EvidenceKeeperResult> {
  let pending = input.records;
  setHandler(evidencePendingQuery, () => pending);
  const first = input.records[0]?.seq;
  const last = input.records.at(-1)?.seq;
  await sleep(RUN_ATTEMPT_SETTLE_MS, { summary: "let the run's last store attempt end" });
  const keepTrying = {
    startToCloseTimeout: '30 seconds',
    // No attempt limit: a record must not be lost while the bucket is down. A conflict (the stored log was altered) is not retried.
    retry: { initialInterval: '2 seconds', backoffCoefficient: 2, maximumInterval: `${input.maximumIntervalSeconds ?? 30} seconds`, nonRetryableErrorTypes: [LEDGER_REFUSED] },
  } as const satisfies ActivityOptions;
  // A keeper that holds only the anchor (every record was stored) has nothing to append.
  if (input.records.length > 0 || !input.anchor) {
    await call(evidence.appendEvidence, keepTrying, `store evidence records ${first}-${last} of ${input.workflowId} (until the bucket takes them)`, input.records);
  }
  pending = [];
  const storedAt = new Date().toISOString();
  if (!input.anchor) return { stored: input.records.length, storedAt };
  let anchor: AnchorState;
  try {
    anchor = await call(evidence.anchorEvidence, keepTrying, `anchor the head of ${input.workflowId} in the ledger (until it takes it)`, input.anchor);
  } catch (err) {
    // Refused (no Object Lock, another head already there): retrying cannot help; the result and `evidence verify` say why.
    anchor = { state: 'refused', reason: failureMessage(err) };
    log.error('the evidence ledger refused the anchor', { workflowId: input.workflowId, runId: input.runId, reason: anchor.reason });
  }
  return { stored: input.records.length, storedAt, anchor };
}
