/**
 * The memos Lifeboat writes on the runs and Schedules it starts, read back through a schema: a memo is set
 * by whoever started the workflow (a raw start may carry anything), so it is checked, never cast.
 */
import { z } from 'zod';

/** On each run `lifeboat start` starts: its runbook and the targets it may change. */
export const runMemoSchema = z.object({ lifeboat: z.object({ runbook: z.string(), targets: z.array(z.string()) }) });
export type RunMemo = z.infer<typeof runMemoSchema>;

/** On each Schedule `lifeboat schedules apply` writes: the hash of what it schedules. */
export const scheduleMemoSchema = z.object({ lifeboat: z.object({ specHash: z.string() }) });

/** The memo as `schema` says, or undefined for one Lifeboat did not write (or that does not have that shape). */
export function readMemo<T>(schema: z.ZodType<T>, memo: unknown): T | undefined {
  const parsed = schema.safeParse(memo);
  return parsed.success ? parsed.data : undefined;
}
