/**
 * The lab's replication lag fault against real PostgreSQL: every standby of a database applies WAL N
 * seconds late (recovery_min_apply_delay). It receives every byte, so a row written on the primary is
 * received at once and not replayed; healing lifts the delay and the row appears, read on the standbys.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresDatabase, type PostgresNodeConfig } from '../../config/load';
import { lsnToBigInt } from '../../contract/lsn';
import { formatFault, lagDatabase, unlagAll } from '../../lab/faults';
import { sleep, waitFor } from '../../lib/processes';
import { createTestLab, type TestLab } from '../helpers/lab';
import { sql, tryWrite } from '../helpers/postgres';

let lab: TestLab;

beforeAll(async () => {
  lab = await createTestLab('faults', { standbys: ['central'] });
}, 240_000);

afterAll(async () => {
  await lab?.destroy();
});

const orders = () => postgresDatabase(lab.loaded.config, 'orders');
const has = async (node: PostgresNodeConfig, marker: string) =>
  (await sql<{ n: string }>(node, 'orders', 'SELECT count(*)::text AS n FROM lab_records WHERE payload = $1', [marker]))[0]?.n === '1';

describe('lab fault lag', () => {
  it('every standby receives at once and replays late; heal lifts it and the rows appear', async () => {
    const db = orders();
    const standbys = [db.standby, ...db.standbys];
    const records = await lagDatabase(lab.lab, lab.loaded, 'orders', 60);
    expect(records.map(formatFault)).toEqual([
      expect.stringMatching(/ lagged orders standby \(west, 127\.0\.0\.1:\d+\) applies WAL 60s late, pid \d+$/),
      expect.stringMatching(/ lagged orders standby \(central, 127\.0\.0\.1:\d+\) applies WAL 60s late, pid \d+$/),
    ]);
    expect(await tryWrite(db.primary, 'orders', 'written while lagging')).toBeUndefined();
    const [primary] = await sql<{ lsn: string }>(db.primary, 'postgres', 'SELECT pg_current_wal_lsn()::text AS lsn');
    for (const node of standbys) {
      // Received (nothing lost in flight), not applied.
      await waitFor(`${node.region} to receive the write`, async () => {
        const [r] = await sql<{ lsn: string | null }>(node, 'postgres', 'SELECT pg_last_wal_receive_lsn()::text AS lsn');
        return r?.lsn && lsnToBigInt(r.lsn) >= lsnToBigInt(primary!.lsn) ? true : undefined;
      }, 10_000, 100);
    }
    await sleep(2000);
    for (const node of standbys) expect(await has(node, 'written while lagging')).toBe(false);

    const healed = await unlagAll(lab.lab, lab.loaded);
    expect(healed.map((r) => r.what)).toEqual([
      expect.stringMatching(/^orders standby \(west, .*\) applies WAL at once again$/),
      expect.stringMatching(/^orders standby \(central, .*\) applies WAL at once again$/),
    ]);
    for (const node of standbys) await waitFor(`the row on ${node.region}`, async () => ((await has(node, 'written while lagging')) ? true : undefined), 15_000, 200);
    expect(await unlagAll(lab.lab, lab.loaded)).toEqual([]);
  });

  it('refuses a delay outside 1 to 3600 seconds', async () => {
    await expect(lagDatabase(lab.lab, lab.loaded, 'orders', 0)).rejects.toThrow('--seconds must be a whole number of seconds from 1 to 3600, got 0');
    await expect(lagDatabase(lab.lab, lab.loaded, 'orders', 1.5)).rejects.toThrow('got 1.5');
  });
});
