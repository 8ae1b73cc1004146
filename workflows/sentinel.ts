/**
 * The sentinel: a long-running workflow per watched target. Every interval each
 * voting region probes the target from its own worker; contract/sentinel.ts
 * judges the views; on a declared failure it starts the recovery runbook in
 * unplanned mode as the configured sentinel identity (the run verifies with this
 * workflow that it did) and pages the on-call with the votes. It continues as
 * new carrying its views and declarations, so its history stays bounded.
 */
import {
  ActivityFailure,
  condition,
  continueAsNew,
  isCancellation,
  proxyLocalActivities,
  setCurrentDetails,
  setHandler,
  sleep,
  uuid4,
  workflowInfo,
} from '@temporalio/workflow';
import type { SentinelActivities, SentinelRules } from '../activities/sentinel';
import type { NotificationActivities } from '../activities/notify';
import { hostTaskQueue } from '../contract/queues';
import { sentinelStatusQuery, stopSentinelSignal } from '../contract/runbook';
import {
  describeVotes,
  initialViews,
  judge,
  observe,
  recovered,
  SPLIT_BRAIN,
  type Declaration,
  type ProbeResult,
  type RegionView,
  type SentinelStatus,
  type SentinelTarget,
  type SentinelTrigger,
} from '../contract/sentinel';
import { proxyFor } from './options';

const sentinelActivities = proxyFor<SentinelActivities>();
const notifications = proxyFor<NotificationActivities>();
/** Local: the rules come from this worker's config and nobody else can answer for it. */
const local = proxyLocalActivities<SentinelActivities>({ startToCloseTimeout: '30 seconds', retry: { maximumAttempts: 3 } });

/** Declarations kept across continue-as-new (the newest). */
const KEEP_DECLARATIONS = 20;
/** Rounds per run before it continues as new, whatever the server suggests. */
const ROUNDS_PER_RUN = 1000;

export interface SentinelInput {
  target: SentinelTarget;
  /** What the previous run of this sentinel carried over (continue-as-new). */
  carried?: { views: Record<string, RegionView>; declarations: Declaration[]; rounds: number; startedAt: string; lastStartedAt?: string; episode?: SentinelStatus['episode'] };
}

