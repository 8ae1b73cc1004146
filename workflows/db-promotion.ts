/**
 * Runbook `db-promotion`: promote a database's standby to primary, with the old
 * primary fenced first and the promotion behind an approval gate.
 */
import { ActivityFailure, patched, proxyActivities, TimeoutFailure, workflowInfo, type ActivityOptions } from '@temporalio/workflow';
import { TimeoutType } from '@temporalio/common';
import { hostTaskQueue } from '../contract/queues';
import type { FenceResult } from '../contract/database';
import type { DatabaseActivities } from '../activities/database';
import { FailureType } from '../contract/failures';
import {
  DB_PROMOTION_RUNBOOK,
  dbPromotionHolds,
  dbPromotionPlan,
  type DbPromotionInput,
  type DbPromotionResult,
} from '../contract/db-promotion';
import type { RpoMeasurement } from '../contract/database';
import { RunbookRun } from './kernel/runbook-run';

const readOptions = {
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', maximumAttempts: 3, nonRetryableErrorTypes: [FailureType.UnknownDatabase] },
} as const satisfies ActivityOptions;

const fenceOptions = {
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', maximumAttempts: 3, nonRetryableErrorTypes: [FailureType.UnknownDatabase] },
} as const satisfies ActivityOptions;

/** pg_promote(wait => true) blocks up to 60 s; heartbeats let a lost worker be noticed in seconds. */
const promoteOptions = {
  startToCloseTimeout: '90 seconds',
  heartbeatTimeout: '10 seconds',
  retry: { initialInterval: '1 second', maximumAttempts: 5, nonRetryableErrorTypes: [FailureType.UnknownDatabase] },
} as const satisfies ActivityOptions;

/** A new primary may need a moment to accept writes: poll at a steady pace. */
const verifyOptions = {
  startToCloseTimeout: '20 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 1, maximumAttempts: 10, nonRetryableErrorTypes: [FailureType.UnknownDatabase] },
} as const satisfies ActivityOptions;

const db = proxyActivities<DatabaseActivities>(readOptions);

/** How long a host-bound fence may wait for its region's worker: planned needs it; unplanned then calls the node unreachable. */
const PLANNED_FENCE_WAIT_SECONDS = 60;
const UNPLANNED_FENCE_WAIT_SECONDS = 20;

/** The activity was never picked up (no worker on its queue): nothing ran, so nothing half-applied. */
function neverStarted(err: unknown): boolean {
  return err instanceof ActivityFailure && err.cause instanceof TimeoutFailure && err.cause.timeoutType === TimeoutType.SCHEDULE_TO_START;
}

