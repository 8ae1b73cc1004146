/**
 * Runbook `failback`: after an evacuation, return the databases and the
 * traffic to the original region with zero data loss. See runbooks/failback.md.
 */
import { ApplicationFailure, proxyActivities, workflowInfo, type ActivityOptions } from '@temporalio/workflow';
import type { DatabaseActivities } from '../activities/database';
import type { TrafficActivities } from '../activities/traffic';
import { FAILBACK_RUNBOOK, failbackPlan, type FailbackInput, type FailbackResult } from '../contract/failback';
import { FailureType } from '../contract/failures';
import { worstRpo } from '../contract/rpo';
import { describe, isDeadline, RunbookRun } from './kernel/runbook-run';
import { controlOptions, dnsOptions, measureBeforeGate, promoteInParallel, rampTraffic, verifyOptions } from './procedures';

/** pg_rewind or a full copy of a cluster; heartbeats while it runs. */
const rebuildOptions = {
  startToCloseTimeout: '30 minutes',
  heartbeatTimeout: '30 seconds',
  retry: { initialInterval: '5 seconds', maximumAttempts: 3, nonRetryableErrorTypes: [FailureType.NotConfigured, FailureType.StandbyNotHealthy] },
} as const satisfies ActivityOptions;

const db = proxyActivities<DatabaseActivities>(controlOptions);
const app = proxyActivities<TrafficActivities>(controlOptions);

