/**
 * The tamper-evident evidence trail: one hash chain per run. Each record
 * carries the SHA-256 of the one before it; the workflow computes the hashes
 * (pure JS, deterministic on replay), an activity stores the records, and the
 * chain head is part of the run's result, so editing, deleting or truncating
 * the stored log is detected. `lifeboat evidence verify` recomputes it.
 */
import { sha256 } from '@noble/hashes/sha2';
import { bytesToHex, utf8ToBytes } from '@noble/hashes/utils';
import type { RunEventKind } from './runbook';

export const EVIDENCE_FORMAT = 'lifeboat-evidence/1';
/** The `prev` of the first record. */
export const GENESIS = '0'.repeat(64);

/** What a record witnesses: a run event, a step done, an undo done (the chain's own kinds beside the events). */
export type EvidenceKind = RunEventKind | 'step-done' | 'step-compensated';

/** Kinds about one gate: the record names the gate (and a decision the gate's opening, `nonce`). */
export const GATE_EVIDENCE_KINDS = ['gate-opened', 'gate-approved', 'gate-rejected', 'gate-timed-out', 'pre-approval-set-aside'] as const;
/** Kinds about one step: the record names the step. */
export const STEP_EVIDENCE_KINDS = ['step-done', 'step-compensated', 'step-failed', 'compensation-failed', 'point-of-no-return'] as const;
export type GateEvidenceKind = (typeof GATE_EVIDENCE_KINDS)[number];
export type StepEvidenceKind = (typeof STEP_EVIDENCE_KINDS)[number];

/** What every record carries, whatever it witnesses. */
interface RecordCommon {
  format: typeof EVIDENCE_FORMAT;
  /** 1, 2, 3, … without gaps. */
  seq: number;
  at: string;
  workflowId: string;
  runId: string;
  runbook: string;
  detail: string;
  by?: string;
  step?: string;
  gate?: string;
  /** The gate opening the decision was for. */
  nonce?: string;
  /** Measured results: the final state, RTO and RPO, a step's outcome. */
  outcome?: Record<string, unknown>;
  prev: string;
  hash: string;
}

/** A gate opened, decided, timed out, or its parent's approval set aside. */
export interface GateEvidenceRecord extends RecordCommon {
  kind: GateEvidenceKind;
  gate: string;
}

/** A step done, failed or undone, an undo that failed, the point of no return. */
export interface StepEvidenceRecord extends RecordCommon {
  kind: StepEvidenceKind;
  step: string;
}

/** Everything else the run records (its start, admission, holds, breaches, refusals, its end). */
export interface RunEvidenceRecord extends RecordCommon {
  kind: Exclude<EvidenceKind, GateEvidenceKind | StepEvidenceKind>;
}

/** One record of a run's chain, discriminated by `kind`: a gate's names its gate, a step's its step. */
export type EvidenceRecord = GateEvidenceRecord | StepEvidenceRecord | RunEvidenceRecord;

/** `Omit` over each member of a union (the built-in one would merge the members first). */
export type OmitEach<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** What a record says before the chain seals it. */
export type UnsealedRecord = OmitEach<EvidenceRecord, 'format' | 'prev' | 'hash'>;

/** Whether a record is about one gate (a reader may then use `record.gate`). */
export function isGateRecord(record: EvidenceRecord): record is GateEvidenceRecord {
  return (GATE_EVIDENCE_KINDS as readonly string[]).includes(record.kind);
}

/** Whether a record is about one step. */
export function isStepRecord(record: EvidenceRecord): record is StepEvidenceRecord {
  return (STEP_EVIDENCE_KINDS as readonly string[]).includes(record.kind);
}

export interface EvidenceHead {
  head: string;
  records: number;
  /** Records the bucket did not hold yet when the run closed; absent: every record was stored. */
  pending?: EvidencePending;
  /** Where the head is anchored in the Object Lock ledger (evidence.ledger), or why it is not (yet); absent: runs from before the ledger. */
  anchor?: AnchorState;
}

/**
 * A run's final head as the ledger keeps it: one object per run under `ledgerKey`, written once with
 * S3 Object Lock (COMPLIANCE retention), so a worker that can rewrite the evidence bucket cannot
 * replace the head its chain must end in; `lifeboat evidence verify` reads the oldest version.
 */
export interface EvidenceAnchor {
  workflowId: string;
  runId: string;
  runbook: string;
  head: string;
  records: number;
  /** When the run closed (ISO 8601). */
  at: string;
}

