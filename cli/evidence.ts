/**
 * `lifeboat evidence verify|export`: recompute a run's evidence chain from its
 * stored log (the evidence bucket, else the local mirror; read with the CLI's
 * own credentials, cli/readers.ts) and check it against
 * the chain head in the run's result and against the head anchored in the
 * Object Lock ledger (evidence.ledger, its oldest version); export a bundle
 * (chain, history, final status, result) that an auditor verifies offline with
 * `verify --bundle`.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import type { LoadedConfig } from '../config/load';
import { verifyChain, type ChainVerification, type EvidenceHead, type EvidenceKeeperResult, type EvidencePending, type EvidenceRecord } from '../contract/evidence';
import { evidencePendingQuery, statusQuery, type RunbookStatus } from '../contract/runbook';
import { evidenceReader, ledgerReader, type EvidenceReader, type LedgerReader } from './readers';
import { asEvidenceRecords, evidenceBundleSchema, parseOrExplain } from './evidence-schema';
import { RunRefusedError } from './runs';

export const BUNDLE_FORMAT = 'lifeboat-evidence-bundle/1';

export interface EvidenceBundle {
  format: typeof BUNDLE_FORMAT;
  workflowId: string;
  runId: string;
  exportedAt: string;
  storedAt: string;
  /** The chain head the run itself reported (its result, or its final status). */
  expected?: EvidenceHead;
  /** The stored log, and the records its evidence keeper held when the bucket did not have them yet. */
  chain: EvidenceRecord[];
  /** Set when part of `chain` came from the keeper, not from `storedAt`. */
  pending?: EvidencePending;
  status?: RunbookStatus;
  result?: unknown;
  /** The run's full event history (Temporal's JSON form; payloads as the server stores them). */
  history: unknown;
}

export interface EvidenceReport extends ChainVerification {
  workflowId: string;
  runId: string;
  source: string;
  expected?: EvidenceHead;
  /** Records found in `source`. */
  stored: number;
  /** Records of the chain not in `source` yet, held by the run's evidence keeper (part of the verified chain). */
  pending?: EvidencePending;
  /** The chain's head against the Object Lock ledger (absent for a bundle verified offline). */
  anchor?: AnchorCheck;
}

/** What the ledger says about the run's head. `mismatch` and `missing` fail the verification. */
export type AnchorCheck =
  | { state: 'not-configured' }
  /** The ledger's first version holds this chain's head and record count. */
  | { state: 'anchored'; location: string; retainUntil?: string; mode?: string; versions: number; head: string; records: number }
  /** The ledger's first version holds another head: the stored chain is not the one the run anchored. */
  | { state: 'mismatch'; location: string; retainUntil?: string; mode?: string; versions: number; head: string; records: number }
  /** Its evidence keeper holds the anchor until the ledger takes it. */
  | { state: 'pending'; keeper: string }
  /** No entry where the run said it was, or its keeper ended without writing it. */
  | { state: 'missing'; reason: string }
  /** No entry, for a reason the run recorded (before the ledger, the worker had none, the ledger refused it). */
  | { state: 'not-anchored'; reason: string };

/** The run's head against the oldest version of its ledger entry (later versions are overwrites and prove nothing). */
async function checkAnchor(client: Client, ledger: LedgerReader | undefined, workflowId: string, runId: string, chain: { head: string; records: number }, expected: EvidenceHead | undefined): Promise<AnchorCheck> {
  if (!ledger) return { state: 'not-configured' };
  let entry = await ledger.read(workflowId, runId);
  const reported = expected?.anchor;
  if (!entry && reported?.state === 'pending') {
    const keeper = client.workflow.getHandle(reported.keeper);
    const described = await keeper.describe().catch((err: unknown) => {
      if (err instanceof WorkflowNotFoundError) return undefined;
      throw err;
    });
    if (!described) return { state: 'missing', reason: `the run handed its head to the evidence keeper ${reported.keeper}, which the server does not know, and the ledger ${ledger.location} has no entry` };
    if (described.status.name === 'RUNNING') return { state: 'pending', keeper: reported.keeper };
    // The keeper has just written it, or ended without.
    entry = await ledger.read(workflowId, runId);
    if (!entry) {
      const result = described.status.name === 'COMPLETED' ? ((await keeper.result()) as EvidenceKeeperResult) : undefined;
      const why = result?.anchor?.state === 'refused' ? `the ledger refused it: ${result.anchor.reason}` : `the keeper ended ${described.status.name.toLowerCase()} without writing it`;
      return { state: 'missing', reason: `the run handed its head to the evidence keeper ${reported.keeper}; ${why}` };
    }
  }
  if (!entry) {
    if (reported?.state === 'anchored') return { state: 'missing', reason: `the run anchored its head at ${reported.location}, which ${ledger.location} no longer holds` };
    const reason =
      reported?.state === 'refused' ? `the ledger refused the run's head: ${reported.reason}`
      : reported?.state === 'not-configured' ? 'the worker had no evidence.ledger when the run closed'
      : 'the run is from before the ledger (its result names no anchor)';
    return { state: 'not-anchored', reason };
  }
  const { anchor, location, versions, retention } = entry;
  const found = { location, versions, head: anchor.head, records: anchor.records, ...(retention.retainUntil ? { retainUntil: retention.retainUntil.toISOString() } : {}), ...(retention.mode ? { mode: retention.mode } : {}) };
  return anchor.head === chain.head && anchor.records === chain.records ? { state: 'anchored', ...found } : { state: 'mismatch', ...found };
}

