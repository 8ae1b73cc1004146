/** The promotion preflight rule the run and `start --dry-run` share. */
import { describe, expect, it } from 'vitest';
import type { ReplicationInspection } from '../../contract/database';
import { FailureType } from '../../contract/failures';
import { refusePromotion } from '../../contract/preflight';

const node = (region: string, port: number) => ({ region, host: '127.0.0.1', port });
const inspection = (standby: Partial<ReplicationInspection['standby']>, primary: Partial<ReplicationInspection['primary']> = {}): ReplicationInspection => ({
  database: 'orders',
  standby: { ...node('west', 5433), reachable: true, inRecovery: true, streaming: true, ...standby },
  primary: { ...node('east', 5432), reachable: true, ...primary },
  inspectedAt: '2026-12-02T00:00:00Z',
});

describe('refusePromotion', () => {
  it('passes a streaming standby in recovery, in both modes', () => {
    expect(refusePromotion(inspection({}), 'orders', 'planned')).toBeUndefined();
    expect(refusePromotion(inspection({}), 'orders', 'unplanned')).toBeUndefined();
  });

  it('planned mode refuses a standby that is not streaming, or a primary that does not answer; unplanned does not', () => {
    expect(refusePromotion(inspection({ streaming: false }), 'orders', 'planned')).toEqual({ type: FailureType.StandbyNotHealthy, retryable: false, message: 'standby of orders is not streaming from the primary: a planned promotion could not prove zero data loss' });
    expect(refusePromotion(inspection({}, { reachable: false, error: 'ECONNREFUSED' }), 'orders', 'planned')?.type).toBe(FailureType.PrimaryUnreachable);
    expect(refusePromotion(inspection({ streaming: false }, { reachable: false }), 'orders', 'unplanned')).toBeUndefined();
  });

  it('refuses a target that does not answer (retryable) or is not a standby, unless it is made one later in the run', () => {
    expect(refusePromotion(inspection({ reachable: false, error: 'timeout' }), 'orders', 'unplanned')).toMatchObject({ retryable: true, message: 'standby of orders unreachable: timeout' });
    expect(refusePromotion(inspection({ inRecovery: false }), 'orders', 'unplanned')?.message).toMatch(/is not a standby \(not in recovery\): nothing to promote$/);
    expect(refusePromotion(inspection({ inRecovery: false, streaming: false }), 'orders', 'planned', { targetMayBeWritable: true })).toBeUndefined();
  });
});