/** What anchoring a head came to. */
export type AnchorState =
  /** Written with COMPLIANCE retention until `retainUntil`. */
  | { state: 'anchored'; location: string; retainUntil: string; versionId?: string }
  /** The config names no evidence.ledger. */
  | { state: 'not-configured' }
  /** The ledger was not reached before the run closed: its evidence keeper writes it. */
  | { state: 'pending'; keeper: string }
  /** The ledger refused it (no Object Lock on the bucket, another head already anchored): never retried, recorded. */
  | { state: 'refused'; reason: string };

/** The ledger's refusal (no Object Lock on its bucket, another head already anchored): a config to fix, never retried. */
export const LEDGER_REFUSED = 'EvidenceLedgerRefused';

/** The ledger entry of one run. */
export function ledgerKey(workflowId: string, runId: string): string {
  return `ledger/${workflowId}/${runId}.json`;
}

/** The end of a chain a run handed to its evidence keeper, which keeps trying until it is stored. */
export interface EvidencePending {
  /** How many records, from `fromSeq` to the end of the chain. */
  records: number;
  fromSeq: number;
  /** The keeper's workflow id. */
  keeper: string;
}

/** The evidence keeper of one run: its id names the run, so a second handover of the same run is refused by the server. */
export function evidenceKeeperWorkflowId(workflowId: string, runId: string): string {
  return `lifeboat-evidence:${workflowId}:${runId}`;
}

export interface EvidenceKeeperInput {
  workflowId: string;
  runId: string;
  /** The records to store (idempotent by sequence number: some may be stored already). */
  records: EvidenceRecord[];
  /** The run's head, when the run could not write it to the ledger before it closed. */
  anchor?: EvidenceAnchor;
  /** Longest pause between two attempts (default 30 s). */
  maximumIntervalSeconds?: number;
}

export interface EvidenceKeeperResult {
  stored: number;
  storedAt: string;
  /** Set when the keeper held the run's anchor. */
  anchor?: AnchorState;
}

/** JSON with keys sorted at every level and undefined values left out: the bytes that are hashed. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map((v) => (v === undefined ? 'null' : canonicalJson(v))).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}

export function hashRecord(record: OmitEach<EvidenceRecord, 'hash'>): string {
  return bytesToHex(sha256(utf8ToBytes(canonicalJson(record))));
}

/** The bytes an artifact is stored as (canonical JSON) and their SHA-256, computed alike in the workflow and the store. */
export function artifactDigest(content: unknown): { text: string; digest: string } {
  const text = canonicalJson(content);
  return { text, digest: bytesToHex(sha256(utf8ToBytes(text))) };
}

/** The next record of a chain whose last hash is `prev`. */
export function sealRecord(fields: UnsealedRecord, prev: string): EvidenceRecord {
  const unsealed = { ...fields, format: EVIDENCE_FORMAT, prev } as OmitEach<EvidenceRecord, 'hash'>;
  return { ...unsealed, hash: hashRecord(unsealed) } as EvidenceRecord;
}

export interface ChainVerification {
  ok: boolean;
  records: number;
  head: string;
  /** Where the chain breaks: the 1-based position in the stored log, and why. */
  brokenAt?: { position: number; seq?: number; reason: string };
}

/** Recomputes the chain; with `expected` (from the run's result), a truncated log is detected too. */
export function verifyChain(records: readonly EvidenceRecord[], expected?: EvidenceHead): ChainVerification {
  let prev = GENESIS;
  for (const [i, record] of records.entries()) {
    const position = i + 1;
    const broken = (reason: string): ChainVerification => ({ ok: false, records: records.length, head: prev, brokenAt: { position, seq: record.seq, reason } });
    if (record.format !== EVIDENCE_FORMAT) return broken(`unknown format ${JSON.stringify(record.format)}`);
    if (record.seq !== position) return broken(`expected record ${position}, found record ${record.seq}: a record is missing or out of order`);
    if (record.prev !== prev) return broken(`its prev ${record.prev.slice(0, 12)}… is not the hash of the record before (${prev.slice(0, 12)}…): a record before it was removed or replaced`);
    const { hash, ...unsealed } = record;
    const recomputed = hashRecord(unsealed);
    if (recomputed !== hash) return broken(`its content does not match its hash (recomputed ${recomputed.slice(0, 12)}…, stored ${hash.slice(0, 12)}…): the record was edited`);
    prev = hash;
  }
  if (expected && (expected.records !== records.length || expected.head !== prev)) {
    const position = Math.min(records.length, expected.records) + 1;
    return {
      ok: false,
      records: records.length,
      head: prev,
      brokenAt: { position, reason: `the run's result says the chain has ${expected.records} records ending in ${expected.head.slice(0, 12)}…; the stored log has ${records.length} ending in ${prev.slice(0, 12)}…: records were removed from the end` },
    };
  }
  return { ok: true, records: records.length, head: prev };
}
