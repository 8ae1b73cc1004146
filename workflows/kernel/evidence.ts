/**
 * The run's evidence chain, the ledger's witness: each record is sealed to the
 * one before it (contract/evidence.ts) and stored by one writer at a time, in
 * order, whatever happens to the run; the head goes into the run's result.
 * What the bucket has not taken when the run closes is handed to the run's
 * evidence keeper (workflows/evidence-keeper.ts), which outlives the run.
 */
import { CancellationScope, ChildWorkflowCancellationType, ParentClosePolicy, proxyActivities, startChild, workflowInfo, type ActivityOptions } from '@temporalio/workflow';
import type { EvidenceActivities } from '../../activities/evidence';
import { evidenceKeeperWorkflowId, GENESIS, sealRecord, type EvidenceHead, type EvidencePending, type EvidenceRecord } from '../../contract/evidence';
import type { Witness, WitnessFields } from './ledger';
import { call } from '../call';
import { evidenceKeeper } from '../evidence-keeper';

/** Storing evidence retries until it works or the run hands the rest to its keeper: records must not be lost while a bucket is down. */
const storeOptions = {
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '2 seconds', backoffCoefficient: 2, maximumInterval: '1 minute' },
} as const satisfies ActivityOptions;

const evidenceStore = proxyActivities<EvidenceActivities>(storeOptions);

export class EvidenceChain implements Witness {
  private head = GENESIS;
  private count = 0;
  private sealed = false;
  private unstored: EvidenceRecord[] = [];
  /** The batch the writer's activity is storing. */
  private storing: EvidenceRecord[] = [];
  private writer: Promise<void> | undefined;
  private pending: EvidencePending | undefined;

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
    return { head: this.head, records: this.count, ...(this.pending ? { pending: this.pending } : {}) };
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
    const records = [...this.storing, ...this.unstored];
    const fromSeq = records[0]?.seq;
    if (this.stored || fromSeq === undefined) return;
    const { workflowId, runId } = workflowInfo();
    const keeper = evidenceKeeperWorkflowId(workflowId, runId);
    await startChild(evidenceKeeper, {
      workflowId: keeper,
      args: [{ workflowId, runId, records }],
      // The keeper must outlive the run: it is the only writer of the chain's end from here on.
      parentClosePolicy: ParentClosePolicy.ABANDON,
      cancellationType: ChildWorkflowCancellationType.ABANDON,
      staticSummary: `evidence of ${workflowId}: records ${fromSeq}-${this.count}, stored when the bucket takes them`,
    });
    this.pending = { records: records.length, fromSeq, keeper };
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
