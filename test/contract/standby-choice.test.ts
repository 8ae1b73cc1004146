/**
 * The choice of the standby a promotion makes the primary (contract/standby-choice.ts): answering, in
 * recovery, allowed, streaming when planned; then the most WAL held, then configured order.
 */
import { describe, expect, it } from 'vitest';
import { chooseStandby, residencyRefusal, type StandbyReading } from '../../contract/standby-choice';

const west = (over: Partial<StandbyReading> = {}): StandbyReading => ({ region: 'west', host: '127.0.0.1', port: 1, priority: 0, reachable: true, inRecovery: true, streaming: true, receiveLsn: '0/3000000', replayLsn: '0/3000000', ...over });
const central = (over: Partial<StandbyReading> = {}): StandbyReading => ({ region: 'central', host: '127.0.0.1', port: 2, priority: 1, reachable: true, inRecovery: true, streaming: true, receiveLsn: '0/3000000', replayLsn: '0/3000000', ...over });

describe('chooseStandby', () => {
  it('the most WAL held wins; a tie goes to configured order (the standby first)', () => {
    const ahead = chooseStandby([west({ receiveLsn: '0/2000000', replayLsn: '0/2000000' }), central()], { mode: 'planned', primaryLsn: '0/3000000', database: 'orders' });
    expect(ahead.target).toBe('standby:central');
    expect(ahead.candidates.find((c) => c.region === 'west')?.behindBytes).toBe(0x1000000);
    expect(ahead.candidates.find((c) => c.region === 'central')?.behindBytes).toBe(0);
    expect(ahead.reason).toMatch(/^promote central: holds WAL to 0\/3000000 \(0 bytes behind\), the most of the eligible standbys; west holds WAL to 0\/2000000/);
    const tie = chooseStandby([west(), central()], { mode: 'planned', database: 'orders' });
    expect(tie.target).toBe('standby');
    expect(tie.reason).toContain('first by configured order');
  });

  it('what a node received counts, not only what it replayed: promotion replays it all', () => {
    const choice = chooseStandby([west({ receiveLsn: '0/5000000', replayLsn: '0/1000000' }), central({ receiveLsn: '0/4000000', replayLsn: '0/4000000' })], { mode: 'unplanned', database: 'orders' });
    expect(choice.target).toBe('standby');
    expect(choice.candidates[0]?.heldLsn).toBe('0/5000000');
  });

  it('never a node that takes writes, one that does not answer, or (planned) one not streaming', () => {
    const choice = chooseStandby([west({ inRecovery: false, receiveLsn: '0/9000000' }), central({ reachable: false, error: 'connect ECONNREFUSED' })], { mode: 'planned', database: 'orders' });
    expect(choice.target).toBeUndefined();
    expect(choice.nowhereAllowed).toBe(false);
    expect(choice.reason).toBe('no standby of orders can be promoted: west is not in recovery (it takes writes): never promoted as a standby; central does not answer (connect ECONNREFUSED)');
    const planned = chooseStandby([west({ streaming: false, receiveLsn: '0/9000000' }), central()], { mode: 'planned', database: 'orders' });
    expect(planned.target).toBe('standby:central');
    const unplanned = chooseStandby([west({ streaming: false, receiveLsn: '0/9000000' }), central()], { mode: 'unplanned', database: 'orders' });
    expect(unplanned.target).toBe('standby');
  });

  it('residency: a denied region is never chosen, even holding the most WAL; nowhere allowed is said so', () => {
    const choice = chooseStandby([west(), central({ receiveLsn: '0/9000000' })], { mode: 'unplanned', residency: { deny: ['central'] }, database: 'orders' });
    expect(choice.target).toBe('standby');
    expect(choice.candidates[1]?.excluded).toBe('region central is denied by the residency rules');
    const nowhere = chooseStandby([west(), central()], { mode: 'unplanned', residency: { allow: ['east'] }, database: 'orders' });
    expect(nowhere.target).toBeUndefined();
    expect(nowhere.nowhereAllowed).toBe(true);
    expect(nowhere.reason).toBe('orders has nowhere allowed to go: region west is not among the allowed regions (east); region central is not among the allowed regions (east)');
    expect(residencyRefusal(undefined, 'west')).toBeUndefined();
    expect(residencyRefusal({ allow: ['west'] }, 'west')).toBeUndefined();
  });
});
