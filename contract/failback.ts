/**
 * Contract of the `failback` runbook: after an evacuation, return to the
 * original region with zero data loss. One run per region at a time.
 */
import type { DbPromotionPolicy, DbPromotionResult } from './db-promotion';
import type { NodeEndpoint } from './database';
import type { GatePolicy, RtoPolicy, RunContext } from './runbook';

export const FAILBACK_RUNBOOK = 'failback';
export const FAILBACK_WORKFLOW_TYPE = 'failback' as const;

export const failbackPlan = {
  steps: [
    { id: 'declare', title: 'Declare the failback: notify the incident channel' },
    { id: 'rebuild-standbys', title: 'Rebuild the original region as standbys of the current primaries (pg_rewind, else pg_basebackup)' },
    { id: 'catch-up', title: 'Wait until every rebuilt standby is caught up' },
    { id: 'switchover', title: 'Planned switchover per database, zero data loss (child db-promotion runs)', irreversible: true },
    { id: 'repoint-service', title: 'Re-point both regions’ services and DNS at the original primaries' },
    { id: 'verify-service', title: 'Synthetic checks in the original region: health, a write, a read' },
    { id: 'resume-traffic', title: 'Shift traffic back gradually (canary weights)' },
    { id: 'rebuild-old-primaries', title: 'Rebuild the other region as standbys again: the initial topology' },
    { id: 'record-evidence', title: 'Record measured duration and data loss; final notification' },
  ],
  gates: [{ id: 'switchover', title: 'Approve the switchover back (point of no return)', before: 'switchover' }],
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

export interface FailbackResult {
  workflowId: string;
  region: string;
  from: string;
  databases: Array<{ database: string; rebuiltWith: string; result: DbPromotionResult; rebuiltOldPrimaryWith: string }>;
  trafficAfter: Record<string, number>;
  durationSeconds: number;
  /** Worst bytes not replayed at promotion (undefined when one database could not measure it); met only by 0 bytes everywhere. */
  rpo: { measuredBytes?: number; met: boolean };
}

export function failbackWorkflowId(region: string): string {
  return `${FAILBACK_RUNBOOK}:${region}`;
}
