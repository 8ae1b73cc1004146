/**
 * The shapes of evidence the CLI reads from outside (a bundle file, a stored log): checked at the edge and
 * typed after, so a malformed or hostile file is refused with what is wrong instead of being trusted by a cast.
 * Objects keep the keys they carry (loose): the hash covers every field, so a record is never rewritten here;
 * a record that was altered is caught by the chain, not hidden by the parser.
 */
import { z } from 'zod';
import { EVIDENCE_FORMAT, GATE_EVIDENCE_KINDS, STEP_EVIDENCE_KINDS, type EvidenceRecord } from '../contract/evidence';

const hex64 = z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lowercase hex digits (a SHA-256)');

const recordFields = z.looseObject({
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

/** A record, its kind's own fields required: a gate's names its gate, a step's its step (contract/evidence.ts). */
export const evidenceRecordSchema = recordFields.superRefine((record, ctx) => {
  if ((GATE_EVIDENCE_KINDS as readonly string[]).includes(record.kind) && record.gate === undefined) {
    ctx.addIssue({ code: 'custom', path: ['gate'], message: `a ${record.kind} record names its gate` });
  }
  if ((STEP_EVIDENCE_KINDS as readonly string[]).includes(record.kind) && record.step === undefined) {
    ctx.addIssue({ code: 'custom', path: ['step'], message: `a ${record.kind} record names its step` });
  }
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

/** A record as parsed: its kind's fields are checked above, and the kind itself by the chain (its hash covers it). */
export const asEvidenceRecords = (records: z.infer<typeof evidenceRecordSchema>[]): EvidenceRecord[] => records as EvidenceRecord[];
