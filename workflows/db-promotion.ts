/**
 * Runbook `db-promotion`: promote a database's standby to primary, with the old
 * primary fenced first and the promotion behind an approval gate.
 */
import { ActivityFailure, ApplicationFailure, isCancellation, patched, TimeoutFailure, workflowInfo } from '@temporalio/workflow';
import { TimeoutType } from '@temporalio/common';
import { hostTaskQueue } from '../contract/queues';
import type { FenceResult, PromotionTarget, ReplicationInspection } from '../contract/database';
import type { StandbyChoice } from '../contract/standby-choice';
import type { DatabaseActivities } from '../activities/database';
import { FailureType } from '../contract/failures';
import {
  dbPromotionRunbook,
  type DbPromotionInput,
  type DbPromotionResult,
} from '../contract/db-promotion';
import type { RpoMeasurement } from '../contract/database';
import { describeRpo } from '../contract/rpo';
import { failureMessage, isDeadline, RunbookRun } from './kernel/runbook-run';
import { call } from './call';
import { databaseProfiles, pollUntil, proxyFor, undoProfile } from './options';

const { read: readOptions, fence: fenceOptions, promote: promoteOptions, verifyWrite: verifyOptions, streaming: streamingOptions, follow: followOptions } = databaseProfiles;
const db = proxyFor<DatabaseActivities>();

/** How long a host-bound fence may wait for its region's worker: planned needs it; unplanned then calls the node unreachable. */
const PLANNED_FENCE_WAIT_SECONDS = 60;
const UNPLANNED_FENCE_WAIT_SECONDS = 20;

/** The activity was never picked up (no worker on its queue): nothing ran, so nothing half-applied. */
function neverStarted(err: unknown): boolean {
  return err instanceof ActivityFailure && err.cause instanceof TimeoutFailure && err.cause.timeoutType === TimeoutType.SCHEDULE_TO_START;
}

/** Runs started before these changes replay without them (test/histories/*.json). */
const PATCH_PLANNED_STREAMING = 'lifeboat-planned-streaming-recheck';
const PATCH_RPO_PREAPPROVAL = 'lifeboat-rpo-preapproval-guard';
const PATCH_UNPLANNED_SHUTDOWN_RPO = 'lifeboat-unplanned-shutdown-rpo';
const PATCH_RETURN_WATCH = 'lifeboat-return-watch';
const PATCH_CHOOSE_STANDBY = 'lifeboat-choose-standby';
const PATCH_FOLLOW_NEW_PRIMARY = 'lifeboat-follow-new-primary';
const PATCH_CONFIRM_PROMOTABLE = 'lifeboat-confirm-promotable';
const PATCH_CHOICE_FOR_NAMED_STANDBY = 'lifeboat-choice-for-named-standby';
/** Unplanned, after a clean shutdown: how long the standby may take to replay the final LSN before the lag is measured instead. */
const UNPLANNED_CATCH_UP_SECONDS = 15;

