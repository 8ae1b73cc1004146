/**
 * What every runbook's result carries beside its own fields: the measured
 * recovery against its budget (RTO), the data loss (RPO), how long the run
 * took, and the head of its evidence chain. The results extend RunOutcome, the
 * kernel builds its parts, and the readers of past runs (the dry run's
 * estimate, the audit) read a result through readOutcome instead of guessing
 * its shape. Sandbox-safe.
 */
import type { EvidenceHead } from './evidence';

/** Detection to verified recovery, against the budget (seconds). */
export interface RtoOutcome {
  budgetSeconds: number;
  measuredSeconds: number;
  met: boolean;
}

/** The data loss; a figure not measured is absent (never 0), and unknown is not met. */
export interface RpoOutcome {
  targetSeconds?: number;
  measuredBytes?: number;
  measuredSeconds?: number;
  met: boolean;
}

export interface RunOutcome {
  rto?: RtoOutcome;
  rpo?: RpoOutcome;
  /** Start to end of the run (seconds), for the runbooks that measure it. */
  durationSeconds?: number;
  /** The head of the run's evidence chain (absent on runs from before the chain existed). */
  evidence?: EvidenceHead;
}

function record(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}

function finite(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
}

/**
 * The outcome fields of a result read from outside (a past run's result is JSON of any age): a field
 * that is not there or not of its type is left out, never guessed. `restoreSeconds` is a restore
 * test's measured restore.
 */
export function readOutcome(result: unknown): RunOutcome & { restoreSeconds?: number } {
  const r = record(result);
  if (!r) return {};
  const rto = record(r.rto);
  const rpo = record(r.rpo);
  const evidence = record(r.evidence);
  const budgetSeconds = finite(rto?.budgetSeconds);
  const measuredSeconds = finite(rto?.measuredSeconds);
  const durationSeconds = finite(r.durationSeconds);
  const restoreSeconds = finite(record(r.restore)?.durationSeconds);
  return {
    ...(rto && budgetSeconds !== undefined && measuredSeconds !== undefined && typeof rto.met === 'boolean' ? { rto: { budgetSeconds, measuredSeconds, met: rto.met } } : {}),
    ...(rpo && typeof rpo.met === 'boolean'
      ? {
          rpo: {
            met: rpo.met,
            ...(finite(rpo.targetSeconds) !== undefined ? { targetSeconds: finite(rpo.targetSeconds) } : {}),
            ...(finite(rpo.measuredBytes) !== undefined ? { measuredBytes: finite(rpo.measuredBytes) } : {}),
            ...(finite(rpo.measuredSeconds) !== undefined ? { measuredSeconds: finite(rpo.measuredSeconds) } : {}),
          },
        }
      : {}),
    ...(durationSeconds !== undefined ? { durationSeconds } : {}),
    ...(evidence && typeof evidence.head === 'string' && finite(evidence.records) !== undefined ? { evidence: { head: evidence.head, records: finite(evidence.records) ?? 0 } } : {}),
    ...(restoreSeconds !== undefined ? { restoreSeconds } : {}),
  };
}

/**
 * How long a completed run took to do its job, for an estimate of the next one: its measured RTO,
 * else a restore test's restore, else the run's duration; undefined when the result says none.
 */
export function outcomeSeconds(outcome: RunOutcome & { restoreSeconds?: number }): number | undefined {
  return outcome.rto?.measuredSeconds ?? outcome.restoreSeconds ?? outcome.durationSeconds;
}
