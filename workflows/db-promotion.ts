/**
 * Runbook `db-promotion`: promote a database's standby to primary, with the old
 * primary fenced first and the promotion behind an approval gate.
 */
import { ApplicationFailure, isCancellation, patched, proxyActivities, workflowInfo, type ActivityOptions } from '@temporalio/workflow';
import type { DatabaseActivities } from '../activities/database';
import { FailureType } from '../contract/failures';
import {
  DB_PROMOTION_RUNBOOK,
  dbPromotionPlan,
  type DbPromotionInput,
  type DbPromotionResult,
} from '../contract/db-promotion';
import type { RpoMeasurement } from '../contract/database';
import { describeRpo } from '../contract/rpo';
import { describe, isDeadline, RunbookRun } from './kernel/runbook-run';

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

/** Not streaming may be a WAL receiver restarting: a few checks a second apart, then the refusal stands. */
const streamingOptions = {
  startToCloseTimeout: '15 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 1, maximumAttempts: 5, nonRetryableErrorTypes: [FailureType.UnknownDatabase] },
} as const satisfies ActivityOptions;

const db = proxyActivities<DatabaseActivities>(readOptions);

/** Runs started before these changes replay without them (test/histories/*.json). */
const PATCH_PLANNED_STREAMING = 'lifeboat-planned-streaming-recheck';
const PATCH_RPO_PREAPPROVAL = 'lifeboat-rpo-preapproval-guard';

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
  });
  // Undos retry a bounded number of times; then the kernel asks a person (needs-attention).
  const undoOptions = {
    startToCloseTimeout: '30 seconds',
    retry: { initialInterval: '1 second', maximumAttempts: policy.compensationAttempts },
  } as const satisfies ActivityOptions;

  return run.execute(async () => {
    await run.step('preflight', () =>
      db.preflightPromotion.executeWithOptions({ ...readOptions, summary: `preflight ${database}: healthy standby, replication lag` }, [database, mode, towards]),
    );

    const unfence = () => db.unfencePrimary.executeWithOptions({ ...undoOptions, summary: `undo: unfence ${database} old primary` }, [database, towards]);
    const fence = await run.step(
      'fence-primary',
      () => db.fencePrimary.executeWithOptions({ ...fenceOptions, summary: `fence ${database} old primary (read-only)` }, [database, mode, towards]),
      // The fence can half-apply (ALTER SYSTEM done, answer lost): its undo is registered first.
      { undoIfInterrupted: unfence, compensate: (result) => (result.fenced || result.attempted ? unfence : undefined) },
    );
    if (!fence.fenced) run.skipped('fence-primary', fence.reason);

    // Planned mode promotes only a streaming standby: preflight checked it, but streaming can stop
    // after preflight, so it is checked again after catch-up and right before the promotion.
    const confirmStreaming = async (stage: string) => {
      if (mode !== 'planned' || !patched(PATCH_PLANNED_STREAMING)) return;
      await db.confirmStreaming.executeWithOptions({ ...streamingOptions, summary: `planned: confirm ${database} standby still streams (${stage})` }, [{ database, towards, stage }]);
    };

    const rpo = await run.step('catch-up', async (): Promise<RpoMeasurement> => {
      const measured = await measure();
      await confirmStreaming('after catch-up');
      return measured;
    });
    const rpoStatus = run.recordRpo(rpo);

    // A parent's approval was given for what its approver saw; an RPO beyond this database's
    // target, or one that could not be measured, needs a person at this gate.
    const setAside = input.preApproved && !rpoStatus.met && patched(PATCH_RPO_PREAPPROVAL)
      ? `RPO at promotion time is ${describeRpo(rpoStatus)}: ${rpoStatus.verdict}`
      : undefined;

    // The gate sits right before the point of no return, after the fence: the approver decides
    // with the measured RPO in front of them, and a rejection or a timeout unfences the old primary.
    await run.gate('promote', { preApproved: input.preApproved, setAside });

    // Not a step: a refusal here rolls back (unfence), which the irreversible promote step no longer could.
    await confirmStreaming('right before promotion').catch((err: unknown) => {
      if (isCancellation(err)) throw err;
      throw ApplicationFailure.create({
        type: FailureType.StandbyNotHealthy,
        message: `planned promotion of ${database} refused right before promotion: ${describe(err)}; nothing was promoted`,
        nonRetryable: true,
        cause: err instanceof Error ? err : undefined,
      });
    });

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
      rto,
      rpo: { ...rpo, targetSeconds: policy.rpoTargetSeconds, method: rpo.method, met: rpoStatus.met, verdict: rpoStatus.verdict },
    };
    await run.step('record-evidence', () =>
      run.announce({
        audience: 'incident',
        kind: 'final',
        severity: 'info',
        subject: `${database} promoted in ${mode} mode`,
        body: `New primary ${promotion.newPrimary.region} ${promotion.newPrimary.host}:${promotion.newPrimary.port} (timeline ${promotion.timeline}). ` +
          `RTO ${rto.measuredSeconds.toFixed(1)}s of ${rto.budgetSeconds}s${rto.met ? '' : ' (EXCEEDED)'}; ` +
          `RPO ${describeRpo(rpoStatus)}: ${rpoStatus.verdict}.`,
      }),
    );
    return result;

    async function measure(): Promise<RpoMeasurement> {
      if (mode === 'planned' && fence.fenced) {
        const caughtUp = await db.waitForReplay.executeWithOptions(
          {
            startToCloseTimeout: '10 seconds',
            scheduleToCloseTimeout: `${policy.catchUpTimeoutSeconds} seconds`,
            // Infinity: executeWithOptions deep-merges the proxy's 3 attempts; the catch-up timeout is the bound.
            retry: { initialInterval: '500 milliseconds', backoffCoefficient: 1, maximumAttempts: Number.POSITIVE_INFINITY, nonRetryableErrorTypes: [FailureType.UnknownDatabase] },
            summary: `wait for ${database} standby to replay ${fence.finalLsn}`,
          },
          [database, fence.finalLsn, towards],
        ).catch((err: unknown) => {
          if (!isDeadline(err)) throw err;
          throw ApplicationFailure.create({
            type: FailureType.ReplayBehind,
            message: `standby of ${database} did not replay the fenced primary's final LSN ${fence.finalLsn} within catchUpTimeoutSeconds (${policy.catchUpTimeoutSeconds}s): ${describe(err)}`,
            nonRetryable: true,
            cause: err instanceof Error ? err : undefined,
          });
        });
        return {
          measuredBytes: 0,
          measuredSeconds: 0,
          method: `planned: the standby replayed to ${caughtUp.replayLsn}, at or past the fenced primary's final LSN ${fence.finalLsn}`,
        };
      }
      return db.measureRpo.executeWithOptions({ ...readOptions, summary: `measure ${database} replication lag as RPO` }, [database, input.run.detectedAt, towards]);
    }
  });
}
