/**
 * The run's evidence chain, the ledger's witness: each record is sealed to the
 * one before it (contract/evidence.ts) and stored by one writer at a time, in
 * order, whatever happens to the run; the head goes into the run's result.
 * What the bucket has not taken when the run closes is handed to the run's
 * evidence keeper (workflows/evidence-keeper.ts), which outlives the run.
 * The sealed head is anchored in the Object Lock ledger at the close, within
 * the same grace; an anchor not written by then goes to the keeper too.
 */
import { CancellationScope, ChildWorkflowCancellationType, ParentClosePolicy, proxyActivities, startChild, workflowInfo, type ActivityOptions } from '@temporalio/workflow';
import type { EvidenceActivities } from '../../activities/evidence';
import { evidenceKeeperWorkflowId, GENESIS, LEDGER_REFUSED, sealRecord, type AnchorState, type EvidenceAnchor, type EvidenceHead, type EvidencePending, type EvidenceRecord } from '../../contract/evidence';
import { failureMessage } from './failures';
import type { Witness, WitnessFields } from './ledger';
import { call } from '../call';
import { evidenceKeeper } from '../evidence-keeper';

/** Storing evidence retries until it works or the run hands the rest to its keeper: records must not be lost while a bucket is down. */
const storeOptions = {
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '2 seconds', backoffCoefficient: 2, maximumInterval: '1 minute' },
} as const satisfies ActivityOptions;

const evidenceStore = proxyActivities<EvidenceActivities>(storeOptions);

/** Anchoring retries while the run's close grace lasts; what is left then is the keeper's. A refusal (no Object Lock) is final. */
const anchorOptions = {
  startToCloseTimeout: '10 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '5 seconds', nonRetryableErrorTypes: [LEDGER_REFUSED] },
} as const satisfies ActivityOptions;

export class EvidenceChain implements Witness {
  private head = GENESIS;
  private count = 0;
  private sealed = false;
  private unstored: EvidenceRecord[] = [];
  /** The batch the writer's activity is storing. */
  private storing: EvidenceRecord[] = [];
  private writer: Promise<void> | undefined;
  private pending: EvidencePending | undefined;
  /** The sealed head, once the close asked for it to be anchored. */
  private anchorEntry: EvidenceAnchor | undefined;
  private anchorState: AnchorState | undefined;

  /** `enabled`: runs started before the chain existed replay without it. */
  constructor(
    private readonly runbook: string,
    readonly enabled: boolean,
  ) {}

  /** Seals the next record of the chain and hands it to the writer, in order. */
  witness(fields: WitnessFields): EvidenceHead | undefined {
    if (!this.enabled || this.sealed) return undefined;
    const { workflowId, runId } = workflowInfo();
    const record = sealRecord({ seq: this.count + 1, at: new Date().toISOString(), workflowId, runId, runbook: this.runbook, ...fields }, this.head);
    this.head = record.hash;
    this.count = record.seq;
    this.unstored.push(record);
    this.writer ??= CancellationScope.nonCancellable(() => this.write());
    return this.current();
  }

  seal(): void {
    this.sealed = true;
  }

  current(): EvidenceHead {
    return { head: this.head, records: this.count, ...(this.pending ? { pending: this.pending } : {}), ...(this.anchorState ? { anchor: this.anchorState } : {}) };
  }

  /**
   * At the close (the chain is sealed): writes the head to the ledger. Settles when the ledger took
   * it or refused it; until then the run may close and hand it to its keeper (handOff).
   */
  async anchor(): Promise<void> {
    const { workflowId, runId } = workflowInfo();
    const entry: EvidenceAnchor = { workflowId, runId, runbook: this.runbook, head: this.head, records: this.count, at: new Date().toISOString() };
    this.anchorEntry = entry;
    await CancellationScope.nonCancellable(async () => {
      try {
        const state = await call(evidenceStore.anchorEvidence, anchorOptions, `evidence: anchor head ${entry.head.slice(0, 12)}… in the ledger`, entry);
        this.anchorState ??= state;
      } catch (err) {
        this.anchorState ??= { state: 'refused', reason: failureMessage(err) };
      }
    });
  }

  /** Why the ledger refused the head, when it did. */
  get anchorRefused(): string | undefined {
    return this.anchorState?.state === 'refused' ? this.anchorState.reason : undefined;
  }

  /** Whether every sealed record is stored. */
  get stored(): boolean {
    return this.writer === undefined;
  }

  /**
   * Settles when every sealed record is stored. Runs from before the evidence keeper wait for it
   * however long the bucket is down; later runs bound the wait and hand the rest over.
   */
  async settled(): Promise<void> {
    if (this.writer) await this.writer.catch(() => undefined);
  }

  /**
   * At the run's close: the records not yet stored (the batch in flight too; appends are idempotent)
   * go to the run's evidence keeper, which outlives the run. The run waits only for the server to
   * start it; `current()` then names it and what it holds.
   */
  async handOff(): Promise<void> {
    const records = this.stored ? [] : [...this.storing, ...this.unstored];
    const fromSeq = records[0]?.seq;
    // The anchor the ledger has not answered yet (an anchor refused is not retried).
    const anchor = this.anchorState ? undefined : this.anchorEntry;
    if (fromSeq === undefined && !anchor) return;
    const { workflowId, runId } = workflowInfo();
    const keeper = evidenceKeeperWorkflowId(workflowId, runId);
    const what = [
      ...(fromSeq !== undefined ? [`records ${fromSeq}-${this.count}, stored when the bucket takes them`] : []),
      ...(anchor ? ['its head, anchored when the ledger takes it'] : []),
    ];
    await startChild(evidenceKeeper, {
      workflowId: keeper,
      args: [{ workflowId, runId, records, ...(anchor ? { anchor } : {}) }],
      // The keeper must outlive the run: it is the only writer of the chain's end from here on.
      parentClosePolicy: ParentClosePolicy.ABANDON,
      cancellationType: ChildWorkflowCancellationType.ABANDON,
      staticSummary: `evidence of ${workflowId}: ${what.join('; ')}`,
    });
    if (fromSeq !== undefined) this.pending = { records: records.length, fromSeq, keeper };
    if (anchor) this.anchorState = { state: 'pending', keeper };
  }

  /** One writer at a time, batching what accumulated while the last append ran. */
  private async write(): Promise<void> {
    while (this.unstored.length > 0) {
      const batch = this.unstored;
      this.unstored = [];
      this.storing = batch;
      await call(evidenceStore.appendEvidence, storeOptions, `evidence: records ${batch[0]?.seq}-${batch.at(-1)?.seq}`, batch);
      this.storing = [];
    }
    this.writer = undefined;
  }
}
