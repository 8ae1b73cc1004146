/**
 * A database with standbys in two other regions (west, the configured standby, and central), against the
 * real Temporal dev server and real PostgreSQL: the run chooses the standby to promote (streaming and
 * allowed, the most WAL held, then configured order), the approver sees the choice at the gate, and after
 * the promotion the other standby streams from the new primary, read back from the servers themselves.
 */
import type { WorkflowHandle } from '@temporalio/client';
import { beforeEach, describe, expect, it } from 'vitest';
import { decideGate } from '../../cli/runs';
import type { PostgresNodeConfig } from '../../config/load';
import { stopCluster } from '../../activities/postgres-host';
import { waitFor } from '../../lib/processes';
import type { dbPromotion } from '../../workflows';
import { severalStandbysLab } from '../helpers/several-standbys';
import { countRows, inRecovery, sql, tryWrite } from '../helpers/postgres';
import { gateWaiting, waitForStatus } from '../helpers/temporal';

const rig = severalStandbysLab('choice');
const { orders, central, start } = rig;

async function approve(handle: WorkflowHandle<typeof dbPromotion>) {
  const waiting = await waitForStatus(handle, gateWaiting('promote'), 'the promote gate');
  await decideGate(rig.temporal.client, rig.lab.loaded, { workflowId: handle.workflowId, gate: 'promote', as: 'bob', comment: 'go', decision: 'approve' });
  return { waiting, result: await handle.result() };
}

/** The port a standby's WAL receiver streams from, read on the standby itself. */
async function streamsFrom(node: PostgresNodeConfig): Promise<number | undefined> {
  const [row] = await sql<{ status: string | null; port: number | null }>(node, 'postgres', 'SELECT status, sender_port AS port FROM pg_stat_wal_receiver');
  return row?.status === 'streaming' ? row.port ?? undefined : undefined;
}

/** A row written on `primary` appears on `standby`: it replicates from it now. */
async function replicates(primary: PostgresNodeConfig, standby: PostgresNodeConfig, marker: string): Promise<void> {
  expect(await tryWrite(primary, 'orders', marker)).toBeUndefined();
  await waitFor(`${marker} on ${standby.region}`, async () => {
    const rows = await sql<{ n: string }>(standby, 'orders', 'SELECT count(*)::text AS n FROM lab_records WHERE payload = $1', [marker]);
    return rows[0]?.n === '1' ? true : undefined;
  }, 30_000, 250);
}

describe('several standbys', () => {
  beforeEach(async () => {
    await rig.lab.lab.reset({ seedRows: 50 });
  }, 120_000);

  it('planned, both streaming with the same WAL: the configured standby by order; central follows it', async () => {
    const db = orders();
    const { waiting, result } = await approve(await start(['mode=planned']));
    expect(waiting.events.find((e) => e.kind === 'gate-opened')?.detail).toMatch(/Standby chosen: promote west: holds WAL to \S+ \(0 bytes behind\), as much as another, first by configured order; central holds WAL to/);
    expect(result.newPrimary.region).toBe('west');
    expect(result.choice?.candidates.map((c) => [c.region, c.eligible])).toEqual([['west', true], ['central', true]]);
    expect(result.followers).toEqual([{ region: 'central', following: true, method: expect.stringMatching(/^re-pointed \(primary_conninfo 127\.0\.0\.1:\d+, slot lifeboat_central\) and streaming timeline 2$/) }]);
    // Read back from the servers: west takes writes, central streams from west (its own slot there), east is fenced.
    expect(await inRecovery(db.standby)).toBe(false);
    expect(await streamsFrom(central())).toBe(db.standby.port);
    expect(await sql(db.standby, 'postgres', "SELECT slot_name FROM pg_replication_slots WHERE slot_name = 'lifeboat_central' AND active")).toHaveLength(1);
    await replicates(db.standby, central(), 'after planned promotion');
    expect(await tryWrite(db.primary, 'orders', 'old primary')).toMatch(/ECONNREFUSED/);
  }, 180_000);

  it('unplanned, west behind (its WAL receiver cut): central holds more and is promoted; west is re-pointed and catches up from it', async () => {
    const db = orders();
    // West stops receiving: its primary_conninfo points nowhere.
    await sql(db.standby, 'postgres', "ALTER SYSTEM SET primary_conninfo = 'host=127.0.0.1 port=1 user=postgres'");
    await sql(db.standby, 'postgres', 'SELECT pg_reload_conf()');
    await waitFor('west to stop streaming', async () => ((await streamsFrom(db.standby)) === undefined ? true : undefined), 30_000, 250);
    for (let i = 0; i < 20; i++) expect(await tryWrite(db.primary, 'orders', `only central has ${i}`)).toBeUndefined();
    const written = await countRows(db.primary, 'orders');
    await waitFor('central to receive the writes', async () => ((await countRows(central(), 'orders')) === written ? true : undefined), 30_000, 250);
    expect(await countRows(db.standby, 'orders')).toBeLessThan(written);
    await stopCluster(rig.lab.lab.clusters('orders').primary, 'kill');

    const { waiting, result } = await approve(await start(['mode=unplanned']));
    expect(waiting.events.find((e) => e.kind === 'gate-opened')?.detail).toMatch(/Standby chosen: promote central: holds WAL to \S+, the most of the eligible standbys; west holds WAL to/);
    expect(result.newPrimary).toMatchObject({ region: 'central', port: central().port });
    expect(result.followers).toEqual([{ region: 'west', following: true, method: expect.stringContaining('slot lifeboat_standby') }]);
    expect(await inRecovery(central())).toBe(false);
    // West follows central on the new timeline and has every row central kept.
    expect(await streamsFrom(db.standby)).toBe(central().port);
    await waitFor('west to catch up from central', async () => ((await countRows(db.standby, 'orders')) >= written ? true : undefined), 30_000, 250);
    await replicates(central(), db.standby, 'after unplanned promotion');
  }, 180_000);

  it('to=central names the target: central is promoted though west holds as much; to= an unknown region is refused', async () => {
    const db = orders();
    await expect(start(['mode=planned', 'to=south'])).rejects.toThrow("to=south: orders has no standby in region 'south' (its standbys are in west, central)");
    const { result } = await approve(await start(['mode=planned', 'to=central']));
    expect(result.newPrimary.region).toBe('central');
    // Named: promoted as named; the reading is still taken and shown (the choice would have been west, by order).
    expect(result.choice?.reason).toMatch(/^promote west: .*first by configured order/);
    expect(result.followers).toEqual([{ region: 'west', following: true, method: expect.any(String) }]);
    expect(await streamsFrom(db.standby)).toBe(central().port);
    await replicates(central(), db.standby, 'after to=central');

    // Central is the primary now: another promotion (west, in recovery and streaming, would be a candidate)
    // would fence east, long down, and leave central writable beside west. Refused before anything is touched.
    const again = await start(['mode=unplanned']);
    const failure = await again.result().then(() => undefined, (e: unknown) => e as Error);
    expect(String((failure as { cause?: { message?: string } } | undefined)?.cause?.message)).toMatch(
      /^step preflight failed: orders takes writes in central \(127\.0\.0\.1:\d+\): that node is the primary now, not east; promoting west would leave it writable beside the new primary \(two writable primaries\)\. Nothing was changed/,
    );
    expect(await inRecovery(db.standby)).toBe(true);
    expect(await inRecovery(central())).toBe(false);
  }, 180_000);
});
