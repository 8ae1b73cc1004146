/**
 * Runbook `failback`: after an evacuation, return the databases and the
 * traffic to the original region with zero data loss, and never rebuild a
 * former primary over data the current primary lacks without a copy, a
 * reconciliation report and a gate. See runbooks/failback.md.
 */
import { ApplicationFailure, patched, workflowInfo } from '@temporalio/workflow';
import type { DatabaseActivities, RebuildOutcome } from '../activities/database';
import type { DivergenceActivities } from '../activities/divergence';
import type { EvidenceActivities } from '../activities/evidence';
import type { TrafficActivities } from '../activities/traffic';
import {
  RECONCILIATION_ARTIFACT_KIND,
  reconciliationArtifactName,
  type ConfiguredNode,
  type DiscardOutcome,
  type DivergenceMeasurement,
  type FormerPrimaryStop,
  type ReconciliationReport,
  type SetAsideCopy,
} from '../contract/divergence';
import { artifactDigest } from '../contract/evidence';
import { failbackRunbook, type failbackPlan, type FailbackInput, type FailbackResult, type FailbackStepId } from '../contract/failback';
import { FailureType } from '../contract/failures';
import { hostTaskQueue } from '../contract/queues';
import { failureMessage, isDeadline, RunbookRun } from './kernel/runbook-run';
import { call } from './call';
import { databaseProfiles, divergenceProfiles, evidenceProfiles, pollUntil, proxyFor, trafficProfiles } from './options';
import { failIfAnyFailed, measureBeforeGate, parentApproval, promoteInParallel, rampTraffic } from './procedures';

/** Runs started before the divergence checks replay without them (test/histories/failback.json). */
const DIVERGENCE_PATCH = 'lifeboat-failback-divergence';
const DEFAULT_RECONCILIATION = { keyLimit: 1000, rowLimit: 50 } as const;

const { control: controlOptions, dns: dnsOptions, verify: verifyOptions } = trafficProfiles;
const { stop: stopOptions, measure: measureOptions, keep: keepOptions } = divergenceProfiles;
const { artifact: artifactOptions } = evidenceProfiles;
const { rebuild: rebuildOptions, read: readOptions } = databaseProfiles;
const db = proxyFor<DatabaseActivities>();
const app = proxyFor<TrafficActivities>();
const divergence = proxyFor<DivergenceActivities>();
const evidence = proxyFor<EvidenceActivities>();

/** One former primary, from its stop to the rebuild: what the rebuild would discard and where it is kept. */
interface FormerPrimaryCheck {
  database: string;
  stop: FormerPrimaryStop;
  measurement?: DivergenceMeasurement;
  copy?: SetAsideCopy;
  report?: ReconciliationReport;
  artifact?: { artifact: string; digest: string };
}

interface DivergenceCheck {
  measure: FailbackStepId;
  keep: FailbackStepId;
  rebuild: 'rebuild-standbys' | 'rebuild-old-primaries';
  /** The nodes about to be rebuilt, by their configured role. */
  node: ConfiguredNode;
  /** Where they are, and where the current primaries are (for people). */
  nodeRegion: string;
  /** The task queue of the nodes' host worker (absent on runs from before host queues). */
  host: { taskQueue?: string; scheduleToStartTimeout?: string };
  sourceRegion: string;
  /** What a rejection at the gate does, in words (a rollback only before the point of no return). */
  onReject: string;
}

/**
 * Before a former primary is rebuilt (pg_rewind rewrites it in place, pg_basebackup replaces it):
 * stop it, measure its WAL past the fork, and where any diverged keep a copy and a reconciliation
 * report, then wait at `discard-divergence`. A rejection rolls back before anything is rebuilt.
 */
