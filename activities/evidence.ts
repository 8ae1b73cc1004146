/**
 * Stores the evidence chain a run computes (contract/evidence.ts): JSON lines
 * per run in the evidence bucket (S3) and mirrored in a local directory.
 * Appends are idempotent by sequence number, so a retried activity never
 * writes a record twice; a different record under a taken number is refused.
 * Artifacts (a reconciliation report) are stored beside the chain as
 * canonical JSON; the chain holds their SHA-256, so an edited one is detected.
 * Each run's final head is anchored once in the ledger (evidence.ledger), a
 * bucket with S3 Object Lock where its versions are kept under COMPLIANCE
 * retention, so rewriting the evidence bucket cannot replace a whole chain.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { ApplicationFailure } from '@temporalio/common';
import { artifactDigest, canonicalJson, LEDGER_REFUSED, ledgerKey, type AnchorState, type EvidenceAnchor, type EvidenceRecord } from '../contract/evidence';
import type { ObjectStore, RetainedObjectStore } from './s3';


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

/** A run's entry in the ledger as first written (its oldest version), with what the server keeps about it. */
export interface LedgerEntry {
  anchor: EvidenceAnchor;
  /** s3://bucket/key */
  location: string;
  versionId: string;
  /** How many versions the key has: more than one means someone wrote over the anchor (the first one still stands). */
  versions: number;
  /** The oldest version's retention as the server reports it. */
  retention: { mode?: string; retainUntil?: Date };
}

/** The evidence ledger: each run's final head, written once under Object Lock retention. */
export interface EvidenceLedger {
  readonly location: string;
  /** Writes the run's head (idempotent: the same head already anchored is returned); another head already anchored is refused. */
  anchor(entry: EvidenceAnchor): Promise<Extract<AnchorState, { state: 'anchored' }>>;
  /** The run's anchored entry (the key's oldest version), or undefined when the ledger has none. */
  read(workflowId: string, runId: string): Promise<LedgerEntry | undefined>;
}

function parseAnchor(text: string, where: string): EvidenceAnchor {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new Error(`the ledger entry ${where} is not JSON: ${(err as Error).message}`, { cause: err });
  }
  const v = value as Partial<EvidenceAnchor> | null;
  if (!v || typeof v.head !== 'string' || typeof v.records !== 'number' || typeof v.workflowId !== 'string' || typeof v.runId !== 'string') {
    throw new Error(`the ledger entry ${where} is not an anchor (workflowId, runId, head, records): ${text.slice(0, 200)}`);
  }
  return { workflowId: v.workflowId, runId: v.runId, runbook: String(v.runbook ?? ''), head: v.head, records: v.records, at: String(v.at ?? '') };
}

/**
 * The ledger on a bucket with Object Lock. The bucket's lock is checked once (GetObjectLockConfiguration):
 * a bucket without it is refused, never written plainly, since a plain object could be replaced.
 */
export function s3EvidenceLedger(store: RetainedObjectStore, retentionDays: number, now: () => Date = () => new Date()): EvidenceLedger {
  let lockChecked: Promise<void> | undefined;
  const requireLock = () =>
    (lockChecked ??= store.objectLock().then(
      (lock) => {
        if (!lock.enabled) {
          throw ApplicationFailure.create({
            type: LEDGER_REFUSED,
            nonRetryable: true,
            message: `the evidence ledger ${store.location} has no Object Lock (${lock.reason}): an anchor there could be overwritten or deleted, so none is written; create the bucket with Object Lock enabled (ObjectLockEnabledForBucket) or name another in evidence.ledger.bucket`,
          });
        }
      },
      (err: unknown) => {
        // Unreachable or denied: ask again next time.
        lockChecked = undefined;
        throw err;
      },
    ));
  const read = async (workflowId: string, runId: string): Promise<LedgerEntry | undefined> => {
    const key = ledgerKey(workflowId, runId);
    const versions = await store.versions(key);
    const first = versions[0];
    if (!first) return undefined;
    const location = `${store.location}/${key}`;
    const anchor = parseAnchor(await store.getVersion(key, first.versionId), `${location} (version ${first.versionId})`);
    return { anchor, location, versionId: first.versionId, versions: versions.length, retention: await store.retention(key, first.versionId) };
  };
  return {
    location: store.location,
    read,
    async anchor(entry) {
      await requireLock();
      const existing = await read(entry.workflowId, entry.runId);
      if (existing) {
        // A retried or handed-over anchor: the run's own earlier attempt wrote it.
        if (existing.anchor.head === entry.head && existing.anchor.records === entry.records) {
          return { state: 'anchored', location: existing.location, retainUntil: existing.retention.retainUntil?.toISOString() ?? '', versionId: existing.versionId };
        }
        throw ApplicationFailure.create({
          type: LEDGER_REFUSED,
          nonRetryable: true,
          message: `the ledger already anchors ${existing.anchor.head.slice(0, 12)}… (${existing.anchor.records} records) for ${entry.workflowId} run ${entry.runId} at ${existing.location}; the run's head is ${entry.head.slice(0, 12)}… (${entry.records} records): the first anchor stands`,
        });
      }
      const retainUntil = new Date(now().getTime() + retentionDays * 86_400_000);
      const key = ledgerKey(entry.workflowId, entry.runId);
      const { versionId } = await store.putRetained(key, `${canonicalJson(entry)}\n`, retainUntil);
      return { state: 'anchored', location: `${store.location}/${key}`, retainUntil: retainUntil.toISOString(), ...(versionId ? { versionId } : {}) };
    },
  };
}

export function createEvidenceActivities(deps: { stores: readonly EvidenceStore[]; ledger?: EvidenceLedger }) {
  return {
    /** Anchors a run's final head in the ledger (evidence.ledger); without one, says so. */
    async anchorEvidence(anchor: EvidenceAnchor): Promise<AnchorState> {
      if (!deps.ledger) return { state: 'not-configured' };
      return deps.ledger.anchor(anchor);
    },

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
