/**
 * The RPO rule of contract/rpo.ts: bytes of WAL not replayed first, seconds
 * second, unknown never 0 and never met.
 */
import { describe, expect, it } from 'vitest';
import { describeReplication, describeRpo, judgeRpo, rpoMet, worstRpo } from '../../contract/rpo';

describe('judgeRpo', () => {
  it('bytes > 0 with seconds unknown (replay_lag NULL: standby not connected) is not met, and says so', () => {
    expect(judgeRpo(5, { measuredBytes: 171392 })).toEqual({ met: false, reason: '171392 bytes not replayed, seconds unknown' });
    expect(judgeRpo(5, { measuredBytes: 171392, measuredSeconds: undefined })).toMatchObject({ met: false });
  });

  it('nothing measured is not met', () => {
    expect(judgeRpo(5, {})).toEqual({ met: false, reason: 'not measured (bytes and seconds unknown)' });
    expect(judgeRpo(3600, {})).toMatchObject({ met: false });
  });

  it('0 bytes not replayed is met, whatever the seconds say or do not say', () => {
    expect(judgeRpo(5, { measuredBytes: 0 })).toEqual({ met: true, reason: '0 bytes not replayed' });
    expect(judgeRpo(5, { measuredBytes: 0, measuredSeconds: 0 })).toMatchObject({ met: true });
    expect(judgeRpo(5, { measuredBytes: 0, measuredSeconds: 12 })).toMatchObject({ met: true });
  });

  it('a target of 0 s is met only by 0 bytes measured', () => {
    expect(rpoMet(0, { measuredBytes: 0 })).toBe(true);
    expect(rpoMet(0, { measuredBytes: 0, measuredSeconds: 0 })).toBe(true);
    expect(judgeRpo(0, { measuredBytes: 1, measuredSeconds: 0 })).toEqual({ met: false, reason: '1 bytes not replayed, 0.0s: a target of 0 s is met only by 0 bytes measured' });
    expect(rpoMet(0, { measuredSeconds: 0 })).toBe(false);
    expect(rpoMet(0, { measuredBytes: 1 })).toBe(false);
    expect(rpoMet(0, {})).toBe(false);
  });

  it('bytes > 0 with measured seconds: met within the target, missed beyond it', () => {
    expect(judgeRpo(5, { measuredBytes: 8192, measuredSeconds: 0.4 })).toEqual({ met: true, reason: '8192 bytes not replayed, 0.4s <= 5s' });
    expect(judgeRpo(5, { measuredBytes: 8192, measuredSeconds: 5 })).toMatchObject({ met: true });
    expect(judgeRpo(5, { measuredBytes: 8192, measuredSeconds: 5.1 })).toEqual({ met: false, reason: '8192 bytes not replayed, 5.1s > 5s' });
  });

  it('bytes unknown (old primary gone) with an upper bound in seconds: judged by the bound', () => {
    expect(judgeRpo(5, { measuredSeconds: 2 })).toEqual({ met: true, reason: 'bytes unknown, 2.0s <= 5s' });
    expect(judgeRpo(5, { measuredSeconds: 9 })).toMatchObject({ met: false });
  });

  it('a figure that is not a real non-negative number counts as unknown, never as 0', () => {
    expect(rpoMet(5, { measuredBytes: Number.NaN })).toBe(false);
    expect(rpoMet(5, { measuredBytes: -1 })).toBe(false);
    expect(rpoMet(5, { measuredBytes: 100, measuredSeconds: Number.NaN })).toBe(false);
    expect(rpoMet(5, { measuredBytes: 100, measuredSeconds: Number.POSITIVE_INFINITY })).toBe(false);
  });
});

describe('describeRpo and describeReplication', () => {
  it('say "seconds unknown" instead of a number, and the verdict', () => {
    expect(describeRpo({ targetSeconds: 5, measuredBytes: 171392, met: false })).toBe('target 5s, 171392 bytes not replayed, seconds unknown (MISSED)');
    expect(describeRpo({ targetSeconds: 5, measuredBytes: 0, measuredSeconds: 0, met: true })).toBe('target 5s, 0 bytes not replayed, 0.0s (met)');
    expect(describeRpo({ targetSeconds: 5 })).toBe('target 5s, not measured yet');
    expect(describeRpo({ targetSeconds: 5, met: false })).toBe('target 5s, bytes unknown, seconds unknown (MISSED)');
  });

  it('one line per database with the standby, the streaming state and the figures', () => {
    const line = describeReplication({ database: 'orders', standbyRegion: 'west', standbyReachable: true, streaming: false, measuredBytes: 171392, targetSeconds: 5, met: false });
    expect(line).toBe('orders: standby west NOT streaming, 171392 bytes not replayed, seconds unknown, MISSED (target 5s)');
    expect(describeReplication({ database: 'users', standbyRegion: 'west', standbyReachable: false, targetSeconds: 5, met: false })).toBe(
      'users: standby west (UNREACHABLE) streaming unknown, bytes unknown, seconds unknown, MISSED (target 5s)',
    );
  });
});

describe('worstRpo', () => {
  const ok = { database: 'users', rpo: { targetSeconds: 5, measuredBytes: 0, measuredSeconds: 0 } };
  const lost = { database: 'orders', rpo: { targetSeconds: 5, measuredBytes: 171392 } };

  it('one database with seconds unknown makes the worst seconds unknown (never 0) and the run not met', () => {
    const worst = worstRpo([ok, lost]);
    expect(worst.measuredBytes).toBe(171392);
    expect(worst.measuredSeconds).toBeUndefined();
    expect(worst.verdict).toEqual({ met: false, reason: 'users: 0 bytes not replayed; orders: 171392 bytes not replayed, seconds unknown (MISSED)' });
  });

  it('every database within its own target is met; none promoted is not', () => {
    expect(worstRpo([ok, { database: 'billing', rpo: { targetSeconds: 60, measuredBytes: 4096, measuredSeconds: 30 } }])).toMatchObject({ measuredBytes: 4096, measuredSeconds: 30, verdict: { met: true } });
    expect(worstRpo([])).toEqual({ measuredBytes: undefined, measuredSeconds: undefined, verdict: { met: false, reason: 'no database promoted: nothing measured' } });
  });

  it('a run target overrides the databases’ own (failback: 0 s, only 0 bytes everywhere is met)', () => {
    expect(worstRpo([ok], 0).verdict.met).toBe(true);
    expect(worstRpo([ok, { database: 'billing', rpo: { targetSeconds: 60, measuredBytes: 4096, measuredSeconds: 0.1 } }], 0).verdict.met).toBe(false);
    expect(worstRpo([{ database: 'billing', rpo: { targetSeconds: 5 } }], 0)).toMatchObject({ measuredBytes: undefined, verdict: { met: false } });
  });
});
