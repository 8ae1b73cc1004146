/**
 * Runbook `regional-evacuation`: leave a region. Declare, freeze risky writes,
 * drain its traffic, promote its databases in the surviving region in parallel
 * (child db-promotion runs), re-point and verify the service there, then bring
 * traffic back gradually. See runbooks/regional-evacuation.md.
 */
import { patched, workflowInfo } from '@temporalio/workflow';
import type { TrafficActivities } from '../activities/traffic';
import {
  regionalEvacuationRunbook,
  type RegionalEvacuationInput,
  type RegionalEvacuationResult,
} from '../contract/regional-evacuation';
import { RunbookRun } from './kernel/runbook-run';
import { call } from './call';
import { proxyFor, trafficProfiles, undoProfile } from './options';
import type { SkippedRun } from '../contract/runbook';
import { describeRpo, worstRpo } from '../contract/rpo';
import { failIfAnyFailed, measureBeforeGate, parentApproval, promoteInParallel, rampTraffic } from './procedures';

const { control: controlOptions, dns: dnsOptions, verify: verifyOptions } = trafficProfiles;
const app = proxyFor<TrafficActivities>();

/** Runs started before return watches replay without them (test/histories/*.json). */
const PATCH_RETURN_WATCH = 'lifeboat-return-watch';