/** Returns every database of `input.from` to its original primary in `input.region`, then restores the standbys. */
export async function failback(input: FailbackInput): Promise<FailbackResult> {
  const { region, from, policy } = input;
  const run = new RunbookRun({
    runbook: FAILBACK_RUNBOOK,
    target: region,
    plan: failbackPlan,
    context: input.run,
    rto: policy.rto,
    rpoTargetSeconds: 0,
    stepBudgets: policy.stepBudgets,
    gates: policy.gates,
  });
  const { workflowId } = workflowInfo();
  const names = input.databases.map((d) => d.name);
  const started = Date.now();

  return run.execute(async () => {
    await run.step('declare', async () => {
      const body = `Failing back ${names.join(', ')} from ${from} to ${region}. Commander: ${input.run.initiator}.`;
      await run.announce({ audience: 'incident', kind: 'declare', severity: 'warning', subject: `failback to ${region} starting`, body });
    });
    run.startStatusUpdates(policy.statusEverySeconds, (s) => ({ subject: `failback status: ${s.phase} (${s.state})`, body: `Steps done: ${s.steps.filter((x) => x.state === 'done').map((x) => x.id).join(', ') || 'none'}.` }));

    // No undo: the rebuilt standbys change nothing for the region serving now; a rollback leaves them following it.
    const rebuilt = await run.step('rebuild-standbys', () =>
      Promise.all(names.map((name) => db.rebuildAsStandby.executeWithOptions({ ...rebuildOptions, summary: `rebuild ${name} in ${region} as a standby of ${from}` }, [name, 'standby']))),
    );

    await run.step('catch-up', () =>
      Promise.all(names.map((name) =>
        db.waitForCatchUp.executeWithOptions(
          {
            startToCloseTimeout: '30 seconds',
            scheduleToCloseTimeout: `${policy.catchUpTimeoutSeconds} seconds`,
            // Infinity: executeWithOptions deep-merges the proxy's 3 attempts; the catch-up timeout is the bound.
            retry: { initialInterval: '1 second', backoffCoefficient: 1, maximumAttempts: Number.POSITIVE_INFINITY, nonRetryableErrorTypes: [FailureType.UnknownDatabase] },
            summary: `wait for ${name} in ${region} to catch up`,
          },
          [name, policy.catchUpMaxLagBytes, 'primary'],
        ).catch((err: unknown) => {
          if (!isDeadline(err)) throw err;
          throw ApplicationFailure.create({
            type: FailureType.ReplayBehind,
            message: `${name} in ${region} did not come within ${policy.catchUpMaxLagBytes} bytes of its primary within catchUpTimeoutSeconds (${policy.catchUpTimeoutSeconds}s): ${describe(err)}`,
            nonRetryable: true,
            cause: err instanceof Error ? err : undefined,
          });
        }),
      )),
    );

    // The approver sees each database's lag and streaming state before the point of no return.
    const briefing = await measureBeforeGate(
      run,
      input.databases.map((d) => ({ name: d.name, targetSeconds: d.promotion.rpoTargetSeconds })),
      'primary',
      'planned switchover: each one fences the current primary and waits for replay, so these are the figures before the fence',
    );
    const approval = await run.gate('switchover', { briefing });
    const outcomes = await run.step('switchover', async () => {
      const preApproved = { by: approval.decidedBy ?? '?', at: approval.decidedAt ?? '', comment: `gate switchover of ${workflowId}${approval.comment ? `: ${approval.comment}` : ''}` };
      const results = await promoteInParallel(
        run,
        run.context,
        preApproved,
        // Planned, towards the configured primary: fence the current primary, wait for replay, promote the original one.
        input.databases.map((d) => ({ database: d.name, input: { mode: 'planned', towards: 'primary', policy: d.promotion }, summary: `failback: promote ${d.name} in ${region}` })),
      );
      const failed = results.filter((r) => r.state === 'failed');
      if (failed.length > 0) {
        throw ApplicationFailure.create({
          type: FailureType.PromotionFailed,
          message: `switchover failed for ${failed.map((f) => `${f.database} (${f.error ?? '?'})`).join(', ')}`,
          nonRetryable: true,
        });
      }
      return results;
    });

    await run.step('repoint-service', async () => {
      const routes = Object.fromEntries(input.databases.map((d) => [d.name, d.home]));
      // Both regions' services write to the original primaries: the other region's nodes are fenced now.
      for (const serving of [region, from]) {
        await app.repointDatabases.executeWithOptions({ ...controlOptions, summary: `re-point ${serving} service at the primaries in ${region}` }, [serving, routes]);
      }
      for (const name of names) {
        await app.pointDatabaseRecord.executeWithOptions({ ...dnsOptions, summary: `DNS: ${name} primary in ${region}` }, [name, region, from]);
      }
      await app.setWriteFreeze.executeWithOptions({ ...controlOptions, summary: `lift the write freeze in ${region}` }, [region, false, `failback ${workflowId}`, false]);
    });

    await run.step('verify-service', () =>
      app.syntheticCheck.executeWithOptions({ ...verifyOptions, summary: `synthetic checks in ${region}` }, [region, names, workflowId]),
    );

    await run.step('resume-traffic', () => rampTraffic({ to: region, from, rest: from, ...policy.canary, databases: names, runId: workflowId }));

    const restored = await run.step('rebuild-old-primaries', () =>
      Promise.all(names.map((name) => db.rebuildAsStandby.executeWithOptions({ ...rebuildOptions, summary: `rebuild ${name} in ${from} as a standby of ${region}` }, [name, 'primary']))),
    );
    const trafficAfter = await app.readTrafficWeights.executeWithOptions({ ...dnsOptions, summary: 'read DNS weights after the failback' }, []);

    const promoted = outcomes.flatMap((o) => (o.result ? [o.result] : []));
    // A failback promises zero loss: judged against 0 s, only 0 bytes measured is met; a missing figure is unknown, never 0.
    const worst = worstRpo(promoted, 0);
    const rpo = { measuredBytes: worst.measuredBytes, met: worst.verdict.met };
    run.recordRpo({ measuredBytes: worst.measuredBytes, measuredSeconds: worst.measuredSeconds, method: 'planned switchovers: the worst of the database promotions' }, worst.verdict);
    const durationSeconds = (Date.now() - started) / 1000;

    await run.step('record-evidence', () =>
      run.announce({
        audience: 'incident',
        kind: 'final',
        severity: 'info',
        subject: `failback to ${region} complete`,
        body: `${names.join(', ')} back on ${region} in ${durationSeconds.toFixed(0)}s; data not replayed at promotion: ${rpo.measuredBytes === undefined ? 'unknown' : `${rpo.measuredBytes} bytes`} (${worst.verdict.reason}). ${from} rebuilt as standbys.`,
      }),
    );

    return {
      workflowId,
      region,
      from,
      databases: promoted.map((result, i) => ({
        database: result.database,
        rebuiltWith: rebuilt[i]?.method ?? '?',
        result,
        rebuiltOldPrimaryWith: restored[i]?.method ?? '?',
      })),
      trafficAfter,
      durationSeconds,
      rpo,
    };
  });
}
