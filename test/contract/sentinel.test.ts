/**
 * The sentinel's judgement (contract/sentinel.ts): a failure is declared only when a majority of the
 * voting regions have seen it failing without a break for the threshold; one region's view, a flap, a
 * region that does not answer or a gap in probing never declares it; the RTO clock starts at the first
 * failed probe of the quorum.
 */
import { describe, expect, it } from 'vitest';
import { initialViews, judge, observe, quorumOf, recovered, type ProbeResult, type QuorumRules, type RegionView } from '../../contract/sentinel';

const rules: QuorumRules = { regions: ['east', 'west', 'central'], healthCheckIntervalSeconds: 2, failoverThresholdSeconds: 6 };
const t0 = Date.parse('2026-12-02T10:00:00Z');
const at = (s: number) => new Date(t0 + s * 1000).toISOString();
type Seen = 'ok' | 'fail' | 'none';

/** Runs rounds every 2 s from t0; each round gives east, west, central's outcome. Returns the views and the last verdict. */
function watch(rounds: ReadonlyArray<readonly [Seen, Seen, Seen]>, start = 0, views: Record<string, RegionView> = initialViews(rules.regions)) {
  let verdict = judge(views, new Date(t0), rules);
  const declaredAt: number[] = [];
  rounds.forEach((round, i) => {
    const s = start + i * 2;
    views = observe(views, rules.regions.map((region, j) => {
      const seen: Seen = round[j] ?? 'none';
      const result: ProbeResult | undefined = seen === 'none' ? undefined : { region, verdict: seen === 'ok' ? 'healthy' : 'failing', at: at(s), detail: seen };
      return { region, result, noAnswer: seen === 'none' ? 'worker down' : undefined };
    }), rules);
    verdict = judge(views, new Date(t0 + s * 1000 + 300), rules);
    if (verdict.declared) declaredAt.push(s);
  });
  return { views, verdict, declaredAt };
}
const F = ['fail', 'fail', 'fail'] as const;

describe('sentinel quorum', () => {
  it('needs a majority: 2 of 3, 3 of 5, 3 of 4', () => {
    expect([quorumOf(3), quorumOf(4), quorumOf(5)]).toEqual([2, 3, 3]);
  });

  it('declares once all regions have failed for the threshold, with the first failed probe as detection', () => {
    const { declaredAt, verdict } = watch([['ok', 'ok', 'ok'], F, F, F, F]);
    // failures at 2, 4, 6, 8: unbroken for 6 s at 8
    expect(declaredAt).toEqual([8]);
    expect(verdict.detectedAt).toBe(at(2));
    expect(verdict.confirming).toEqual(['east', 'west', 'central']);
    expect(verdict.votes.map((v) => v.saw)).toEqual(['failing', 'failing', 'failing']);
  });

  it('does not declare before the threshold', () => {
    expect(watch([F, F, F]).declaredAt).toEqual([]); // 0..4 s: 4 s of failures
  });

  it('a lost region (no answer from the target region) is declared by the two others', () => {
    const { declaredAt, verdict } = watch([['none', 'fail', 'fail'], ['none', 'fail', 'fail'], ['none', 'fail', 'fail'], ['none', 'fail', 'fail']]);
    expect(declaredAt).toEqual([6]);
    expect(verdict.votes[0]?.saw).toBe('no-answer');
    expect(verdict.confirming).toEqual(['west', 'central']);
  });

  it("one region's view alone (a cut link) never declares, however long", () => {
    const cut = Array.from({ length: 30 }, () => ['ok', 'fail', 'ok'] as const);
    const { declaredAt, verdict } = watch(cut);
    expect(declaredAt).toEqual([]);
    expect(verdict.summary).toMatch(/not declared: 1 of 2/);
  });

  it('a failing region and a silent one are not a quorum', () => {
    expect(watch(Array.from({ length: 10 }, () => ['none', 'fail', 'ok'] as const)).declaredAt).toEqual([]);
    expect(watch(Array.from({ length: 10 }, () => ['none', 'fail', 'none'] as const)).declaredAt).toEqual([]);
  });

  it('a recovery shorter than the threshold resets the count (a flap never declares)', () => {
    const flap = [F, F, ['ok', 'ok', 'ok'], F, F, ['ok', 'ok', 'ok'], F, F] as const;
    expect(watch(flap).declaredAt).toEqual([]);
    // and after the flap a real failure is counted from its own first probe
    const { declaredAt, verdict } = watch([...flap, F, F, F]);
    expect(declaredAt).toEqual([18, 20]); // 12..18: unbroken for 6 s (and it stays declared)
    expect(verdict.detectedAt).toBe(at(12));
  });

  it('a gap in probing (worker or server restart) restarts the count instead of adding up to the threshold', () => {
    // failing at 0 and 2, then no probes until 20 (a restart), failing again from 20
    let { views } = watch([F, F]);
    ({ views } = watch([F], 20, views));
    expect(views.west?.failingSince).toBe(at(20));
    expect(judge(views, new Date(t0 + 20_300), rules).declared).toBe(false);
    const after = watch([F, F, F], 22, views);
    expect(after.declaredAt).toEqual([26]);
    expect(after.verdict.detectedAt).toBe(at(20));
  });

  it('no answers in between keep an unbroken failure but never count as failing', () => {
    // west misses one round (its worker restarts quickly): still one unbroken failure
    const { declaredAt } = watch([F, ['fail', 'none', 'fail'], F, F]);
    expect(declaredAt).toEqual([6]);
  });

  it('an old failure is stale: a region whose last probe is long ago does not confirm', () => {
    const { views } = watch([F, F, F, F]);
    expect(judge(views, new Date(t0 + 6_300), rules).declared).toBe(true);
    expect(judge(views, new Date(t0 + 60_000), rules).declared).toBe(false);
  });

  it('ignores regions that are not voters', () => {
    const views = observe(initialViews(rules.regions), [{ region: 'mars', result: { region: 'mars', verdict: 'failing', at: at(0), detail: 'x' } }], rules);
    expect(Object.keys(views)).toEqual(['east', 'west', 'central']);
  });

  it('a failure stays the same failure until a majority sees the target healthy again', () => {
    const failing = watch([['fail', 'fail', 'fail'], ['fail', 'fail', 'fail']]).views;
    expect(recovered(failing, rules)).toBe(false);
    // One region healthy (the cut link's far side, say) is not a recovery.
    expect(recovered(watch([['ok', 'fail', 'none']], 4, failing).views, rules)).toBe(false);
    // No answers are not healthy.
    expect(recovered(watch([['ok', 'none', 'none']], 4, failing).views, rules)).toBe(false);
    expect(recovered(watch([['ok', 'ok', 'fail']], 4, failing).views, rules)).toBe(true);
  });
});
