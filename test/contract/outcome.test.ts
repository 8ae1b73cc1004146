/** readOutcome: a past run's result (JSON of any age) is read by field and type, never guessed; outcomeSeconds picks what an estimate uses. */
import { describe, expect, it } from 'vitest';
import { outcomeSeconds, readOutcome } from '../../contract/outcome';

describe('readOutcome', () => {
  it('reads the RTO, RPO, duration and evidence head of a result, and leaves its own fields out', () => {
    const result = {
      database: 'orders',
      rto: { budgetSeconds: 600, measuredSeconds: 12.5, met: true },
      rpo: { targetSeconds: 5, measuredBytes: 0, measuredSeconds: 0, method: 'planned', met: true },
      evidence: { head: 'ab'.repeat(32), records: 14 },
    };
    expect(readOutcome(result)).toEqual({
      rto: { budgetSeconds: 600, measuredSeconds: 12.5, met: true },
      rpo: { targetSeconds: 5, measuredBytes: 0, measuredSeconds: 0, met: true },
      evidence: { head: 'ab'.repeat(32), records: 14 },
    });
    expect(outcomeSeconds(readOutcome(result))).toBe(12.5);
  });

  it('an RPO not measured stays absent (never 0), and a field of the wrong type is left out', () => {
    expect(readOutcome({ rpo: { targetSeconds: 5, met: false }, rto: { budgetSeconds: 600, measuredSeconds: '12', met: true }, durationSeconds: Number.NaN })).toEqual({
      rpo: { targetSeconds: 5, met: false },
    });
  });

  it('a restore test counts its restore, a backup its duration; a result without either gives no figure', () => {
    expect(outcomeSeconds(readOutcome({ restore: { durationSeconds: 42 }, restoreTarget: { targetSeconds: 300 } }))).toBe(42);
    expect(outcomeSeconds(readOutcome({ durationSeconds: 7 }))).toBe(7);
    expect(outcomeSeconds(readOutcome({ skipped: true }))).toBeUndefined();
    expect(readOutcome(null)).toEqual({});
    expect(readOutcome(['not', 'a', 'result'])).toEqual({});
  });
});