/** Promotes `input.database`'s standby; see runbooks/db-promotion.md for the procedure. */
export async function dbPromotion(input: DbPromotionInput): Promise<DbPromotionResult> {
  const { database, mode, policy } = input;
  let towards: PromotionTarget = input.towards ?? 'standby';
  // No target named: the run chooses among the standbys (runs from before several standbys promote the configured one).
  // A standby named (to=): the same reading is taken, so the approver sees what another standby holds more.
  const named = input.towards !== undefined && input.towards.startsWith('standby') ? input.towards : undefined;
  const choose = (input.towards === undefined && patched(PATCH_CHOOSE_STANDBY)) || (named !== undefined && patched(PATCH_CHOICE_FOR_NAMED_STANDBY));
  const run = RunbookRun.of(dbPromotionRunbook, input, { target: database, rpoTargetSeconds: policy.rpoTargetSeconds });
  // Undos retry a bounded number of times; then the kernel asks a person (needs-attention).
  const undoOptions = undoProfile(databaseProfiles.unfence, policy.compensationAttempts);

  return run.execute(async () => {
    const preflight = await run.step('preflight', async (): Promise<ReplicationInspection & { choice?: StandbyChoice }> => {
      const choice = choose ? await call(db.chooseStandby, readOptions, `choose ${database}'s standby: answering, in recovery, allowed, ${mode === 'planned' ? 'streaming, ' : ''}least WAL behind, then configured order`, { database, mode }) : undefined;
      if (choice?.nowhereAllowed) throw ApplicationFailure.create({ type: FailureType.ResidencyDenied, message: `${choice.reason}; nothing was changed`, nonRetryable: true });
      // Named: that one. None eligible: the configured standby's preflight says why (and retries one that may be restarting).
      const target = named ?? choice?.target ?? towards;
      const inspection = await call(db.preflightPromotion, readOptions, `preflight ${database}: healthy standby${target === 'standby' ? '' : ` in ${target.slice(target.indexOf(':') + 1)}`}, replication lag`, { database, mode, towards: target });
      return choice ? { ...inspection, choice } : inspection;
    });
    if (preflight.choice?.target && named === undefined) towards = preflight.choice.target;
    // Several standbys: the choice and its table are what the approver reads at the gate.
    const choiceBriefing = preflight.choice && preflight.choice.candidates.length > 1
      ? named !== undefined && preflight.choice.target !== named
        ? `Standby named by the start: ${preflight.standby.region}. The choice would differ: ${preflight.choice.reason}.`
        : `Standby ${named !== undefined ? 'named by the start, and the choice too' : 'chosen'}: ${preflight.choice.reason}.`
      : undefined;
    if (choiceBriefing) run.note('preflight', choiceBriefing);

    // A self-managed node is fenced on its own host (a clean shutdown and a standby.signal), by the worker of
    // its region; runs from before host queues existed fenced it from here with a read-only default.
    const region = preflight.primary.region;
    const onHost = patched('lifeboat-fence-on-host') && preflight.fenceOnHost === true;
    const hostQueue = onHost ? { taskQueue: hostTaskQueue(workflowInfo().taskQueue, region) } : {};
    // Unplanned: a lost region's worker never answers; after this long the node counts as not fenced (unreachable).
    const lostAfter = mode === 'unplanned' ? UNPLANNED_FENCE_WAIT_SECONDS : PLANNED_FENCE_WAIT_SECONDS;
    // A fence no worker ever took changed nothing: its pre-registered undo has nothing to do either.
    let fenceNeverStarted = false;
    const unfence = async () => fenceNeverStarted ? undefined : call(db.unfencePrimary, { ...undoOptions, ...hostQueue, ...(onHost ? { scheduleToStartTimeout: '2 minutes' } : {}) }, `undo: unfence ${database} old primary (only while no other node is a primary)`, { database, towards });
    const fence = await run.step(
      'fence-primary',
      async (): Promise<FenceResult> => {
        try {
          return await call(db.fencePrimary, { ...fenceOptions, ...hostQueue, ...(onHost ? { scheduleToStartTimeout: `${lostAfter} seconds` } : {}) }, onHost ? `fence ${database} old primary in ${region} (shutdown on its host)` : `fence ${database} old primary (read-only)`, { database, mode, towards });
        } catch (err) {
          if (onHost && neverStarted(err)) {
            fenceNeverStarted = true;
            // Only a primary that preflight could not reach counts as lost: a live one is never left unfenced.
            if (mode === 'unplanned' && !preflight.primary.reachable) {
              return { fenced: false, attempted: false, unreachable: true, reason: `not fenced: unreachable — the old primary did not answer and no worker of region ${region} took the fence within ${lostAfter}s (the region may be lost)` };
            }
            throw ApplicationFailure.create({
              type: FailureType.NotConfigured,
              message: `no worker of region ${region} took the fence of ${database}'s old primary within ${lostAfter}s, while the node ${preflight.primary.reachable ? 'answers' : 'is needed (planned)'}: start 'lifeboat worker --region ${region}' on its host; nothing was changed`,
              nonRetryable: true,
              cause: err instanceof Error ? err : undefined,
            });
          }
          throw err;
        }
      },
      // The fence can half-apply (stopped, answer lost): its undo is registered first.
      { undoIfInterrupted: unfence, compensate: (result) => (result.fenced || result.attempted ? unfence : undefined) },
    );
    if (!fence.fenced) run.skipped('fence-primary', fence.reason);

    // Planned mode promotes only a streaming standby: preflight checked it, but streaming can stop
    // after preflight, so it is checked again after catch-up and right before the promotion.
    const confirmStreaming = async (stage: string) => {
      if (mode !== 'planned' || !patched(PATCH_PLANNED_STREAMING)) return;
      // A primary shut down by the fence streams nothing more: the standby streamed at preflight, and its
      // replay of the shutdown checkpoint (catch-up) proves it holds every byte the primary wrote.
      if (fence.fenced && fence.cleanShutdown === true) return;
      await call(db.confirmStreaming, streamingOptions, `planned: confirm ${database} standby still streams (${stage})`, { database, towards, stage });
    };

    // Before any figure is read: the target still descends from the node just fenced, and no other node takes writes.
    const confirmPromotable = (stage: string) => patched(PATCH_CONFIRM_PROMOTABLE)
      ? call(db.confirmPromotable, readOptions, `confirm ${database}'s target has no other primary (${stage})`, { database, towards, ...(fence.fenced && fence.timeline !== undefined ? { oldTimeline: fence.timeline } : {}) })
      : Promise.resolve();
    const rpo = await run.step('catch-up', async (): Promise<RpoMeasurement> => {
      await confirmPromotable('before the gate');
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
    // A sentinel's quorum does not decide a promotion whose loss was measured beyond the target (the old primary
    // answered with its WAL position): a person weighs that. A loss that cannot be measured because the old
    // primary is gone is the quorum's to accept: its data directory stays, fenced, for the failback to reconcile.
    const needsPerson = rpoStatus.met === false && rpoStatus.measuredBytes !== undefined ? `RPO at promotion time is ${describeRpo(rpoStatus)}: ${rpoStatus.verdict}` : undefined;
    await run.gate('promote', { preApproved: input.preApproved, setAside, ...(needsPerson ? { needsPerson } : {}), ...(choiceBriefing ? { briefing: choiceBriefing } : {}) });

    // Not a step: a refusal here rolls back (unfence), which the irreversible promote step no longer could.
    await Promise.all([confirmStreaming('right before promotion'), confirmPromotable('right before promotion')]).catch((err: unknown) => {
      if (isCancellation(err)) throw err;
      throw ApplicationFailure.create({
        type: FailureType.StandbyNotHealthy,
        message: `${mode} promotion of ${database} refused right before promotion: ${failureMessage(err)}; nothing was promoted`,
        nonRetryable: true,
        cause: err instanceof Error ? err : undefined,
      });
    });

    // About to pass the point of no return with the old primary not fenced: a watch fences it the moment its
    // region's worker runs again, and holds the database until then (nothing acts on an unfenced node). It is
    // left before the promotion, so a promotion that takes effect and then fails still leaves it.
    const returnWatch = !fence.fenced && fence.unreachable === true && patched(PATCH_RETURN_WATCH)
      ? await run.leaveReturnWatch({ kind: 'fence', database, region, towards }, policy.returnWatchProbeSeconds)
      : undefined;

    const promotion = await run.step(
      'promote',
      () => call(db.promoteStandby, promoteOptions, `promote ${database} ${towards.startsWith('primary') ? 'original primary (failback)' : towards === 'standby' ? 'standby' : `standby in ${towards.slice(towards.indexOf(':') + 1)}`} (pg_promote)`, { database, towards }),
    );

    const { workflowId } = workflowInfo();
    await run.step('verify-write', () =>
      call(db.verifyWrite, verifyOptions, `verify a write on ${database} new primary`, { database, runId: workflowId, towards }),
    );
    const rto = run.recordRecovery();

    // The database is writable again; the other standbys follow it, so it is protected again without a person.
    // A standby that cannot follow is reported (less protection), never a rollback: the promotion stands.
    const followers = patched(PATCH_FOLLOW_NEW_PRIMARY)
      ? await run.step('follow-new-primary', () => call(db.followNewPrimary, followOptions, `re-point ${database}'s other standbys at the new primary`, { database, towards }))
      : [];
    const lagging = followers.filter((f) => !f.following);
    if (followers.length > 0) run.note('follow-new-primary', followers.map((f) => `${f.node.region}: ${f.following ? f.method ?? 'following' : `NOT following: ${f.reason ?? ''}`}`).join('; '));

    const result: DbPromotionResult = {
      workflowId,
      database,
      mode,
      promotedAt: promotion.promotedAt,
      alreadyPromoted: promotion.alreadyPromoted,
      newPrimary: promotion.newPrimary,
      timeline: promotion.timeline,
      fence: fence.fenced ? { fenced: true, method: fence.method ?? 'read-only default (ALTER SYSTEM)' } : { fenced: false, reason: fence.reason },
      ...(returnWatch ? { returnWatch } : {}),
      ...(preflight.choice && preflight.choice.candidates.length > 1 ? { choice: { reason: preflight.choice.reason, candidates: preflight.choice.candidates } } : {}),
      ...(followers.length > 0 ? { followers: followers.map((f) => ({ region: f.node.region, following: f.following, ...(f.method ? { method: f.method } : {}), ...(f.reason ? { reason: f.reason } : {}) })) } : {}),
      rto,
      rpo: { ...rpo, targetSeconds: policy.rpoTargetSeconds, method: rpo.method, met: rpoStatus.met, verdict: rpoStatus.verdict },
    };
    await run.step('record-evidence', () =>
      run.announce({
        audience: 'incident',
        kind: 'final',
        severity: lagging.length > 0 ? 'warning' : 'info',
        subject: `${database} promoted in ${mode} mode${lagging.length > 0 ? `; ${lagging.length} standby not following` : ''}`,
        body: `New primary ${promotion.newPrimary.region} ${promotion.newPrimary.host}:${promotion.newPrimary.port} (timeline ${promotion.timeline}). ` +
          `RTO ${rto.measuredSeconds.toFixed(1)}s of ${rto.budgetSeconds}s${rto.met ? '' : ' (EXCEEDED)'}; ` +
          `RPO ${describeRpo(rpoStatus)}: ${rpoStatus.verdict}.` +
          (followers.length > 0 ? ` Standbys: ${followers.map((f) => `${f.node.region} ${f.following ? 'follows the new primary' : `does NOT follow (${f.reason ?? ''})`}`).join('; ')}.` : ''),
      }),
    );
    return result;

    async function measure(): Promise<RpoMeasurement> {
      if (mode === 'planned' && fence.fenced) {
        const caughtUp = await call(db.waitForReplay, pollUntil(policy.catchUpTimeoutSeconds, '500 milliseconds', '10 seconds'), `wait for ${database} standby to replay ${fence.finalLsn}`, { database, targetLsn: fence.finalLsn, towards }).catch((err: unknown) => {
          if (!isDeadline(err)) throw err;
          throw ApplicationFailure.create({
            type: FailureType.ReplayBehind,
            message: `standby of ${database} did not replay the fenced primary's final LSN ${fence.finalLsn} within catchUpTimeoutSeconds (${policy.catchUpTimeoutSeconds}s): ${failureMessage(err)}`,
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
      if (mode === 'unplanned' && fence.fenced && fence.cleanShutdown === true && patched(PATCH_UNPLANNED_SHUTDOWN_RPO)) {
        // The fence shut a reachable old primary down cleanly: its end of WAL is known, so the loss is measured, not bounded.
        const caughtUp = await call(db.waitForReplay, pollUntil(UNPLANNED_CATCH_UP_SECONDS, '500 milliseconds', '10 seconds'), `unplanned: does ${database} standby replay the shut-down primary's final LSN ${fence.finalLsn}?`, { database, targetLsn: fence.finalLsn, towards }).catch((err: unknown) => {
          if (isCancellation(err)) throw err;
          return undefined;
        });
        if (caughtUp) {
          return { measuredBytes: 0, measuredSeconds: 0, method: `unplanned: the old primary was shut down cleanly by the fence and the standby replayed to ${caughtUp.replayLsn}, at or past its final LSN ${fence.finalLsn}` };
        }
        return call(db.measureLossAfterShutdown, readOptions, `measure ${database}: WAL between the standby's replay position and the shut-down primary's final LSN`, { database, towards, finalLsn: fence.finalLsn });
      }
      return call(db.measureRpo, readOptions, `measure ${database} replication lag as RPO`, { database, detectedAt: input.run.detectedAt, towards });
    }
  });
}