/** Promotes `input.database`'s standby; see runbooks/db-promotion.md for the procedure. */
export async function dbPromotion(input: DbPromotionInput): Promise<DbPromotionResult> {
  const { database, mode, policy } = input;
  const towards = input.towards ?? 'standby';
  const run = new RunbookRun({
    runbook: DB_PROMOTION_RUNBOOK,
    target: database,
    plan: dbPromotionPlan,
    context: input.run,
    rto: policy.rto,
    rpoTargetSeconds: policy.rpoTargetSeconds,
    stepBudgets: policy.stepBudgets,
    gates: policy.gates,
    holds: dbPromotionHolds(input),
  });
  // Undos retry a bounded number of times; then the kernel asks a person (needs-attention).
  const undoOptions = {
    startToCloseTimeout: '30 seconds',
    retry: { initialInterval: '1 second', maximumAttempts: policy.compensationAttempts },
  } as const satisfies ActivityOptions;

  return run.execute(async () => {
    const preflight = await run.step('preflight', () =>
      db.preflightPromotion.executeWithOptions({ ...readOptions, summary: `preflight ${database}: healthy standby, replication lag` }, [database, mode, towards]),
    );

    // A self-managed node is fenced on its own host (a clean shutdown and a standby.signal), by the worker of
    // its region; runs from before host queues existed fenced it from here with a read-only default.
    const region = preflight.primary.region;
    const onHost = patched('lifeboat-fence-on-host') && preflight.fenceOnHost === true;
    const hostQueue = onHost ? { taskQueue: hostTaskQueue(workflowInfo().taskQueue, region) } : {};
    // Unplanned: a lost region's worker never answers; after this long the node counts as not fenced (unreachable).
    const lostAfter = mode === 'unplanned' ? UNPLANNED_FENCE_WAIT_SECONDS : PLANNED_FENCE_WAIT_SECONDS;
    const unfence = () => db.unfencePrimary.executeWithOptions({ ...undoOptions, ...hostQueue, ...(onHost ? { scheduleToStartTimeout: '2 minutes' } : {}), summary: `undo: unfence ${database} old primary (only while no other node is a primary)` }, [database, towards]);
    const fence = await run.step(
      'fence-primary',
      async (): Promise<FenceResult> => {
        try {
          return await db.fencePrimary.executeWithOptions(
            { ...fenceOptions, ...hostQueue, ...(onHost ? { scheduleToStartTimeout: `${lostAfter} seconds` } : {}), summary: onHost ? `fence ${database} old primary in ${region} (shutdown on its host)` : `fence ${database} old primary (read-only)` },
            [database, mode, towards],
          );
        } catch (err) {
          if (onHost && mode === 'unplanned' && neverStarted(err)) {
            return { fenced: false, attempted: false, reason: `not fenced: unreachable — no worker of region ${region} took the fence within ${lostAfter}s (the region may be lost)` };
          }
          throw err;
        }
      },
      // The fence can half-apply (stopped, answer lost): its undo is registered first.
      { undoIfInterrupted: unfence, compensate: (result) => (result.fenced || result.attempted ? unfence : undefined) },
    );
    if (!fence.fenced) run.skipped('fence-primary', fence.reason);

    const rpo = await run.step('catch-up', async (): Promise<RpoMeasurement> => {
      if (mode === 'planned' && fence.fenced) {
        const caughtUp = await db.waitForReplay.executeWithOptions(
          {
            startToCloseTimeout: '10 seconds',
            scheduleToCloseTimeout: `${policy.catchUpTimeoutSeconds} seconds`,
            retry: { initialInterval: '500 milliseconds', backoffCoefficient: 1, nonRetryableErrorTypes: [FailureType.UnknownDatabase] },
            summary: `wait for ${database} standby to replay ${fence.finalLsn}`,
          },
          [database, fence.finalLsn, towards],
        );
        return {
          measuredBytes: 0,
          measuredSeconds: 0,
          method: `planned: the standby replayed to ${caughtUp.replayLsn}, at or past the fenced primary's final LSN ${fence.finalLsn}`,
        };
      }
      return db.measureRpo.executeWithOptions({ ...readOptions, summary: `measure ${database} replication lag as RPO` }, [database, input.run.detectedAt, towards]);
    });
    const rpoStatus = run.recordRpo(rpo);

    // The gate sits right before the point of no return, after the fence: the approver decides
    // with the measured RPO in front of them, and a rejection or a timeout unfences the old primary.
    await run.gate('promote', { preApproved: input.preApproved });

    const promotion = await run.step(
      'promote',
      () => db.promoteStandby.executeWithOptions({ ...promoteOptions, summary: `promote ${database} ${towards === 'primary' ? 'original primary (failback)' : 'standby'} (pg_promote)` }, [database, towards]),
    );

    const { workflowId } = workflowInfo();
    await run.step('verify-write', () =>
      db.verifyWrite.executeWithOptions({ ...verifyOptions, summary: `verify a write on ${database} new primary` }, [database, workflowId, towards]),
    );
    const rto = run.recordRecovery();

    const result: DbPromotionResult = {
      workflowId,
      database,
      mode,
      promotedAt: promotion.promotedAt,
      alreadyPromoted: promotion.alreadyPromoted,
      newPrimary: promotion.newPrimary,
      timeline: promotion.timeline,
      fence: fence.fenced ? { fenced: true, method: fence.method ?? 'read-only default (ALTER SYSTEM)' } : { fenced: false, reason: fence.reason },
      rto,
      rpo: { ...rpo, targetSeconds: policy.rpoTargetSeconds, method: rpo.method, met: rpoStatus.met ?? false },
    };
    await run.step('record-evidence', () =>
      run.announce({
        audience: 'incident',
        kind: 'final',
        severity: 'info',
        subject: `${database} promoted in ${mode} mode`,
        body: `New primary ${promotion.newPrimary.region} ${promotion.newPrimary.host}:${promotion.newPrimary.port} (timeline ${promotion.timeline}). ` +
          `RTO ${rto.measuredSeconds.toFixed(1)}s of ${rto.budgetSeconds}s${rto.met ? '' : ' (EXCEEDED)'}; ` +
          `RPO ${rpo.measuredSeconds ?? '?'}s / ${rpo.measuredBytes ?? '?'} bytes against ${policy.rpoTargetSeconds}s.`,
      }),
    );
    return result;
  });
}
