/**
 * Contract of the `regional-evacuation` runbook: a region is lost (or must be
 * left); its databases are promoted in the surviving region, traffic moves
 * there, and the service is verified. One run per region at a time.
 */
import type { DbPromotionPolicy, DbPromotionResult, PromotionMode } from './db-promotion';
import type { GatePolicy, RtoPolicy, RunContext, SkippedRun } from './runbook';
import type { TargetRef } from './holds';
import type { RtoOutcome, RunOutcome } from './outcome';
import { defineRunbook } from './definition';

export const REGIONAL_EVACUATION_RUNBOOK = 'regional-evacuation';
export const REGIONAL_EVACUATION_WORKFLOW_TYPE = 'regionalEvacuation' as const;

export const regionalEvacuationPlan = {
  steps: [
    { id: 'declare', title: 'Declare: notify the incident channel, page the on-call, start status updates' },
    { id: 'freeze-writes', title: 'Freeze risky writes in the evacuated region', undo: 'unfreeze writes' },
    { id: 'drain-traffic', title: 'Shift DNS weights away from the region (to the maintenance page)', undo: 'restore the DNS weights read before the change' },
    { id: 'promote-databases', title: 'Promote every database of the region in parallel (child db-promotion runs)', irreversible: true },
    { id: 'repoint-service', title: 'Re-point the surviving region at the promoted databases (service and DNS)' },
    { id: 'verify-service', title: 'Synthetic checks against the surviving region: health, a write, a read' },
    { id: 'resume-traffic', title: 'Resume traffic gradually on the surviving region (canary weights)' },
    // The id is older than the step's job (the kernel records the RTO, RPO and evidence): operators' step budgets and recorded runs name it, so it stays.
    { id: 'record-evidence', title: 'Final notification with the measured RTO and the RPO per database' },
  ],
  gates: [
    { id: 'drain-traffic', title: 'Approve draining traffic from the region', before: 'drain-traffic' },
    { id: 'promote-databases', title: 'Approve promoting the databases (point of no return)', before: 'promote-databases' },
  ],
} as const;

export type EvacuationStepId = (typeof regionalEvacuationPlan.steps)[number]['id'];
export type EvacuationGateId = (typeof regionalEvacuationPlan.gates)[number]['id'];

export interface EvacuatedDatabase {
  name: string;
  promotion: DbPromotionPolicy;
}

export interface RegionalEvacuationPolicy {
  rto: RtoPolicy;
  stepBudgets: Partial<Record<EvacuationStepId, number>>;
  gates: Record<EvacuationGateId, GatePolicy>;
  onPromotionFailure: 'abort' | 'continue-degraded';
  canary: { weights: number[]; holdSeconds: number; checkEverySeconds: number };
  compensationAttempts: number;
  /** Seconds between status updates to the incident channel (0: none). */
  statusEverySeconds: number;
}

export interface RegionalEvacuationInput {
  region: string;
  survivingRegion: string;
  mode: PromotionMode;
  run: RunContext;
  databases: EvacuatedDatabase[];
  policy: RegionalEvacuationPolicy;
}

export interface DatabaseEvacuationOutcome {
  database: string;
  childWorkflowId: string;
  /** `maintenance`: not promoted because it has nowhere allowed to go (residency); its requests get the maintenance page. */
  state: 'promoted' | 'failed' | 'maintenance';
  result?: DbPromotionResult;
  /** Why it failed, or why it is under maintenance. */
  error?: string;
}

export interface RegionalEvacuationResult extends RunOutcome {
  workflowId: string;
  region: string;
  survivingRegion: string;
  mode: PromotionMode;
  databases: DatabaseEvacuationOutcome[];
  trafficBefore: Record<string, number>;
  trafficAfter: Record<string, number>;
  rto: RtoOutcome;
  /**
   * Worst RPO across the promoted databases; a figure one of them could not measure is undefined
   * (never 0); met only when every promoted database met its own target.
   */
  rpo: { targetSeconds: number; measuredSeconds?: number; measuredBytes?: number; met: boolean };
  degraded: boolean;
  /** The return watch left to freeze the region's service when it answers again (only when it was unreachable). */
  returnWatch?: string;
}

/**
 * Both regions (the evacuated one and the one that takes its traffic: two evacuations towards each other
 * would drain both) and every database it evacuates: a promotion of one of them started by hand is refused.
 */
export function regionalEvacuationHolds(input: Pick<RegionalEvacuationInput, 'region' | 'survivingRegion'> & { databases: ReadonlyArray<{ name: string }> }): TargetRef[] {
  return [{ kind: 'region', name: input.region }, { kind: 'region', name: input.survivingRegion }, ...input.databases.map((d) => ({ kind: 'database' as const, name: d.name }))];
}

export function regionalEvacuationWorkflowId(region: string): string {
  return `${REGIONAL_EVACUATION_RUNBOOK}:${region}`;
}

/** The regional-evacuation runbook's one definition; a scheduled drill that finds its region held ends skipped. */
export const regionalEvacuationRunbook = defineRunbook<RegionalEvacuationInput, RegionalEvacuationResult | SkippedRun>()({
  name: REGIONAL_EVACUATION_RUNBOOK,
  workflowType: REGIONAL_EVACUATION_WORKFLOW_TYPE,
  plan: regionalEvacuationPlan,
  workflowId: regionalEvacuationWorkflowId,
  holds: regionalEvacuationHolds,
});
