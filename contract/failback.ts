/**
 * Contract of the `failback` runbook: after an evacuation, return to the
 * original region with zero data loss, and never discard what a former
 * primary holds without a copy and a gate. One run per region at a time.
 */
import type { DbPromotionPolicy, DbPromotionResult } from './db-promotion';
import type { DiscardOutcome } from './divergence';
import type { NodeEndpoint } from './database';
import type { GatePolicy, RtoPolicy, RunContext } from './runbook';
import type { TargetRef } from './holds';
import type { RunOutcome } from './outcome';
import { defineRunbook } from './definition';

export const FAILBACK_RUNBOOK = 'failback';
export const FAILBACK_WORKFLOW_TYPE = 'failback' as const;

export const failbackPlan = {
  steps: [
    { id: 'declare', title: 'Declare the failback: notify the incident channel' },
    { id: 'measure-divergence', title: 'Stop the original primaries; measure each one’s WAL past the fork point of the current primary’s timeline', undo: 'restart the nodes it stopped that ran read-only or as standbys' },
    { id: 'keep-divergence', title: 'Where a node diverged: copy its data directory aside, read the reconciliation report from the copy, store it with the evidence' },
    { id: 'rebuild-standbys', title: 'Rebuild the original region as standbys of the current primaries (pg_rewind, else pg_basebackup)' },
    { id: 'catch-up', title: 'Wait until every rebuilt standby is caught up' },
    { id: 'switchover', title: 'Planned switchover per database, zero data loss (child db-promotion runs)', irreversible: true },
    { id: 'repoint-service', title: 'Re-point both regions’ services and DNS at the original primaries' },
    { id: 'verify-service', title: 'Synthetic checks in the original region: health, a write, a read' },
    { id: 'resume-traffic', title: 'Shift traffic back gradually (canary weights)' },
    { id: 'measure-old-primaries', title: 'Stop the other region’s nodes; measure their WAL past the fork point of the original primaries’ new timeline' },
    { id: 'keep-old-primaries', title: 'Where one diverged: copy it aside and read the reconciliation report' },
    { id: 'rebuild-old-primaries', title: 'Rebuild the other region as standbys again: the initial topology' },
    // The id is older than the step's job (the kernel records the RTO, RPO and evidence): operators' step budgets and recorded runs name it, so it stays.
    { id: 'record-evidence', title: 'Final notification with the measured duration, data loss and what each rebuild discarded per database' },
  ],
  gates: [
    {
      id: 'discard-divergence',
      title: 'Approve discarding what a former primary holds past the fork (opens only when one diverged; its copy and report are kept)',
      before: 'rebuild-standbys',
    },
    { id: 'switchover', title: 'Approve the switchover back (point of no return)', before: 'switchover' },
  ],
} as const;

export type FailbackStepId = (typeof failbackPlan.steps)[number]['id'];
export type FailbackGateId = (typeof failbackPlan.gates)[number]['id'];

export interface FailbackDatabase {
  name: string;
  /** The original primary, where the database returns to. */
  home: NodeEndpoint;
  promotion: DbPromotionPolicy;
}

export interface FailbackPolicy {
  rto: RtoPolicy;
  stepBudgets: Partial<Record<FailbackStepId, number>>;
  gates: Record<FailbackGateId, GatePolicy>;
  canary: { weights: number[]; holdSeconds: number; checkEverySeconds: number };
  /** A rebuilt standby counts as caught up within this many bytes of its primary. */
  catchUpMaxLagBytes: number;
  catchUpTimeoutSeconds: number;
  compensationAttempts: number;
  statusEverySeconds: number;
  /** Reconciliation report limits per table: keys listed, rows shown (counts are always complete). Absent in runs started before it existed. */
  reconciliation?: { keyLimit: number; rowLimit: number };
}

export interface FailbackInput {
  /** The original region, where the databases return. */
  region: string;
  /** The region serving now (where the evacuation went). */
  from: string;
  run: RunContext;
  databases: FailbackDatabase[];
  policy: FailbackPolicy;
}

export interface FailbackResult extends RunOutcome {
  workflowId: string;
  region: string;
  from: string;
  databases: Array<{
    database: string;
    rebuiltWith: string;
    result: DbPromotionResult;
    rebuiltOldPrimaryWith: string;
    /**
     * What each rebuild of a former primary discarded, measured before it ran: `discardedBytes`
     * is 0 only where it measured 0. Absent on runs from before the measurement existed.
     */
    discarded?: DiscardOutcome[];
  }>;
  trafficAfter: Record<string, number>;
  durationSeconds: number;
  /** `measuredBytes`: the most any database lost (switchover plus discarded); absent when a loss is unknown. */
  rpo: { measuredBytes?: number; met: boolean };
}

/** Both regions (the failback changes the topology of each) and every database it returns. */
export function failbackHolds(input: Pick<FailbackInput, 'region' | 'from'> & { databases: ReadonlyArray<{ name: string }> }): TargetRef[] {
  return [{ kind: 'region', name: input.region }, { kind: 'region', name: input.from }, ...input.databases.map((d) => ({ kind: 'database' as const, name: d.name }))];
}

export function failbackWorkflowId(region: string): string {
  return `${FAILBACK_RUNBOOK}:${region}`;
}

/** The failback runbook's one definition. */
export const failbackRunbook = defineRunbook<FailbackInput, FailbackResult>()({
  name: FAILBACK_RUNBOOK,
  workflowType: FAILBACK_WORKFLOW_TYPE,
  plan: failbackPlan,
  workflowId: failbackWorkflowId,
  holds: failbackHolds,
});
