/**
 * Contract of the `db-promotion` runbook: its input, result, plan and the
 * workflow id built from the business key, so two promotions of one database
 * cannot race.
 */
import type { GatePolicy, RtoPolicy, RunContext } from './runbook';
import type { PromotionTarget } from './database';
import type { StandbyCandidate } from './standby-choice';
import type { PreApproval } from './governance';
import type { TargetRef } from './holds';
import type { RtoOutcome, RunOutcome } from './outcome';
import { defineRunbook } from './definition';

export const DB_PROMOTION_RUNBOOK = 'db-promotion';
export const DB_PROMOTION_WORKFLOW_TYPE = 'dbPromotion' as const;

export type PromotionMode = 'planned' | 'unplanned';

/** The runbook's steps in order; the docs and the status are built from this list. */
export const dbPromotionPlan = {
  steps: [
    { id: 'preflight', title: 'Preflight: choose the standby (answering, in recovery, allowed by residency, streaming when planned; least WAL behind, then configured order); it is healthy; measure replication lag' },
    { id: 'fence-primary', title: 'Fence the old primary (read-only) if reachable', undo: 'unfence the old primary (registered before the fence runs)' },
    { id: 'catch-up', title: 'Planned: wait for the standby to replay the primary’s last LSN; unplanned: record the lag as RPO' },
    { id: 'promote', title: 'Promote the standby (pg_promote)', irreversible: true },
    { id: 'verify-write', title: 'Verify a write on the new primary' },
    { id: 'follow-new-primary', title: 'Re-point the other standbys at the new primary (each through its own slot); one that cannot follow is reported' },
    // The id is older than the step's job (the kernel records the RTO, RPO and evidence): operators' step budgets and recorded runs name it, so it stays.
    { id: 'record-evidence', title: 'Final notification with the measured RTO and RPO' },
  ],
  /** The gate opens after fence and catch-up, so the approver sees the measured RPO. */
  gates: [{ id: 'promote', title: 'Approve promotion (point of no return)', before: 'promote' }],
} as const;

export type DbPromotionStepId = (typeof dbPromotionPlan.steps)[number]['id'];
export type DbPromotionGateId = (typeof dbPromotionPlan.gates)[number]['id'];

export interface DbPromotionPolicy {
  rto: RtoPolicy;
  /** Per-step budgets in seconds (absent: no per-step budget). */
  stepBudgets: Partial<Record<DbPromotionStepId, number>>;
  gates: Record<DbPromotionGateId, GatePolicy>;
  rpoTargetSeconds: number;
  /** Planned mode: how long to wait for the standby to catch up before failing (and unfencing). */
  catchUpTimeoutSeconds: number;
  /** Attempts of each compensation before the run asks a person (needs-attention). */
  compensationAttempts: number;
  /** How often a return watch probes an unreachable old primary while no worker of its region runs (absent: 300). */
  returnWatchProbeSeconds?: number;
}

export interface DbPromotionInput {
  database: string;
  mode: PromotionMode;
  run: RunContext;
  policy: DbPromotionPolicy;
  /**
   * Which node becomes the primary (see PromotionTarget). Absent: the run chooses among the standbys (streaming
   * and allowed, least WAL behind, then configured order); `primary` or `primary:<region>`: failback.
   */
  towards?: PromotionTarget;
  /** Set by a parent run (an evacuation) whose own gate already approved the promotion; checked with that parent at admission. */
  preApproved?: PreApproval;
}

export interface DbPromotionResult extends RunOutcome {
  workflowId: string;
  database: string;
  mode: PromotionMode;
  promotedAt: string;
  alreadyPromoted: boolean;
  newPrimary: { region: string; host: string; port: number };
  timeline: number;
  /** How the old primary was fenced, or why it was not (absent on runs from before this was reported). */
  fence?: { fenced: true; method: string } | { fenced: false; reason: string };
  /** The return watch left to fence the old primary when its region answers again (only when it was unreachable). */
  returnWatch?: string;
  /** With several standbys: which one was promoted and why, and what every standby held (contract/standby-choice.ts). */
  choice?: { reason: string; candidates: StandbyCandidate[] };
  /** With several standbys: whether each other standby follows the new primary. */
  followers?: Array<{ region: string; following: boolean; method?: string; reason?: string }>;
  rto: RtoOutcome;
  /**
   * Judged by contract/rpo.ts: bytes of WAL not replayed first; a figure not measured is
   * undefined (never 0), and unknown is not met. `verdict` says why (absent on older runs).
   */
  rpo: { targetSeconds: number; measuredBytes?: number; measuredSeconds?: number; method: string; met: boolean; verdict?: string };
}

/** What a promotion may change, held for the run (whatever its workflow id). */
export function dbPromotionHolds(input: Pick<DbPromotionInput, 'database'>): TargetRef[] {
  return [{ kind: 'database', name: input.database }];
}

/** One promotion per database at a time: the workflow id is the business key. */
export function dbPromotionWorkflowId(database: string): string {
  return `${DB_PROMOTION_RUNBOOK}:${database}`;
}

/** The db-promotion runbook's one definition: the workflow, the worker and the CLI read it. */
export const dbPromotionRunbook = defineRunbook<DbPromotionInput, DbPromotionResult>()({
  name: DB_PROMOTION_RUNBOOK,
  workflowType: DB_PROMOTION_WORKFLOW_TYPE,
  plan: dbPromotionPlan,
  workflowId: dbPromotionWorkflowId,
  holds: dbPromotionHolds,
});