async function collect(client: Client, loaded: LoadedConfig, workflowId: string, s: EvidenceReader) {
  const handle = client.workflow.getHandle(workflowId);
  let runId: string;
  let status: string;
  try {
    const described = await handle.describe();
    runId = described.runId;
    status = described.status.name;
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) throw new RunRefusedError(`no run with id '${workflowId}' in namespace ${loaded.config.temporal.namespace}: check the id ('lifeboat runs')`);
    throw err;
  }
  const run = client.workflow.getHandle(workflowId, runId);
  const result = status === 'COMPLETED' ? ((await run.result()) as { evidence?: EvidenceHead }) : undefined;
  // A run that did not complete has no result: its final status (answered by a worker) carries the head.
  const finalStatus = await run.query(statusQuery).catch(() => undefined);
  const expected = result?.evidence ?? finalStatus?.evidence;
  let chain: EvidenceRecord[];
  try {
    chain = await s.read(workflowId, runId);
  } catch (err) {
    if (/checksum mismatch/i.test((err as Error).message)) {
      throw new RunRefusedError(`the stored evidence of ${workflowId} in ${s.location} was changed outside S3 (its bytes no longer match the checksum S3 stored): treat it as tampered (${(err as Error).message})`);
    }
    throw err;
  }
  const stored = chain.length;
  // The run closed with its bucket down: the end of the chain is held by its evidence keeper until stored.
  const handed = expected?.pending;
  if (handed && stored < expected.records) {
    const held = await keeperRecords(client, handed);
    // An empty answer: the keeper has just stored them; read the log again.
    if (held.length === 0) chain = await s.read(workflowId, runId);
    else {
      const pending = { ...handed, records: held.filter((r) => !chain.some((c) => c.seq === r.seq)).length };
      return { run, runId, result, finalStatus, expected, source: s.location, chain: [...chain.filter((r) => r.seq < handed.fromSeq), ...held], stored, pending };
    }
  }
  return { run, runId, result, finalStatus, expected, source: s.location, chain, stored: chain.length, pending: undefined };
}

/**
 * Recomputes the run's chain from the stored log. When the run closed with records pending (its
 * result names its evidence keeper) and the log does not hold them yet, the keeper's records are
 * checked with the stored ones: the chain verifies and the report says which records are pending.
 */
export async function verifyRunEvidence(
  client: Client,
  loaded: LoadedConfig,
  workflowId: string,
  reader: EvidenceReader = evidenceReader(loaded),
  ledger: LedgerReader | undefined = ledgerReader(loaded),
): Promise<EvidenceReport> {
  const { runId, expected, source, chain, stored, pending } = await collect(client, loaded, workflowId, reader);
  if (chain.length === 0) throw new RunRefusedError(`no evidence stored for ${workflowId} (run ${runId}) in ${source}: a run from before the evidence chain, or its records were deleted`);
  const verified = verifyChain(chain, expected);
  const anchor = await checkAnchor(client, ledger, workflowId, runId, verified, expected);
  const anchorFails = anchor.state === 'mismatch' || anchor.state === 'missing';
  return { ...verified, ok: verified.ok && !anchorFails, workflowId, runId, source, expected, stored, ...(pending ? { pending } : {}), anchor };
}

/** The records the run's evidence keeper has not stored yet (empty once stored); a missing keeper is said so. */
async function keeperRecords(client: Client, pending: EvidencePending): Promise<EvidenceRecord[]> {
  try {
    return await client.workflow.getHandle(pending.keeper).query(evidencePendingQuery);
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) throw new RunRefusedError(`the run handed records ${pending.fromSeq}+ to the evidence keeper ${pending.keeper}, which the server does not know: they may be lost; check 'temporal workflow describe -w ${pending.keeper}'`);
    throw new RunRefusedError(`the run's records ${pending.fromSeq}+ are pending in the evidence keeper ${pending.keeper}, which did not answer (${(err as Error).message}): is a worker running?`);
  }
}

