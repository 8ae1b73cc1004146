/**
 * Stores the evidence chain a run computes (contract/evidence.ts): JSON lines
 * per run in the evidence bucket (S3) and mirrored in a local directory.
 * Appends are idempotent by sequence number, so a retried activity never
 * writes a record twice; a different record under a taken number is refused.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { ApplicationFailure } from '@temporalio/common';
import type { EvidenceRecord } from '../contract/evidence';
import type { ObjectStore } from './s3';

export interface EvidenceStore {
  readonly location: string;
  append(workflowId: string, runId: string, records: readonly EvidenceRecord[]): Promise<void>;
  /** The stored log of one run, in stored order (as an auditor would read it). */
  read(workflowId: string, runId: string): Promise<EvidenceRecord[]>;
}

function parseLines(text: string): EvidenceRecord[] {
  return text.split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as EvidenceRecord);
}

const toLines = (records: readonly EvidenceRecord[]) => records.map((r) => JSON.stringify(r)).join('\n') + '\n';

/** Existing records plus the new ones, by sequence number; the same number with another hash is a conflict. */
function merge(existing: readonly EvidenceRecord[], incoming: readonly EvidenceRecord[], where: string): EvidenceRecord[] {
  const bySeq = new Map(existing.map((r) => [r.seq, r]));
  for (const record of incoming) {
    const stored = bySeq.get(record.seq);
    if (stored && stored.hash !== record.hash) {
      throw ApplicationFailure.nonRetryable(`evidence record ${record.seq} of ${record.workflowId} in ${where} differs from the one the run sealed (stored ${stored.hash.slice(0, 12)}…, sealed ${record.hash.slice(0, 12)}…): the stored log was altered`, 'EvidenceConflict');
    }
    bySeq.set(record.seq, record);
  }
  return [...bySeq.values()].sort((a, b) => a.seq - b.seq);
}

export function s3EvidenceStore(store: ObjectStore): EvidenceStore {
  const key = (workflowId: string, runId: string) => `evidence/${workflowId}/${runId}.jsonl`;
  const read = async (workflowId: string, runId: string) => {
    if (!(await store.exists(key(workflowId, runId)))) return [];
    const chunks: Buffer[] = [];
    for await (const chunk of (await store.getStream(key(workflowId, runId))) as Readable) chunks.push(Buffer.from(chunk as Buffer));
    return parseLines(Buffer.concat(chunks).toString('utf8'));
  };
  return {
    location: store.location,
    read,
    async append(workflowId, runId, records) {
      const merged = merge(await read(workflowId, runId), records, store.location);
      await store.putStream(key(workflowId, runId), Readable.from([Buffer.from(toLines(merged))]));
    },
  };
}

export function mirrorEvidenceStore(dir: string): EvidenceStore {
  const file = (workflowId: string, runId: string) => path.join(dir, encodeURIComponent(workflowId), `${runId}.jsonl`);
  const read = async (workflowId: string, runId: string) => {
    try {
      return parseLines(await readFile(file(workflowId, runId), 'utf8'));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
  };
  return {
    location: dir,
    read,
    async append(workflowId, runId, records) {
      const merged = merge(await read(workflowId, runId), records, dir);
      await mkdir(path.dirname(file(workflowId, runId)), { recursive: true });
      await writeFile(file(workflowId, runId), toLines(merged));
    },
  };
}

export function createEvidenceActivities(deps: { stores: readonly EvidenceStore[] }) {
  return {
    /** Appends sealed records of one run to every store (the local mirror first, then the bucket). */
    async appendEvidence(records: EvidenceRecord[]): Promise<void> {
      const first = records[0];
      if (!first) return;
      for (const store of deps.stores) await store.append(first.workflowId, first.runId, records);
    },
  };
}

export type EvidenceActivities = ReturnType<typeof createEvidenceActivities>;
