/**
 * Stores the evidence chain a run computes (contract/evidence.ts): JSON lines
 * per run in the evidence bucket (S3) and mirrored in a local directory.
 * Appends are idempotent by sequence number, so a retried activity never
 * writes a record twice; a different record under a taken number is refused.
 * Artifacts (a reconciliation report) are stored beside the chain as
 * canonical JSON; the chain holds their SHA-256, so an edited one is detected.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { ApplicationFailure } from '@temporalio/common';
import { artifactDigest, type EvidenceRecord } from '../contract/evidence';
import type { ObjectStore } from './s3';

export interface EvidenceStore {
  readonly location: string;
  append(workflowId: string, runId: string, records: readonly EvidenceRecord[]): Promise<void>;
  /** The stored log of one run, in stored order (as an auditor would read it). */
  read(workflowId: string, runId: string): Promise<EvidenceRecord[]>;
  /** Writes an artifact of a run (canonical JSON text); the same name with other bytes is refused. */
  putArtifact(workflowId: string, runId: string, name: string, text: string): Promise<string>;
  /** An artifact's text, or undefined when it is not stored. */
  readArtifact(workflowId: string, runId: string, name: string): Promise<string | undefined>;
}

/** An artifact name is a file name: letters, digits, `.`, `_`, `-`. */
function artifactFile(name: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,150}$/.test(name)) throw ApplicationFailure.nonRetryable(`not an artifact name: ${JSON.stringify(name)}`, 'EvidenceConflict');
  return `${name}.json`;
}

function refuseOverwrite(existing: string | undefined, text: string, where: string): boolean {
  if (existing === undefined) return false;
  if (existing !== text) throw ApplicationFailure.nonRetryable(`artifact ${where} exists with other content: the stored artifact was altered or the run wrote two different ones under one name`, 'EvidenceConflict');
  return true;
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
  const artifactKey = (workflowId: string, runId: string, name: string) => `evidence/${workflowId}/${runId}/artifacts/${artifactFile(name)}`;
  const readArtifact = async (workflowId: string, runId: string, name: string) => {
    const k = artifactKey(workflowId, runId, name);
    if (!(await store.exists(k))) return undefined;
    const chunks: Buffer[] = [];
    for await (const chunk of (await store.getStream(k)) as Readable) chunks.push(Buffer.from(chunk as Buffer));
    return Buffer.concat(chunks).toString('utf8');
  };
  return {
    location: store.location,
    read,
    async append(workflowId, runId, records) {
      const merged = merge(await read(workflowId, runId), records, store.location);
      await store.putStream(key(workflowId, runId), Readable.from([Buffer.from(toLines(merged))]));
    },
    readArtifact,
    async putArtifact(workflowId, runId, name, text) {
      const k = artifactKey(workflowId, runId, name);
      if (!refuseOverwrite(await readArtifact(workflowId, runId, name), text, `${store.location}/${k}`)) await store.putStream(k, Readable.from([Buffer.from(text)]));
      return `${store.location}/${k}`;
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
  const artifactPath = (workflowId: string, runId: string, name: string) => path.join(dir, encodeURIComponent(workflowId), `${runId}.artifacts`, artifactFile(name));
  const readArtifact = async (workflowId: string, runId: string, name: string) => {
    try {
      return await readFile(artifactPath(workflowId, runId, name), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
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
    readArtifact,
    async putArtifact(workflowId, runId, name, text) {
      const target = artifactPath(workflowId, runId, name);
      if (!refuseOverwrite(await readArtifact(workflowId, runId, name), text, target)) {
        await mkdir(path.dirname(target), { recursive: true });
        await writeFile(target, text);
      }
      return target;
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

    /**
     * Stores an artifact of a run in every store (the mirror first). `digest` is the SHA-256 the
     * workflow computed and put in the chain: the bytes stored are the ones it names.
     */
    async storeArtifact(input: { workflowId: string; runId: string; name: string; digest: string; content: unknown }): Promise<{ locations: string[] }> {
      const { text, digest } = artifactDigest(input.content);
      if (digest !== input.digest) {
        throw ApplicationFailure.nonRetryable(`artifact ${input.name} of ${input.workflowId}: its content hashes to ${digest}, the run sealed ${input.digest}`, 'EvidenceConflict');
      }
      const locations: string[] = [];
      for (const store of deps.stores) locations.push(await store.putArtifact(input.workflowId, input.runId, input.name, text));
      return { locations };
    },
  };
}

export type EvidenceActivities = ReturnType<typeof createEvidenceActivities>;
