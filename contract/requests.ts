/**
 * The shapes of the messages a run takes from outside (gate decisions, cancels,
 * resolutions, acknowledgements), as zod schemas: a handler checks a message's
 * shape here before any rule (who may, which gate, which opening) in
 * workflows/kernel/decisions.ts. Sandbox-safe; each field's error says what to
 * send instead.
 */
import { z } from 'zod';

/** The longest comment or reason a run records. */
export const MAX_TEXT = 2000;

const text = (what: string) => z.string({ error: `${what} must be a string` }).max(MAX_TEXT, { error: `${what} is longer than ${MAX_TEXT} characters` });

/** A gate decision: the `decide` Update's request, or an `approve`/`reject` signal's payload. */
export const decisionSchema = z.object(
  {
    gate: z.string({ error: 'a decision must name the gate (string field "gate")' }).min(1, { error: 'a decision must name the gate (string field "gate")' }),
    approver: z.string({ error: 'a decision must name the approver (string field "approver")' }).min(1, { error: 'a decision must name the approver (string field "approver")' }),
    comment: text('the comment').optional(),
    nonce: z.string({ error: 'the nonce must be a string' }).optional(),
    signature: z.string({ error: 'the signature must be a base64 string' }).optional(),
    decision: z.enum(['approve', 'reject'], { error: (issue) => `decision must be "approve" or "reject", not ${JSON.stringify(issue.input)}` }).optional(),
  },
  { error: 'a decision must be an object {gate, approver, comment?, nonce?}' },
);

/** A resolution of the failed undo a run in needs-attention waits on. */
export const resolutionSchema = z.object(
  {
    by: z.string({ error: 'resolve a run must name who does it' }).min(1, { error: 'resolve a run must name who does it' }),
    action: z.enum(['retry', 'done-by-hand'], { error: 'action must be "retry" or "done-by-hand"' }),
    comment: z
      .string({ error: 'a resolution needs a comment saying what was done' })
      .max(MAX_TEXT, { error: `the comment is longer than ${MAX_TEXT} characters` })
      .refine((c) => c.trim() !== '', { error: 'a resolution needs a comment saying what was done' }),
    attention: z.string({ error: 'attention must name the failed undo (the status attention.id)' }).optional(),
    signature: z.string({ error: 'the signature must be a base64 string' }).optional(),
  },
  { error: 'a resolution must be an object {by, comment, action}' },
);

/** A request to cancel a run, recorded before the cancellation. */
export const cancelSchema = z.object(
  {
    by: z.string({ error: 'cancel a run must name who does it' }).min(1, { error: 'cancel a run must name who does it' }),
    reason: z
      .string({ error: 'a cancel needs a reason' })
      .max(MAX_TEXT, { error: `the reason is longer than ${MAX_TEXT} characters` })
      .refine((r) => r.trim() !== '', { error: 'a cancel needs a reason' }),
    signature: z.string({ error: 'the signature must be a base64 string' }).optional(),
  },
  { error: 'a cancel request must be an object {by, reason}' },
);

/** What is wrong with `message` by `schema`, or undefined when its shape is right. */
export function shapeRefusal(schema: z.ZodType, message: unknown): string | undefined {
  const parsed = schema.safeParse(message);
  return parsed.success ? undefined : (parsed.error.issues[0]?.message ?? 'malformed request');
}
