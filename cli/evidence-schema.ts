/**
 * The shapes of evidence the CLI reads from outside (a bundle file, a stored log): checked at the edge and
 * typed after, so a malformed or hostile file is refused with what is wrong instead of being trusted by a cast.
 * Objects keep the keys they carry (loose): the hash covers every field, so a record is never rewritten here;
 * a record that was altered is caught by the chain, not hidden by the parser.
 */
import { z } from 'zod';
import { EVIDENCE_FORMAT, type EvidenceRecord } from '../contract/evidence';

const hex64 = z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lowercase hex digits (a SHA-256)');

export const evidenceRecordSchema = z.looseObject({
  format: z.literal(EVIDENCE_FORMAT),
  seq: z.number().int().positive(),
  at: z.string(),
  workflowId: z.string(),
  runId: z.string(),
  runbook: z.string(),
  kind: z.string(),
  detail: z.string(),
  by: z.string().optional(),
  step: z.string().optional(),
  gate: z.string().optional(),
  nonce: z.string().optional(),
  outcome: z.record(z.string(), z.unknown()).optional(),
  prev: hex64,
  hash: hex64,
});

export const evidenceHeadSchema = z.looseObject({ head: hex64, records: z.number().int().min(0) });

export const evidenceBundleSchema = z.looseObject({
  format: z.string(),
  workflowId: z.string(),
  runId: z.string(),
  exportedAt: z.string(),
  storedAt: z.string(),
  expected: evidenceHeadSchema.optional(),
  chain: z.array(evidenceRecordSchema),
  status: z.unknown().optional(),
  result: z.unknown().optional(),
  history: z.unknown(),
});

/** Parses `value` as `schema`, or throws one line per problem naming where it is in `what`. */
export function parseOrExplain<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((i) => `${i.path.length > 0 ? i.path.join('.') : '(top)'}: ${i.message}`).slice(0, 5);
  throw new Error(`${what} is not valid evidence: ${problems.join('; ')}`);
}

/** A record as parsed: the kind is checked by the chain (its hash covers it), so it is typed as the chain's own. */
export const asEvidenceRecords = (records: z.infer<typeof evidenceRecordSchema>[]): EvidenceRecord[] => records as EvidenceRecord[];
