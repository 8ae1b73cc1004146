/**
 * Procedures shared by the regional runbooks (evacuation, failback): parallel
 * database promotions as child runs, and a canary traffic ramp with checks.
 */
import { ChildWorkflowCancellationType, ParentClosePolicy, proxyActivities, sleep, startChild, type ActivityOptions } from '@temporalio/workflow';
import type { TrafficActivities } from '../activities/traffic';
import { DB_PROMOTION_RUNBOOK, dbPromotionWorkflowId, type DbPromotionInput } from '../contract/db-promotion';
import type { DatabaseEvacuationOutcome } from '../contract/regional-evacuation';
import { FailureType } from '../contract/failures';
import { describeRpo } from '../contract/rpo';
import type { RunContext } from '../contract/runbook';
import { dbPromotion } from './db-promotion';
import { describe, type PreApproval, type RunbookRun } from './kernel/runbook-run';

export const controlOptions = {
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', maximumAttempts: 3, nonRetryableErrorTypes: [FailureType.NotConfigured] },
} as const satisfies ActivityOptions;

/** After re-pointing, poll the checks at a steady pace until the surviving region answers. */
export const verifyOptions = {
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 1, maximumAttempts: 30, nonRetryableErrorTypes: [FailureType.NotConfigured] },
} as const satisfies ActivityOptions;

/** A DNS change includes waiting for INSYNC. */
export const dnsOptions = {
  startToCloseTimeout: '11 minutes',
  retry: { initialInterval: '2 seconds', maximumAttempts: 3, nonRetryableErrorTypes: [FailureType.NotConfigured] },
} as const satisfies ActivityOptions;

/** While traffic ramps up, one red check stops the ramp: no retry hides it. */
const canaryCheckOptions = {
  startToCloseTimeout: '30 seconds',
  retry: { maximumAttempts: 1 },
} as const satisfies ActivityOptions;

const app = proxyActivities<TrafficActivities>(dnsOptions);

export interface PromotionRequest {
  database: string;
  input: Omit<DbPromotionInput, 'database' | 'run' | 'preApproved'>;
  summary: string;
}

/**
 * Promotes every database as a child db-promotion run, in parallel (the time is
 * the slowest promotion, not the sum), each recorded in the parent's status.
 */
export async function promoteInParallel(run: RunbookRun, context: RunContext, preApproved: PreApproval, requests: readonly PromotionRequest[]): Promise<DatabaseEvacuationOutcome[]> {
  return Promise.all(
    requests.map(async (request): Promise<DatabaseEvacuationOutcome> => {
      const childWorkflowId = dbPromotionWorkflowId(request.database);
      const track = (state: 'running' | 'completed' | 'failed', detail?: string) =>
        run.trackChild({ workflowId: childWorkflowId, runbook: DB_PROMOTION_RUNBOOK, target: request.database, state, detail });
      try {
        const child = await startChild(dbPromotion, {
          workflowId: childWorkflowId,
          args: [{ ...request.input, database: request.database, run: context, preApproved }],
          // A promotion is irreversible: it finishes even if the parent run is lost or cancelled.
          parentClosePolicy: ParentClosePolicy.ABANDON,
          cancellationType: ChildWorkflowCancellationType.ABANDON,
          staticSummary: request.summary,
        });
        track('running');
        const result = await child.result();
        track('completed', `timeline ${result.timeline}, RPO ${describeRpo(result.rpo)}`);
        return { database: request.database, childWorkflowId, state: 'promoted', result };
      } catch (err) {
        track('failed', describe(err));
        return { database: request.database, childWorkflowId, state: 'failed', error: describe(err) };
      }
    }),
  );
}

export interface Ramp {
  /** The region traffic moves to, and the region it leaves. */
  to: string;
  from: string;
  weights: readonly number[];
  holdSeconds: number;
  checkEverySeconds: number;
  /** Where the rest of the traffic goes at each stage (`maintenance`, or `from` when it still serves). */
  rest: string;
  databases: readonly string[];
  runId: string;
}

/** Canary ramp: at each weight, synthetic checks for `holdSeconds`; the first red check stops the ramp where it is. */
export async function rampTraffic(ramp: Ramp): Promise<void> {
  for (const weight of ramp.weights) {
    const weights: Record<string, number> = { [ramp.from]: 0, maintenance: 0 };
    weights[ramp.rest] = 100 - weight;
    weights[ramp.to] = weight;
    await app.shiftTraffic.executeWithOptions({ ...dnsOptions, summary: `canary: ${weight}% to ${ramp.to}` }, [weights, `lifeboat ${ramp.runId}: canary ${weight}%`]);
    for (let held = 0; ; held += ramp.checkEverySeconds) {
      await app.syntheticCheck.executeWithOptions({ ...canaryCheckOptions, summary: `canary ${weight}%: synthetic check in ${ramp.to}` }, [ramp.to, [...ramp.databases], ramp.runId]);
      if (held >= ramp.holdSeconds) break;
      await sleep(ramp.checkEverySeconds * 1000, { summary: `canary ${weight}%: hold` });
    }
  }
}