export async function sentinel(input: SentinelInput): Promise<void> {
  const { target } = input;
  const rules: SentinelRules = await local.sentinelRules({ target });
  // Workflow time right after a local activity is not the same on replay: take the next time from a timer.
  await sleep(1);
  const info = workflowInfo();
  // What a previous run carried is taken only from this sentinel's own continue-as-new: a start by anyone else
  // cannot hand it declarations (which admission trusts) or failure streaks it never observed.
  const carried = info.continuedFromExecutionRunId !== undefined ? input.carried : undefined;
  const name = target.kind === 'database' ? `database ${target.database}` : `region ${target.region}`;
  let views = carried?.views ?? initialViews(rules.regions);
  // A region the config no longer lists stops voting; a new one starts from nothing.
  views = Object.fromEntries(rules.regions.map((r) => [r, views[r] ?? initialViews([r])[r] as RegionView]));
  const declarations: Declaration[] = [...(carried?.declarations ?? [])];
  let lastStartedAt = carried?.lastStartedAt;
  // One automatic run per failure: a run that was vetoed, rejected or failed is not started again and again.
  let episode = carried?.episode;
  let rounds = carried?.rounds ?? 0;
  let stopped: { by: string; reason?: string } | undefined;
  const status = (): SentinelStatus => ({
    target,
    state: stopped ? 'stopped' : holding ? 'holding' : 'watching',
    ...(holding ? { holding } : {}),
    rules: { regions: rules.regions, healthCheckIntervalSeconds: rules.healthCheckIntervalSeconds, failoverThresholdSeconds: rules.failoverThresholdSeconds, probeTimeoutSeconds: rules.probeTimeoutSeconds, minIntervalMinutes: rules.minIntervalMinutes, policy: rules.policy, vetoSeconds: rules.vetoSeconds },
    views,
    ...(verdict ? { verdict } : {}),
    rounds,
    declarations,
    ...(episode ? { episode } : {}),
    startedAt: carried?.startedAt ?? new Date(info.runStartTime).toISOString(),
  });
  let holding: string | undefined;
  let verdict: SentinelStatus['verdict'];
  setHandler(sentinelStatusQuery, status);
  setHandler(stopSentinelSignal, (request) => {
    stopped ??= { by: typeof request?.by === 'string' ? request.by : '?', reason: typeof request?.reason === 'string' ? request.reason : undefined };
  });

  const probeFrom = async (region: string): Promise<{ region: string; result?: ProbeResult; noAnswer?: string }> => {
    try {
      const result = await sentinelActivities.probeTarget.executeWithOptions(
        {
          taskQueue: hostTaskQueue(info.taskQueue, region),
          // A region whose worker does not take the probe within an interval has not answered (never a failure).
          scheduleToStartTimeout: `${rules.healthCheckIntervalSeconds} seconds`,
          startToCloseTimeout: `${rules.probeTimeoutSeconds * 2 + 5} seconds`,
          retry: { maximumAttempts: 1 },
          summary: `probe ${name} from ${region}`,
        },
        [{ target, region, timeoutMs: Math.round(rules.probeTimeoutSeconds * 1000) }],
      );
      return { region, result };
    } catch (err) {
      if (isCancellation(err)) throw err;
      const why = err instanceof ActivityFailure ? (err.cause?.message ?? err.message) : (err as Error).message;
      return { region, noAnswer: `no answer from region ${region}'s worker: ${why}` };
    }
  };

  const page = async (subject: string, body: string) => {
    try {
      await notifications.notify.executeWithOptions(
        { startToCloseTimeout: '30 seconds', retry: { maximumAttempts: 5, initialInterval: '2 seconds' }, summary: `page: ${subject}` },
        [{ audience: 'oncall', severity: 'critical', kind: 'escalation', subject, body, workflowId: info.workflowId, runbook: 'sentinel' }],
      );
    } catch (err) {
      if (isCancellation(err)) throw err;
      // An undelivered page is in the notification journal; the sentinel keeps watching.
    }
  };

  const act = async (declared: NonNullable<typeof verdict>) => {
    const now = new Date();
    if (episode) {
      holding = `${episode.workflowId} was started for this failure (detected ${episode.detectedAt}); no other run is started automatically until a majority of regions sees ${name} healthy again`;
      return;
    }
    if (lastStartedAt !== undefined && now.getTime() - Date.parse(lastStartedAt) < rules.minIntervalMinutes * 60_000) {
      holding = `a run was started for ${name} at ${lastStartedAt}, less than minIntervalMinutes (${rules.minIntervalMinutes}) ago: not starting another automatically`;
      return;
    }
    const trigger: SentinelTrigger = {
      sentinel: info.workflowId,
      target,
      declaredAt: now.toISOString(),
      detectedAt: declared.detectedAt ?? now.toISOString(),
      needed: declared.needed,
      votes: declared.votes,
      policy: rules.policy,
    };
    const votes = describeVotes(trigger);
    if (rules.policy === 'notify') {
      const last = declarations.at(-1);
      if (last?.refused === 'notify' && last.trigger.detectedAt === trigger.detectedAt) return; // paged once for this failure
      remember({ trigger, refused: 'notify' });
      holding = `failure of ${name} declared; policy notify: paged the on-call, started nothing`;
      await page(`${name}: failure declared by the sentinel (notify only)`, `${votes}. Nothing was started (policy notify): decide and run the runbook yourself.`);
      return;
    }
    // Recorded before the start: the run's admission asks this workflow whether it declared this very start.
    const id = uuid4();
    const pending: Declaration = { trigger, declaration: id };
    remember(pending);
    const incident = `SENTINEL-${(target.kind === 'database' ? target.database : target.region).toUpperCase()}-${trigger.detectedAt.replace(/[-:.]/g, '').slice(0, 15)}`;
    let started: { workflowId: string; runId: string } | { refused: string };
    try {
      started = await sentinelActivities.startRecovery.executeWithOptions(
        { startToCloseTimeout: '1 minute', retry: { maximumAttempts: 3, initialInterval: '2 seconds' }, summary: `start the recovery of ${name}` },
        [{ trigger, declaration: id, incident }],
      );
    } catch (err) {
      if (isCancellation(err)) throw err;
      // A start that failed (the server, a hold read) is a refusal to record: the sentinel keeps watching.
      started = { refused: `the start failed: ${err instanceof ActivityFailure ? (err.cause?.message ?? err.message) : (err as Error).message}` };
    }
    if ('refused' in started) {
      pending.refused = started.refused;
      holding = `failure of ${name} declared, but the run was refused: ${started.refused}`;
      // The same refusal again and again is one record.
      const previous = declarations.at(-2);
      if (previous?.refused === started.refused) declarations.splice(declarations.indexOf(previous), 1);
      // The on-call hears of it once per refusal, with the votes: a failure nobody acts on is not silent.
      else await page(`${name}: failure declared, but the sentinel's run was refused`, `${votes}. Refused: ${started.refused}. Act yourself: lifeboat start ${target.kind === 'database' ? `db-promotion database=${target.database}` : `regional-evacuation region=${target.region}`} mode=unplanned`);
      return;
    }
    pending.workflowId = started.workflowId;
    pending.firstExecutionRunId = started.runId;
    lastStartedAt = trigger.declaredAt;
    episode = { workflowId: started.workflowId, detectedAt: trigger.detectedAt };
    holding = undefined;
    const what = rules.policy === 'auto'
      ? `The promote gate is decided by this quorum after ${rules.vetoSeconds}s unless an approver vetoes: lifeboat veto ${started.workflowId} --as <approver> --reason "..."`
      : `Its gates wait for you: lifeboat status ${started.workflowId}`;
    await page(`${name}: failure declared, ${started.workflowId} started`, `${votes}. Started ${started.workflowId} (unplanned, detected ${trigger.detectedAt}). ${what}`);
  };

  const remember = (d: Declaration) => {
    declarations.push(d);
    while (declarations.length > KEEP_DECLARATIONS) declarations.shift();
  };

  let splitPaged = false;
  let roundsThisRun = 0;
  while (!stopped) {
    if (roundsThisRun >= ROUNDS_PER_RUN || workflowInfo().continueAsNewSuggested) {
      await continueAsNew<typeof sentinel>({ target, carried: { views, declarations, rounds, startedAt: status().startedAt, ...(lastStartedAt ? { lastStartedAt } : {}), ...(episode ? { episode } : {}) } });
    }
    // Each region's answer counts at a time on this workflow's clock: a region worker's skewed clock can
    // neither stretch a failure to the threshold nor make a fresh answer look stale.
    // A probe's own time is kept only within the round (its start and end on this workflow's clock).
    const roundStart = Date.now();
    const answers = await Promise.all(rules.regions.map(probeFrom));
    const roundEnd = Date.now();
    const within = (at: string) => new Date(Math.min(roundEnd, Math.max(roundStart, Date.parse(at) || roundStart))).toISOString();
    const round = answers.map((p) => (p.result && within(p.result.at) !== p.result.at ? { ...p, result: { ...p.result, detail: `${p.result.detail} (its clock said ${p.result.at})`, at: within(p.result.at) } } : p));
    views = observe(views, round, rules);
    verdict = judge(views, new Date(), rules);
    rounds += 1;
    roundsThisRun += 1;
    // Two writable nodes are not a lost primary (nothing to promote) but the worst state there is: page at once,
    // once per occurrence, and keep the failure's episode open while it lasts.
    const split = round.filter((p) => p.result?.detail.startsWith(SPLIT_BRAIN)).map((p) => p.region);
    if (split.length > 0 && !splitPaged) {
      splitPaged = true;
      await page(`${name}: TWO WRITABLE NODES seen from ${split.join(', ')}`, `${round.filter((p) => p.result).map((p) => `${p.region}: ${p.result?.detail}`).join('; ')}. Fence one now (lifeboat status; the return watch of the last promotion fences the old primary when its region's worker runs).`);
    } else if (split.length === 0) splitPaged = false;
    if (episode && split.length === 0 && recovered(views, rules)) episode = undefined;
    if (verdict.declared) await act(verdict);
    else holding = undefined;
    setCurrentDetails(renderDetails(name, status()));
    await condition(() => stopped !== undefined, `${rules.healthCheckIntervalSeconds} seconds`);
  }
  setCurrentDetails(renderDetails(name, status()));
}

/** The Temporal UI's current details: each region's view of the target. */
function renderDetails(name: string, s: SentinelStatus): string {
  const rows = Object.values(s.views).map((v) => `| ${v.region} | ${v.last} | ${v.failingSince ?? ''} | ${v.lastProbeAt ?? ''} | ${(v.lastDetail ?? '').replace(/\|/g, '/')} |`);
  const last = s.declarations.at(-1);
  return [
    `**Sentinel** of ${name}: ${s.state}${s.holding ? ` (${s.holding})` : ''}; policy ${s.rules.policy}; every ${s.rules.healthCheckIntervalSeconds}s, threshold ${s.rules.failoverThresholdSeconds}s, quorum ${Math.floor(s.rules.regions.length / 2) + 1} of ${s.rules.regions.length}`,
    '',
    '| region | last probe | failing since | probed at | detail |',
    '|---|---|---|---|---|',
    ...rows,
    '',
    s.verdict ? `**Verdict** ${s.verdict.summary}` : '',
    last ? `**Last declaration** ${last.trigger.declaredAt}: ${last.workflowId ?? last.refused ?? 'starting'}` : '',
  ].join('\n');
}