async function keepWhatWouldBeDiscarded(run: RunbookRun<typeof failbackPlan>, names: readonly string[], check: DivergenceCheck, limits: { keyLimit: number; rowLimit: number }): Promise<Map<string, FormerPrimaryCheck>> {
  const { workflowId, runId } = workflowInfo();
  const { node, nodeRegion, sourceRegion } = check;
  const stopped: FormerPrimaryStop[] = [];
  // Idempotent, and only what this run stopped: a node that ran read-only runs again; a writable one stays down.
  const restart = () =>
    Promise.all(stopped.map((before) =>
      call(divergence.restartFormerPrimary, { ...stopOptions, ...check.host }, `restart ${before.database} in ${nodeRegion} as it was`, { database: before.database, node, before }),
    ));
  const measured = await run.step(check.measure, () =>
    Promise.all(names.map(async (database): Promise<FormerPrimaryCheck> => {
      const stop = await call(divergence.stopFormerPrimary, { ...stopOptions, ...check.host }, `stop ${database} in ${nodeRegion} before measuring it`, { database, node });
      stopped.push(stop);
      if (stop.alreadyAStandby) return { database, stop };
      const measurement = await call(divergence.measureDivergence, { ...measureOptions, ...check.host }, `measure ${database} in ${nodeRegion}: its WAL past the fork of ${sourceRegion}'s timeline`, { database, node });
      return { database, stop, measurement };
    })),
  { undoIfInterrupted: restart, compensate: () => restart },
  );
  run.note(check.measure, measured.map(describeMeasurement).join('; '));

  const diverged = measured.filter((m) => m.measurement && (m.measurement.state === 'diverged' || m.measurement.state === 'unknown'));
  const checks = new Map(measured.map((m) => [m.database, m]));
  if (diverged.length === 0) {
    run.skipped(check.keep, 'nothing diverged: no copy or report needed');
    return checks;
  }
  const tag = `${workflowId}-${runId.slice(0, 8)}`;
  // No undo: the copies and reports are what a rollback must leave behind.
  await run.step(check.keep, () =>
    Promise.all(diverged.map(async (m) => {
      const { database } = m;
      const copy = await call(divergence.setAsideDataDir, { ...keepOptions, ...check.host }, `copy ${database}'s data directory in ${nodeRegion} aside`, { database, node, tag });
      const report = await call(divergence.reconcileDivergence, { ...keepOptions, ...check.host }, `reconcile ${database}: rows on ${nodeRegion}'s copy missing or different on ${sourceRegion}`, { database, node, copy: copy.copy, ...limits });
      const name = reconciliationArtifactName(database, check.rebuild);
      const { digest } = artifactDigest(report);
      const stored = await call(evidence.storeArtifact, artifactOptions, `store the reconciliation report of ${database}`, { workflowId, runId, name, digest, content: report });
      const measurement = m.measurement;
      run.attach({
        name,
        kind: RECONCILIATION_ARTIFACT_KIND,
        title: `Reconciliation of ${database} in ${nodeRegion}: ${report.totals.missing} rows missing and ${report.totals.different} different on ${sourceRegion}; ${measurement?.divergedBytes ?? 'unknown'} bytes diverged; copy ${copy.copy}`,
        digest,
        locations: stored.locations,
        step: check.keep,
        summary: {
          database,
          node: nodeRegion,
          current: sourceRegion,
          state: measurement?.state,
          divergedBytes: measurement?.divergedBytes,
          walBytes: measurement?.walBytes,
          forkLsn: measurement?.forkLsn,
          endLsn: measurement?.endLsn,
          commits: measurement?.records?.commits,
          copy: copy.copy,
          missing: report.totals.missing,
          different: report.totals.different,
          tables: report.totals.tables,
          unreconciled: report.unreconciled.length,
        },
      });
      checks.set(database, { ...m, copy, report, artifact: { artifact: name, digest } });
    })),
  );
  const lines = diverged.map((m) => {
    const kept = checks.get(m.database);
    return `${describeMeasurement(m)}; ${kept?.report ? `${kept.report.totals.missing} rows missing and ${kept.report.totals.different} different on ${sourceRegion}` : ''}; copy ${kept?.copy?.copy ?? '?'}`;
  });
  await run.announce({
    audience: 'incident',
    kind: 'escalation',
    severity: 'warning',
    subject: `failback waits: ${diverged.map((m) => m.database).join(', ')} in ${nodeRegion} hold data ${sourceRegion} never received`,
    body: `Rebuilding them would discard it. Copies and reconciliation reports are kept (lifeboat report ${workflowId}).\n${lines.join('\n')}\nApprove the gate discard-divergence to rebuild them, or reject: ${check.onReject}.`,
  });
  await run.gate('discard-divergence');
  return checks;
}

