/** How pg_waldump's output and a timeline history become a divergence measurement (PostgreSQL 15 output, captured from a real cluster). */
import { describe, expect, it } from 'vitest';
import { formatLsn, parseTimelineHistory, segmentName, segmentStart, WalWalker } from '../../activities/postgres-divergence';
import { lsnToBigInt } from '../../contract/lsn';

const SEG = 16 * 1024 * 1024;

/** East committed 5 rows in one transaction after west stopped receiving its WAL at 0/3000000, then was SIGKILLed. */
const DIVERGED = `rmgr: Sequence    len (rec/tot):     99/    99, tx:        726, lsn: 0/03000028, prev 0/02000100, desc: LOG rel 1663/5/16384, blkref #0: rel 1663/5/16384 blk 0
rmgr: Heap        len (rec/tot):     54/  1002, tx:        726, lsn: 0/03000090, prev 0/03000028, desc: INSERT off 21 flags 0x00, blkref #0: rel 1663/5/16385 blk 0 FPW
rmgr: Btree       len (rec/tot):     53/   513, tx:        726, lsn: 0/03000480, prev 0/03000090, desc: INSERT_LEAF off 21, blkref #0: rel 1663/5/16391 blk 1 FPW
rmgr: Heap        len (rec/tot):     70/    70, tx:        726, lsn: 0/03000688, prev 0/03000480, desc: INSERT off 22 flags 0x00, blkref #0: rel 1663/5/16385 blk 0
rmgr: Transaction len (rec/tot):     34/    34, tx:        726, lsn: 0/030008A8, prev 0/03000868, desc: COMMIT 2026-12-01 22:39:12.791099 UTC`;

const HOUSEKEEPING = `rmgr: XLOG        len (rec/tot):    114/   114, tx:          0, lsn: 0/030008D0, prev 0/030008A8, desc: CHECKPOINT_SHUTDOWN redo 0/30008D0; tli 1; prev tli 1; fpw true; xid 0:727; oid 24576; multi 1; offset 0; oldest xid 716 in DB 1; oldest multi 1 in DB 1; oldest/newest commit timestamp xid: 0/0; oldest running xid 0; shutdown
rmgr: XLOG        len (rec/tot):     49/  1749, tx:          0, lsn: 0/03000980, prev 0/03000948, desc: FPI_FOR_HINT , blkref #0: rel 1663/5/1259 blk 0 FPW
rmgr: Standby     len (rec/tot):     50/    50, tx:          0, lsn: 0/03003500, prev 0/03003068, desc: RUNNING_XACTS nextXid 727 latestCompletedXid 726 oldestRunningXid 727`;

const walker = (fork: string, segments: string[] = []) => new WalWalker(lsnToBigInt(fork), SEG, (f) => segments.includes(f), 1);

describe('WalWalker', () => {
  it('counts the records and commits past the fork; the end of WAL is where the first invalid record starts', () => {
    const w = walker('0/3000000');
    for (const line of DIVERGED.split('\n')) w.line(line);
    const walk = w.finish('pg_waldump: error: error in WAL record at 0/30008A8: invalid record length at 0/30008D0: wanted 24, got 0\n');
    expect(walk.end && formatLsn(walk.end)).toBe('0/30008D0');
    expect(walk.records).toMatchObject({ total: 5, commits: 1, prepared: 0, messages: 0, firstCommitAt: '2026-12-01 22:39:12.791099 UTC', lastCommitAt: '2026-12-01 22:39:12.791099 UTC' });
    expect(walk.records.byType).toEqual({ 'Sequence/LOG': 1, 'Heap/INSERT': 2, 'Btree/INSERT_LEAF': 1, 'Transaction/COMMIT': 1 });
  });

  it('housekeeping alone (a shutdown checkpoint, hint bits, a snapshot) commits nothing', () => {
    const w = walker('0/30008D0');
    for (const line of HOUSEKEEPING.split('\n')) w.line(line);
    const walk = w.finish('pg_waldump: error: error in WAL record at 0/3003500: invalid record length at 0/3003538: wanted 24, got 0');
    expect(walk.records).toMatchObject({ total: 3, commits: 0 });
    expect(walk.end && formatLsn(walk.end)).toBe('0/3003538');
  });

  it('nothing past the fork: the end is the fork', () => {
    const walk = walker('0/30008D0').finish('pg_waldump: error: could not find a valid record after 0/30008D0');
    expect(walk.end && formatLsn(walk.end)).toBe('0/30008D0');
    expect(walk.records.total).toBe(0);
  });

  it('a fork at a segment boundary the node never wrote: nothing past it; a missing fork segment otherwise: unknown', () => {
    const never = walker('0/4000000', ['000000010000000000000003']).finish('pg_waldump: error: could not find file "000000010000000000000004": No such file or directory');
    expect(never.end && formatLsn(never.end)).toBe('0/4000000');
    const gone = walker('0/4000100', []).finish('pg_waldump: error: could not find file "000000010000000000000004": No such file or directory');
    expect(gone.end).toBeUndefined();
    expect(gone.error).toMatch(/not in the node's pg_wal/);
  });

  it('a recycled segment ends the WAL at the page that does not belong', () => {
    const w = walker('0/3000000');
    for (const line of DIVERGED.split('\n')) w.line(line);
    const walk = w.finish('pg_waldump: error: error in WAL record at 0/30008A8: unexpected pageaddr 0/1000000 in log segment 000000010000000000000004, offset 0');
    expect(walk.end && formatLsn(walk.end)).toBe('0/4000000');
  });
});

describe('timeline history and segment names', () => {
  it('reads the switchpoints of a history file', () => {
    expect(parseTimelineHistory('1\t0/3000000\tno recovery target specified\n\n2\t0/50000A0\tno recovery target specified\n')).toEqual([
      { parent: 1, switchpoint: '0/3000000' },
      { parent: 2, switchpoint: '0/50000A0' },
    ]);
  });

  it('names and positions segments', () => {
    expect(segmentName(1, lsnToBigInt('0/30008D0'), SEG)).toBe('000000010000000000000003');
    expect(segmentName(2, lsnToBigInt('1/FF000000'), SEG)).toBe('0000000200000001000000FF');
    expect(formatLsn(segmentStart('0000000200000001000000FF', SEG))).toBe('1/FF000000');
  });
});
