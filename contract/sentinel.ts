/**
 * The sentinel's judgement, pure so it replays and is tested without Temporal:
 * every region probes the target from its own worker; a region "sees the
 * failure" once every probe it answered has failed for `thresholdSeconds`; a
 * failure is declared when a majority of the voting regions (N/2 + 1 of N) see
 * it. A region that does not answer (its worker is down, the server restarted,
 * it is the lost region itself) is neither healthy nor failing: it cannot make a
 * quorum, and a gap in its probing restarts its count rather than extending it.
 */

/** What one region saw in one probe. */
export interface ProbeResult {
  region: string;
  verdict: 'healthy' | 'failing';
  /** ISO time the probe started (the region worker's clock). */
  at: string;
  /** What was seen, for people: "writable primary west 127.0.0.1:55433 in 4 ms", "connect timeout after 1500 ms". */
  detail: string;
}

/** One region's running view of the target. */
export interface RegionView {
  region: string;
  /** The last probe's outcome; `no-answer`: the region's worker did not probe in time. */
  last: 'healthy' | 'failing' | 'no-answer' | 'never';
  lastDetail?: string;
  /** ISO time of the last probe the region answered. */
  lastProbeAt?: string;
  /** ISO time of the first failed probe of the current unbroken run of failures. */
  failingSince?: string;
  /** Failed probes in a row (the no-answers in between not counted). */
  failures: number;
}

/** A region's vote at a declaration: what it saw and since when. */
export interface Vote {
  region: string;
  saw: 'failing' | 'healthy' | 'no-answer' | 'never';
  since?: string;
  lastProbeAt?: string;
  detail?: string;
}

export interface QuorumRules {
  regions: readonly string[];
  healthCheckIntervalSeconds: number;
  failoverThresholdSeconds: number;
}

export interface Verdict {
  declared: boolean;
  /** N/2 + 1 of the voting regions. */
  needed: number;
  /** The regions that have seen the failure for the whole threshold. */
  confirming: string[];
  /** The earliest first failed probe among the confirming regions: the RTO clock starts here. */
  detectedAt?: string;
  votes: Vote[];
  /** One line for people: why declared, or why not. */
  summary: string;
}

/** The majority of `n` voters. */
export function quorumOf(n: number): number {
  return Math.floor(n / 2) + 1;
}

/** A fresh view per voting region. */
export function initialViews(regions: readonly string[]): Record<string, RegionView> {
  return Object.fromEntries(regions.map((region) => [region, { region, last: 'never', failures: 0 } satisfies RegionView]));
}

/**
 * Probes further apart than this (two intervals and a half) are not one unbroken watch: a failure seen
 * before a gap and after it is counted from after it, so a worker or server restart never adds up to a threshold.
 */
export function maxGapMs(rules: Pick<QuorumRules, 'healthCheckIntervalSeconds'>): number {
  return rules.healthCheckIntervalSeconds * 2500;
}

/** The views after one round: each region's probe result, or no answer. */
export function observe(views: Readonly<Record<string, RegionView>>, round: ReadonlyArray<{ region: string; result?: ProbeResult; noAnswer?: string }>, rules: QuorumRules): Record<string, RegionView> {
  const next: Record<string, RegionView> = { ...views };
  for (const { region, result, noAnswer } of round) {
    if (!rules.regions.includes(region)) continue;
    const view: RegionView = { ...(next[region] ?? { region, last: 'never', failures: 0 }) };
    if (!result) {
      view.last = 'no-answer';
      view.lastDetail = noAnswer ?? 'no answer';
    } else if (result.verdict === 'healthy') {
      Object.assign(view, { last: 'healthy', lastDetail: result.detail, lastProbeAt: result.at, failingSince: undefined, failures: 0 });
    } else {
      const gap = view.lastProbeAt === undefined || Date.parse(result.at) - Date.parse(view.lastProbeAt) > maxGapMs(rules);
      const unbroken = view.failingSince !== undefined && !gap;
      Object.assign(view, {
        last: 'failing',
        lastDetail: result.detail,
        lastProbeAt: result.at,
        failingSince: unbroken ? view.failingSince : result.at,
        failures: unbroken ? view.failures + 1 : 1,
      });
    }
    next[region] = view;
  }
  return next;
}

/**
 * Whether the failure is declared at `now`: a region confirms when its latest probe (this round's, not an old
 * one) failed, its failures have been unbroken for the threshold and it failed at least twice; a majority must confirm.
 */