export async function exportRunEvidence(client: Client, loaded: LoadedConfig, workflowId: string, out: string, reader: EvidenceReader = evidenceReader(loaded)): Promise<EvidenceBundle> {
  const { run, runId, result, finalStatus, expected, source, chain, pending } = await collect(client, loaded, workflowId, reader);
  const history = await run.fetchHistory();
  const bundle: EvidenceBundle = {
    format: BUNDLE_FORMAT,
    workflowId,
    runId,
    exportedAt: new Date().toISOString(),
    storedAt: source,
    expected,
    chain,
    ...(pending ? { pending } : {}),
    status: finalStatus,
    result,
    history: JSON.parse(historyToJSON(history)) as unknown,
  };
  writeFileSync(out, `${JSON.stringify(bundle, null, 2)}\n`);
  return bundle;
}

/** Offline: the chain in the bundle against the head the run reported. */
export function verifyBundle(file: string): EvidenceReport {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new RunRefusedError(`${file} is not a Lifeboat evidence bundle: ${(err as Error).message}`);
  }
  const format = typeof raw === 'object' && raw !== null ? (raw as { format?: unknown }).format : undefined;
  if (format !== BUNDLE_FORMAT) throw new RunRefusedError(`${file} is not a Lifeboat evidence bundle (format ${JSON.stringify(format)})`);
  let parsed;
  try {
    parsed = parseOrExplain(evidenceBundleSchema, raw, file);
  } catch (err) {
    throw new RunRefusedError((err as Error).message);
  }
  const bundle = { ...parsed, chain: asEvidenceRecords(parsed.chain) };
  const fromResult = (bundle.result as { evidence?: EvidenceHead } | undefined)?.evidence;
  const expected = fromResult ?? bundle.expected;
  if (fromResult && bundle.expected && (fromResult.head !== bundle.expected.head || fromResult.records !== bundle.expected.records)) {
    return { ok: false, records: bundle.chain.length, head: '', brokenAt: { position: 0, reason: "the bundle's expected head differs from the head in the run's result: the bundle was altered" }, workflowId: bundle.workflowId, runId: bundle.runId, source: file, expected, stored: bundle.chain.length };
  }
  return { ...verifyChain(bundle.chain, expected), workflowId: bundle.workflowId, runId: bundle.runId, source: file, expected, stored: bundle.chain.length };
}

/** One line on the ledger's side of the report. */
export function formatAnchor(a: AnchorCheck): string {
  switch (a.state) {
    case 'not-configured':
      return 'not anchored (no evidence.ledger configured)';
    case 'pending':
      return `anchor pending: the evidence keeper ${a.keeper} holds the head and writes it to the ledger when it takes it; verify again to see it anchored`;
    case 'missing':
      return `ANCHOR MISSING: ${a.reason}`;
    case 'not-anchored':
      return `not anchored: ${a.reason}`;
    case 'anchored':
    case 'mismatch': {
      const retained = a.retainUntil ? `retained until ${a.retainUntil}${a.mode && a.mode !== 'COMPLIANCE' ? ` in ${a.mode} mode, not COMPLIANCE` : ''}` : 'NO retention on it';
      const overwritten = a.versions > 1 ? `; the ledger entry was overwritten; the anchored (first) head is ${a.head} (of ${a.versions} versions)` : '';
      return a.state === 'anchored'
        ? `anchored: head ${a.head} matches the ledger (${a.location}, ${retained})${overwritten}`
        : `ANCHOR MISMATCH: the ledger (${a.location}, ${retained}) anchored head ${a.head} (${a.records} records); the stored chain ends in a different head: the chain was replaced${overwritten}`;
    }
  }
}

export function formatEvidenceReport(r: EvidenceReport): string {
  const chain = formatChain(r);
  return r.anchor ? `${chain}\n${formatAnchor(r.anchor)}` : chain;
}

function formatChain(r: EvidenceReport): string {
  if (r.brokenAt === undefined && r.pending) {
    return `evidence of ${r.workflowId} (run ${r.runId}): ${r.records} records, chain verifies; head ${r.head} matches the run's result. ` +
      `PENDING: ${r.stored} stored in ${r.source}, ${r.pending.records} not yet (from record ${r.pending.fromSeq}), held by the evidence keeper ${r.pending.keeper}, which keeps trying until the bucket takes them; verify again to see them stored`;
  }
  if (r.brokenAt === undefined) {
    return `evidence of ${r.workflowId} (run ${r.runId}) in ${r.source}: ${r.records} records, chain verifies; head ${r.head}` +
      (r.expected ? ' matches the run\'s result' : ' (the run reported no head: truncation at the end cannot be ruled out)');
  }
  return `evidence of ${r.workflowId} (run ${r.runId}) in ${r.source}: BROKEN at record ${r.brokenAt?.position ?? '?'}${r.brokenAt?.seq !== undefined ? ` (seq ${r.brokenAt.seq})` : ''}: ${r.brokenAt?.reason ?? ''}`;
}