function describeMeasurement(m: FormerPrimaryCheck): string {
  const x = m.measurement;
  if (!x) return `${m.database}: already streams from the current primary`;
  if (x.state === 'unknown') return `${m.database}: divergence UNKNOWN (${x.error ?? x.method})`;
  if (x.state === 'not-diverged') return `${m.database}: 0 bytes diverged${x.forkLsn ? ` (${x.walBytes ?? 0} bytes of WAL past the fork ${x.forkLsn}, nothing committed in it)` : ` (${x.method})`}`;
  return `${m.database}: ${x.divergedBytes ?? '?'} bytes diverged past the fork ${x.forkLsn ?? '?'} (to ${x.endLsn ?? '?'}, ${x.records?.commits ?? '?'} commits)`;
}

/** What one rebuild discarded, from what was measured before it. */
function discardOutcome(step: DiscardOutcome['step'], check: FormerPrimaryCheck | undefined, rebuilt: RebuildOutcome | undefined, sourceRegion: string): DiscardOutcome | undefined {
  if (!check) return undefined;
  const m = check.measurement;
  const node = check.stop.node;
  if (!m || rebuilt?.method === 'already-a-standby') {
    return { step, node, state: 'already-a-standby', discardedBytes: 0, summary: `0 bytes lost: ${node.region} already streamed from ${sourceRegion}, nothing was rebuilt over` };
  }
  const kept = {
    ...(check.report ? { rows: { missing: check.report.totals.missing, different: check.report.totals.different, tables: check.report.totals.tables, unreconciledTables: check.report.unreconciled.length } } : {}),
    ...(check.copy ? { keptCopy: check.copy.copy } : {}),
    ...(check.artifact ? { report: check.artifact } : {}),
  };
  const base = { step, node, state: m.state, walBytes: m.walBytes, forkLsn: m.forkLsn, endLsn: m.endLsn, commits: m.records?.commits, ...kept };
  if (m.state === 'not-diverged') {
    return { ...base, discardedBytes: 0, summary: `0 bytes lost (measured: ${m.walBytes ?? 0} bytes of WAL past the fork${m.forkLsn ? ` ${m.forkLsn}` : ''}, nothing committed in it)` };
  }
  const rows = check.report ? `${check.report.totals.missing} rows missing and ${check.report.totals.different} different on ${sourceRegion}` : 'rows not reconciled';
  if (m.state === 'unknown' || m.divergedBytes === undefined) {
    return { ...base, summary: `UNKNOWN loss (${m.error ?? m.method}); ${rows}; kept in ${check.copy?.copy ?? '?'}` };
  }
  return { ...base, discardedBytes: m.divergedBytes, summary: `${m.divergedBytes} bytes discarded (${m.records?.commits ?? '?'} commits past the fork ${m.forkLsn ?? '?'}); ${rows}; kept in ${check.copy?.copy ?? '?'}` };
}

/** Runs from before the check replay without it. */
const PATCH_WHERE_PRIMARIES_ARE = 'lifeboat-failback-where-primaries-are';

/**
 * A failback returns databases whose primary is in `from` (the configured standbys' region) to `region`; it
 * stops and rebuilds `region`'s nodes. Refused before anything is touched when a database takes writes in
 * `region` (it was never moved, or its old primary came back writable: stopping or rebuilding that node
 * would be an outage or a loss) or anywhere but `from` (a promotion chose a further standby: returning from
 * there is not built yet).
 */
async function refusePrimariesElsewhere(names: readonly string[], from: string, region: string): Promise<void> {
  const writable = await Promise.all(names.map(async (name) => ({ name, at: await call(db.writableNodes, readOptions, `where ${name} takes writes (read-only)`, { database: name }) })));
  const home = writable.filter((w) => w.at.includes(region));
  const elsewhere = writable.filter((w) => w.at.some((r) => r !== from && r !== region));
  if (home.length === 0 && elsewhere.length === 0) return;
  const why = [
    ...home.map((w) => `${w.name} takes writes in ${region} already${w.at.length > 1 ? ` (and in ${w.at.filter((r) => r !== region).join(', ')}: two writable nodes, fence one)` : ''}: its node there is the primary, never stopped or rebuilt by a failback`),
    ...elsewhere.filter((w) => !home.includes(w)).map((w) => `${w.name} takes writes in ${w.at.join(', ')}, not in ${from}: returning a database whose promotion chose a further standby is not supported yet (do it by hand, or rebuild that node)`),
  ];
  throw ApplicationFailure.create({
    type: FailureType.NotConfigured,
    nonRetryable: true,
    message: `refusing to fail back to ${region}: ${why.join('; ')}. Nothing was changed`,
  });
}