export function judge(views: Readonly<Record<string, RegionView>>, now: Date, rules: QuorumRules): Verdict {
  const needed = quorumOf(rules.regions.length);
  const thresholdMs = rules.failoverThresholdSeconds * 1000;
  const votes: Vote[] = rules.regions.map((region) => {
    const v = views[region];
    return { region, saw: v?.last ?? 'never', since: v?.failingSince, lastProbeAt: v?.lastProbeAt, detail: v?.lastDetail };
  });
  const confirming = rules.regions.filter((region) => {
    const v = views[region];
    if (!v || v.last !== 'failing' || v.failingSince === undefined || v.lastProbeAt === undefined) return false;
    const fresh = now.getTime() - Date.parse(v.lastProbeAt) <= maxGapMs(rules);
    return fresh && v.failures >= 2 && Date.parse(v.lastProbeAt) - Date.parse(v.failingSince) >= thresholdMs;
  });
  const declared = confirming.length >= needed;
  const detectedAt = declared
    ? confirming.map((r) => views[r]?.failingSince as string).sort()[0]
    : undefined;
  const seen = votes.map((v) => `${v.region} ${v.saw}${v.since ? ` since ${v.since}` : ''}`).join(', ');
  const summary = declared
    ? `declared: ${confirming.length} of ${rules.regions.length} regions (${confirming.join(', ')}) have seen it failing for ${rules.failoverThresholdSeconds}s or more (quorum ${needed}); ${seen}`
    : `not declared: ${confirming.length} of ${needed} needed regions confirm; ${seen}`;
  return { declared, needed, confirming, ...(detectedAt ? { detectedAt } : {}), votes, summary };
}

/** What a sentinel watches: a database's primary (recovered by db-promotion) or a region's service (regional-evacuation). */
export type SentinelTarget = { kind: 'database'; database: string } | { kind: 'region'; region: string };

export function sentinelId(target: SentinelTarget): string {
  return target.kind === 'database' ? `sentinel:db:${target.database}` : `sentinel:region:${target.region}`;
}

/** A declared failure, as the sentinel recorded it and handed to the run it started (run.trigger). */
export interface SentinelTrigger {
  /** The sentinel's workflow id; the run's admission asks it whether it started this run. */
  sentinel: string;
  target: SentinelTarget;
  declaredAt: string;
  detectedAt: string;
  needed: number;
  votes: Vote[];
  /** The worker config's policy for the target's tier when the failure was declared. */
  policy: 'confirm' | 'auto' | 'notify';
}

/** One sentinel declaration and what came of it. */
export interface Declaration {
  trigger: SentinelTrigger;
  /** The declaration's id, handed to the run (run.trigger.declaration); absent for notify. */
  declaration?: string;
  /** The run it started (absent for notify, or when the start was refused: `refused`). */
  workflowId?: string;
  firstExecutionRunId?: string;
  refused?: string;
}

/**
 * Whether the target has recovered since a failure: a majority of the voting regions saw it healthy in their
 * latest probe. Until then a failure that already had its run is the same failure, whatever that run did.
 */
export function recovered(views: Readonly<Record<string, RegionView>>, rules: Pick<QuorumRules, 'regions'>): boolean {
  return rules.regions.filter((r) => views[r]?.last === 'healthy').length >= quorumOf(rules.regions.length);
}

/** How a probe's detail starts when it saw two writable nodes (split brain: paged, never a lost primary). */
export const SPLIT_BRAIN = 'TWO writable nodes';

/** One line per vote, for gates, pages and evidence. */
export function describeVotes(trigger: Pick<SentinelTrigger, 'votes' | 'needed'>): string {
  const failing = trigger.votes.filter((v) => v.saw === 'failing').length;
  return `${failing} of ${trigger.votes.length} regions saw it failing (quorum ${trigger.needed}): ` +
    trigger.votes.map((v) => `${v.region}: ${v.saw}${v.since ? ` since ${v.since}` : ''}${v.detail ? ` (${v.detail})` : ''}`).join('; ');
}

/** The sentinel's live state, as its query returns it and `lifeboat sentinel status` shows it. */
export interface SentinelStatus {
  target: SentinelTarget;
  state: 'watching' | 'holding' | 'stopped';
  /** Why it is not acting on a failure now (a run holds the target, the minimum interval, a drain). */
  holding?: string;
  rules: QuorumRules & { probeTimeoutSeconds: number; minIntervalMinutes: number; policy: SentinelTrigger['policy']; vetoSeconds: number };
  views: Record<string, RegionView>;
  verdict?: Verdict;
  rounds: number;
  declarations: Declaration[];
  /** The run started for the failure still open (the target has not recovered since): no other is started for it. */
  episode?: { workflowId: string; detectedAt: string };
  startedAt: string;
}
