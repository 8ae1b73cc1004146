/**
 * Contract of the return watch: what a run that passed its point of no return
 * leaves behind for a part of the lost region it could not reach. An old
 * primary that did not answer is fenced as soon as its region's worker runs
 * again; a service that did not answer is frozen as soon as it answers. The
 * watch keeps its target held meanwhile, so nothing else (a failback, another
 * promotion) acts on a node that is not fenced.
 */
import type { TargetRef } from './holds';
import type { FenceResult, PromotionTarget } from './database';

export const RETURN_WATCH_WORKFLOW_TYPE = 'returnWatch' as const;

/** What the watch does when the lost part answers again. */
export type ReturnDuty =
  /** Fence `database`'s old primary (the node `towards` did not promote) on the worker of `region`. */
  | { kind: 'fence'; database: string; region: string; towards: PromotionTarget }
  /** Freeze risky writes of `region`'s service again. */
  | { kind: 'freeze'; region: string };

export interface ReturnWatchInput {
  duty: ReturnDuty;
  /** The run that left the watch (workflow id), for messages and the marker of the fence. */
  leftBy: string;
  runbook: string;
  incident?: string;
  drill: boolean;
  /** Seconds between checks of whether the old primary answers while no worker of its region runs (absent: 300). */
  probeEverySeconds?: number;
}

export type ReturnWatchResult =
  | { duty: 'fence'; database: string; region: string; fence: FenceResult; at: string }
  | { duty: 'freeze'; region: string; at: string };

/** One watch per target; a later run that leaves one again reuses the id. */
export function returnWatchWorkflowId(duty: ReturnDuty): string {
  return duty.kind === 'fence' ? `lifeboat-return-watch:database:${duty.database}` : `lifeboat-return-watch:region:${duty.region}`;
}

/** The target the watch keeps held until its duty is done. */
export function returnWatchTarget(duty: ReturnDuty): TargetRef {
  return duty.kind === 'fence' ? { kind: 'database', name: duty.database } : { kind: 'region', name: duty.region };
}

export function describeDuty(duty: ReturnDuty): string {
  return duty.kind === 'fence'
    ? `fence ${duty.database}'s old primary in ${duty.region} as soon as a worker of ${duty.region} runs again`
    : `freeze risky writes of the ${duty.region} service as soon as it answers again`;
}