/** Returns every database of `input.from` to its original primary in `input.region`, then restores the standbys. */
export async function failback(input: FailbackInput): Promise<FailbackResult> {
  const { region, from, policy } = input;
  const run = RunbookRun.of(failbackRunbook, input, { target: region, rpoTargetSeconds: 0 });
  const { workflowId } = workflowInfo();
  const names = input.databases.map((d) => d.name);
  const started = Date.now();

  return run.execute(async () => {
    await run.step('declare', async () => {
      if (patched(PATCH_WHERE_PRIMARIES_ARE)) await refusePrimariesElsewhere(names, from, region);
      const body = `Failing back ${names.join(', ')} from ${from} to ${region}. Commander: ${input.run.initiator}.`;
      await run.announce({ audience: 'incident', kind: 'declare', severity: 'warning', subject: `failback to ${region} starting`, body });
    });
    run.startStatusUpdates(policy.statusEverySeconds, (s) => ({ subject: `failback status: ${s.phase} (${s.state})`, body: `Steps done: ${s.steps.filter((x) => x.state === 'done').map((x) => x.id).join(', ') || 'none'}.` }));

    const limits = policy.reconciliation ?? DEFAULT_RECONCILIATION;
    const divergenceChecked = patched(DIVERGENCE_PATCH);
    // Work on a node's files and processes (stop, measure, copy, rewind) runs on the worker of its region's host.
    const onHost = patched('lifeboat-failback-on-host');
    // A region without a host worker fails the step with a clear timeout instead of waiting for ever.
    const hostOf = (nodeRegion: string) => (onHost ? { taskQueue: hostTaskQueue(workflowInfo().taskQueue, nodeRegion), scheduleToStartTimeout: '5 minutes' } : {});
    const homeChecks = divergenceChecked
      ? await keepWhatWouldBeDiscarded(run, names, { measure: 'measure-divergence', keep: 'keep-divergence', rebuild: 'rebuild-standbys', node: 'primary', nodeRegion: region, host: hostOf(region), sourceRegion: from, onReject: 'the failback rolls back, nothing rebuilt' }, limits)
      : undefined;

    // No undo: the rebuilt standbys change nothing for the region serving now; a rollback leaves them following it.
    const rebuilt = await run.step('rebuild-standbys', () =>
      Promise.all(names.map((name) => call(db.rebuildAsStandby, { ...rebuildOptions, ...hostOf(region) }, `rebuild ${name} in ${region} as a standby of ${from}`, { database: name, towards: 'standby' }))),
    );

    await run.step('catch-up', () =>
      Promise.all(names.map((name) =>
        call(db.waitForCatchUp, pollUntil(policy.catchUpTimeoutSeconds, '1 second', '30 seconds'), `wait for ${name} in ${region} to catch up`, { database: name, maxLagBytes: policy.catchUpMaxLagBytes, towards: 'primary' }).catch((err: unknown) => {
          if (!isDeadline(err)) throw err;
          throw ApplicationFailure.create({
            type: FailureType.ReplayBehind,
            message: `${name} in ${region} did not come within ${policy.catchUpMaxLagBytes} bytes of its primary within catchUpTimeoutSeconds (${policy.catchUpTimeoutSeconds}s): ${failureMessage(err)}`,
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
      const results = await promoteInParallel(
        run,
        run.context,
        parentApproval(approval),
        // Planned, towards the configured primary: fence the current primary, wait for replay, promote the original one.
        input.databases.map((d) => ({ database: d.name, input: { mode: 'planned', towards: 'primary', policy: d.promotion }, summary: `failback: promote ${d.name} in ${region}` })),
      );
      failIfAnyFailed(results, 'switchover failed');
      return results;
    });

    await run.step('repoint-service', async () => {
      const routes = Object.fromEntries(input.databases.map((d) => [d.name, d.home]));
      // Both regions' services write to the original primaries: the other region's nodes are fenced now.
      for (const serving of [region, from]) {
        await call(app.repointDatabases, controlOptions, `re-point ${serving} service at the primaries in ${region}`, { region: serving, routes });
      }
      for (const name of names) {
        await call(app.pointDatabaseRecord, dnsOptions, `DNS: ${name} primary in ${region}`, { database: name, region, standbyRegion: from });
      }
      await call(app.setWriteFreeze, controlOptions, `lift the write freeze in ${region}`, { region, frozen: false, reason: `failback ${workflowId}`, skipIfUnreachable: false });
    });

    await run.step('verify-service', () =>
      call(app.syntheticCheck, verifyOptions, `synthetic checks in ${region}`, { region, databases: names, runId: workflowId }),
    );

    await run.step('resume-traffic', () => rampTraffic({ to: region, from, rest: from, ...policy.canary, databases: names, runId: workflowId }));

    // Past the point of no return: a rejection here fails the run and pages instead of rolling back.
    const awayChecks = patched(DIVERGENCE_PATCH)
      ? await keepWhatWouldBeDiscarded(run, names, { measure: 'measure-old-primaries', keep: 'keep-old-primaries', rebuild: 'rebuild-old-primaries', node: 'standby', nodeRegion: from, host: hostOf(from), sourceRegion: region, onReject: `the run stops failed and pages (past the point of no return): ${from} stays as it is, not rebuilt` }, limits)
      : undefined;
    const restored = await run.step('rebuild-old-primaries', () =>
      Promise.all(names.map((name) => call(db.rebuildAsStandby, { ...rebuildOptions, ...hostOf(from) }, `rebuild ${name} in ${from} as a standby of ${region}`, { database: name, towards: 'primary' }))),
    );
    const trafficAfter = await call(app.readTrafficWeights, dnsOptions, 'read DNS weights after the failback');

    const promoted = outcomes.flatMap((o) => (o.result ? [o.result] : []));
    const discarded = homeChecks || awayChecks
      ? names.map((name, i) => [
          discardOutcome('rebuild-standbys', homeChecks?.get(name), rebuilt[i], from),
          discardOutcome('rebuild-old-primaries', awayChecks?.get(name), restored[i], region),
        ].filter((d): d is DiscardOutcome => d !== undefined))
      : undefined;
    // Per database: what the switchover left behind plus what the rebuilds discarded; unknown stays unknown.
    const lost = promoted.map((r, i) => {
      const parts = [r.rpo.measuredBytes, ...(discarded?.[i] ?? []).map((d) => d.discardedBytes)];
      return parts.some((b) => b === undefined) ? undefined : parts.reduce<number>((a, b) => a + (b ?? 0), 0);
    });
    const anyDiscarded = (discarded ?? []).flat().some((d) => d.discardedBytes !== 0);
    const known = lost.every((b) => b !== undefined);
    const rpo = { ...(known ? { measuredBytes: Math.max(0, ...lost.map((b) => b ?? 0)) } : {}), met: lost.every((b) => b === 0) };
    run.recordRpo(
      discarded
        ? {
            ...(rpo.measuredBytes !== undefined ? { measuredBytes: rpo.measuredBytes } : {}),
            // Seconds are not measured for discarded WAL: only a loss of 0 bytes is 0 seconds.
            ...(anyDiscarded ? {} : { measuredSeconds: 0 }),
            method: anyDiscarded
              ? `planned switchover replayed every fenced primary's final LSN; the rebuilds discarded diverged WAL measured past the fork (per database in the result; copies and reconciliation reports kept)`
              : 'planned switchover: each original primary replayed the fenced primary’s final LSN; every rebuilt former primary measured 0 bytes past the fork',
          }
        : { measuredBytes: rpo.measuredBytes, measuredSeconds: 0, method: 'planned switchover: each original primary replayed the fenced primary’s final LSN' },
    );
    const durationSeconds = (Date.now() - started) / 1000;
    const perDatabase = discarded
      ? names.map((name, i) => `${name}: ${(discarded[i] ?? []).map((d) => `${d.node.region} ${d.summary}`).join('; ')}`).join('\n')
      : undefined;

    await run.step('record-evidence', () =>
      run.announce({
        audience: 'incident',
        kind: 'final',
        severity: anyDiscarded ? 'warning' : 'info',
        subject: `failback to ${region} complete`,
        body: perDatabase
          ? `${names.join(', ')} back on ${region} in ${durationSeconds.toFixed(0)}s. ${from} rebuilt as standbys.\nWhat the rebuilds discarded, per database:\n${perDatabase}`
          : `${names.join(', ')} back on ${region} in ${durationSeconds.toFixed(0)}s; data loss ${rpo.measuredBytes ?? 'unknown'} bytes. ${from} rebuilt as standbys.`,
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
        ...(discarded ? { discarded: discarded[i] ?? [] } : {}),
      })),
      trafficAfter,
      durationSeconds,
      rpo,
    };
  });
}