/** Evacuates `input.region`; the databases whose primary is there are promoted in `input.survivingRegion`. */
export async function regionalEvacuation(input: RegionalEvacuationInput): Promise<RegionalEvacuationResult | SkippedRun> {
  const { region, survivingRegion, mode, policy } = input;
  const rpoTarget = Math.min(...input.databases.map((d) => d.promotion.rpoTargetSeconds));
  const run = RunbookRun.of(regionalEvacuationRunbook, input, { target: region, rpoTargetSeconds: rpoTarget });
  const undoOptions = undoProfile(trafficProfiles.undo, policy.compensationAttempts);
  const { workflowId } = workflowInfo();
  const names = input.databases.map((d) => d.name);

  // A scheduled drill that finds the region held by a real incident is skipped, never queued behind it.
  return run.executeOrSkip(async () => {
    await run.step('declare', async () => {
      const body = `Evacuating region ${region} (${mode}) to ${survivingRegion}; databases: ${names.join(', ')}. Commander: ${input.run.initiator}.`;
      await run.announce({ audience: 'incident', kind: 'declare', severity: 'critical', subject: `evacuating ${region} (${mode})`, body });
      await run.announce({ audience: 'oncall', kind: 'declare', severity: 'critical', subject: `DR: evacuating ${region}`, body });
    });
    run.startStatusUpdates(policy.statusEverySeconds, (s) => ({
      subject: `status: ${s.phase} (${s.state})`,
      body: `RTO ${Math.round(s.rto.elapsedSeconds)}s of ${s.rto.budgetSeconds}s${s.rto.breached ? ' BREACHED' : ''}; steps done: ${s.steps.filter((x) => x.state === 'done').map((x) => x.id).join(', ') || 'none'}.`,
    }));

    const unfreeze = () => call(app.setWriteFreeze, undoOptions, `undo: unfreeze writes in ${region}`, { region, frozen: false, reason: 'evacuation rolled back', skipIfUnreachable: false });
    const freeze = await run.step(
      'freeze-writes',
      // Unplanned: the region is gone; an unreachable service is skipped with the reason.
      () => call(app.setWriteFreeze, controlOptions, `freeze risky writes in ${region}`, { region, frozen: true, reason: `evacuation ${workflowId}`, skipIfUnreachable: mode === 'unplanned' }),
      { undoIfInterrupted: unfreeze, compensate: (r) => (r.frozen ? unfreeze : undefined) },
    );
    if (freeze.skipped) run.skipped('freeze-writes', freeze.skipped);

    await run.gate('drain-traffic');
    // The undo restores exactly what Route 53 said before the change.
    const trafficBefore = await call(app.readTrafficWeights, dnsOptions, 'read DNS weights before draining');
    const restore = () => call(app.shiftTraffic, undoOptions, 'undo: restore DNS weights', { weights: trafficBefore, comment: `lifeboat ${workflowId}: restore weights` });
    await run.step(
      'drain-traffic',
      () => call(app.shiftTraffic, dnsOptions, `drain ${region}: traffic to the maintenance page`, { weights: { ...trafficBefore, [region]: 0, maintenance: 100 }, comment: `lifeboat ${workflowId}: drain ${region}` }),
      { undoIfInterrupted: restore, compensate: () => restore },
    );

    // The approver sees each database's lag and streaming state before the point of no return.
    const briefing = await measureBeforeGate(
      run,
      input.databases.map((d) => ({ name: d.name, targetSeconds: d.promotion.rpoTargetSeconds })),
      'standby',
      mode === 'planned'
        ? 'planned: each promotion fences its primary and waits for replay, so these are the figures before the fence'
        : `unplanned: what a promotion now would lose; a promotion beyond its target stops at its own gate for a person`,
      mode,
    );
    const approval = await run.gate('promote-databases', { briefing });
    // About to pass the point of no return with the region's service not frozen: a watch freezes it the moment
    // it answers again (a service coming back must not take risky writes), holding the region until then.
    const returnWatch = freeze.skipped !== undefined && patched(PATCH_RETURN_WATCH)
      ? await run.leaveReturnWatch({ kind: 'freeze', region })
      : undefined;
    const outcomes = await run.step('promote-databases', async () => {
      const results = await promoteInParallel(
        run,
        run.context,
        parentApproval(approval),
        input.databases.map((db) => ({ database: db.name, input: { mode, policy: db.promotion }, summary: `promote ${db.name} in ${survivingRegion} (evacuation of ${region})` })),
      );
      if (policy.onPromotionFailure === 'abort') failIfAnyFailed(results, 'promotion failed', '; policy abort', { maintenanceAllowed: true });
      return results;
    });

    const promoted = outcomes.filter((o) => o.state === 'promoted' && o.result);
    const promotedNames = promoted.map((o) => o.database);
    const underMaintenance = outcomes.filter((o) => o.state === 'maintenance');
    for (const o of underMaintenance) run.note('promote-databases', `${o.database} not promoted: ${o.error ?? 'nowhere allowed'}; its requests in ${survivingRegion} get the maintenance page`);
    await run.step('repoint-service', async () => {
      // Nowhere allowed to go: served as the maintenance page, never pointed at a node it may not run on.
      if (underMaintenance.length > 0) {
        await call(app.setMaintenance, controlOptions, `maintenance page in ${survivingRegion} for ${underMaintenance.map((o) => o.database).join(', ')}`, {
          region: survivingRegion, databases: underMaintenance.map((o) => o.database), on: true, reason: `evacuation ${workflowId}: ${underMaintenance.map((o) => `${o.database}: ${o.error ?? 'nowhere allowed'}`).join('; ')}`,
        });
      }
      const routes = Object.fromEntries(promoted.flatMap((o) => (o.result ? [[o.database, o.result.newPrimary]] : [])));
      await call(app.repointDatabases, controlOptions, `re-point ${survivingRegion} service at ${promotedNames.join(', ')}`, { region: survivingRegion, routes });
      // The record names the node each promotion chose (with several standbys, not always the surviving region's).
      for (const o of promoted) {
        const at = o.result?.newPrimary.region ?? survivingRegion;
        await call(app.pointDatabaseRecord, dnsOptions, `DNS: ${o.database} primary in ${at}`, { database: o.database, region: at, standbyRegion: region });
      }
    });

    await run.step('verify-service', () =>
      call(app.syntheticCheck, verifyOptions, `synthetic checks in ${survivingRegion}`, { region: survivingRegion, databases: promotedNames, runId: workflowId }),
    );
    const rto = run.recordRecovery();

    await run.step('resume-traffic', () =>
      rampTraffic({ to: survivingRegion, from: region, rest: 'maintenance', ...policy.canary, databases: promotedNames, runId: workflowId }),
    );
    const trafficAfter = await call(app.readTrafficWeights, dnsOptions, 'read DNS weights after the ramp');

    // Each database is judged by its own target; one unknown figure makes the worst unknown, never 0.
    const worst = worstRpo(promoted.flatMap((o) => (o.result ? [o.result] : [])));
    const rpo = { targetSeconds: rpoTarget, measuredSeconds: worst.measuredSeconds, measuredBytes: worst.measuredBytes, met: worst.verdict.met };
    run.recordRpo({ measuredSeconds: rpo.measuredSeconds, measuredBytes: rpo.measuredBytes, method: 'worst of the database promotions, each judged by its own target' }, worst.verdict);
    const degraded = outcomes.some((o) => o.state !== 'promoted');

    await run.step('record-evidence', () =>
      run.announce({
        audience: 'incident',
        kind: 'final',
        severity: degraded ? 'warning' : 'info',
        subject: `${region} evacuated to ${survivingRegion}${degraded ? ' (DEGRADED)' : ''}`,
        body:
          `RTO ${rto.measuredSeconds.toFixed(1)}s of ${rto.budgetSeconds}s${rto.met ? '' : ' (EXCEEDED)'}. ` +
          outcomes.map((o) => (o.result ? `${o.database}: RPO ${describeRpo(o.result.rpo)}` : o.state === 'maintenance' ? `${o.database}: NOT PROMOTED, maintenance page (${o.error ?? ''})` : `${o.database}: FAILED ${o.error ?? ''}`)).join('; '),
      }),
    );

    return { workflowId, region, survivingRegion, mode, databases: outcomes, trafficBefore, trafficAfter, rto, rpo, degraded, ...(returnWatch ? { returnWatch } : {}) };
  });
}
