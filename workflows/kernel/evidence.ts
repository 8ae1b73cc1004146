/**
 * The run's evidence chain, the ledger's witness: each record is sealed to the
 * one before it (contract/evidence.ts) and stored by one writer at a time, in
 * order, whatever happens to the run; the head goes into the run's result.
 */
import { CancellationScope, proxyActivities, workflowInfo, type ActivityOptions } from '@temporalio/workflow';
import type { EvidenceActivities } from '../../activities/evidence';
import { GENESIS, sealRecord, type EvidenceHead, type EvidenceRecord } from '../../contract/evidence';
import type { Witness, WitnessFields } from './ledger';
import { call } from '../call';

/** Storing evidence retries until it works: records must not be lost while a bucket is down. */
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
  private writer: Promise<void> | undefined;

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
    return { head: this.head, records: this.count };
  }

  /** The run ends once its evidence is stored (the records are also in this history, as the activity's input). */
  async flush(): Promise<void> {
    if (this.writer) await this.writer.catch(() => undefined);
  }

  /** One writer at a time, batching what accumulated while the last append ran. */
  private async write(): Promise<void> {
    while (this.unstored.length > 0) {
      const batch = this.unstored;
      this.unstored = [];
      await call(evidenceStore.appendEvidence, storeOptions, `evidence: records ${batch[0]?.seq}-${batch.at(-1)?.seq}`, batch);
    }
    this.writer = undefined;
  }
}
