/**
 * The fence holds against any client: after a promotion the old primary is
 * shut down on its host with a standby.signal, so neither a session that turns
 * its read-only default off nor a restart by hand gets a write in. Real
 * Temporal, real PostgreSQL; rows are counted on both nodes.
 */
import { Client as PgClient } from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decideGate, startRun } from '../../cli/runs';
import { postgresDatabase } from '../../config/load';
import { startCluster } from '../../lab/postgres';
import type { dbPromotion } from '../../workflows';
import { createTestLab, type TestLab } from '../helpers/lab';
import { countRows, inRecovery, sql } from '../helpers/postgres';
import { gateWaiting, startTestTemporal, waitForStatus, type TestTemporal } from '../helpers/temporal';

let lab: TestLab;
let temporal: TestTemporal;

beforeAll(async () => {
  lab = await createTestLab('fence');
  temporal = await startTestTemporal(lab.loaded);
});

afterAll(async () => {
  await temporal?.close();
  await lab?.destroy();
});

const orders = () => postgresDatabase(lab.loaded.config, 'orders');

/** Tries the two bypasses of a read-only default in one session: SET ... off, then BEGIN READ WRITE. */
async function bypassWrite(node: { host: string; port: number }): Promise<string[]> {
  const refusals: string[] = [];
  for (const attempt of [
    ['SET default_transaction_read_only = off', "INSERT INTO lab_records (payload) VALUES ('bypass: default off')"],
    ['BEGIN READ WRITE', "INSERT INTO lab_records (payload) VALUES ('bypass: read write')", 'COMMIT'],
  ]) {
    const client = new PgClient({ host: node.host, port: node.port, user: 'postgres', database: 'orders', connectionTimeoutMillis: 3000 });
    client.on('error', () => undefined);
    try {
      await client.connect();
      for (const statement of attempt) await client.query(statement);
      refusals.push('');
    } catch (err) {
      refusals.push((err as Error).message);
    } finally {
      await client.end().catch(() => undefined);
    }
  }
  return refusals;
}

describe('a fence PostgreSQL enforces', () => {
  it('after a planned promotion the old primary takes no write from any client, not even after a restart by hand', async () => {
    const db = orders();
    const started = await startRun(temporal.client, lab.loaded, { runbook: 'db-promotion', params: ['database=orders', 'mode=planned'], as: 'alice', drill: true });
    const handle = temporal.client.workflow.getHandle<typeof dbPromotion>(started.workflowId);
    await waitForStatus(handle, gateWaiting('promote'), 'gate promote');
    await decideGate(temporal.client, lab.loaded, { workflowId: handle.workflowId, gate: 'promote', as: 'bob', decision: 'approve', comment: 'go' });
    const result = await handle.result();
    expect(result.fence).toEqual({ fenced: true, method: expect.stringMatching(/^clean shutdown .* standby\.signal/) });
    const rowsWest = await countRows(db.standby, 'orders');

    // Shut down: both bypasses find no server at all.
    const whileDown = await bypassWrite(db.primary);
    expect(whileDown.every((m) => /ECONNREFUSED/.test(m))).toBe(true);

    // Someone restarts it by hand: the standby.signal brings it back in recovery, read-only for every session.
    const { primary } = lab.lab.clusters('orders');
    await startCluster(primary);
    expect(await inRecovery(db.primary)).toBe(true);
    const afterRestart = await bypassWrite(db.primary);
    expect(afterRestart).toEqual([
      expect.stringMatching(/read-only transaction|cannot set transaction read-write mode during recovery/),
      expect.stringMatching(/cannot set transaction read-write mode during recovery|read-only transaction/),
    ]);
    // Not one bypass row exists anywhere: west (the only primary) never saw them, east refused them.
    expect(await countRows(db.standby, 'orders')).toBe(rowsWest);
    const east = await sql<{ n: string }>(db.primary, 'orders', "SELECT count(*)::text AS n FROM lab_records WHERE payload LIKE 'bypass:%'");
    expect(east[0]?.n).toBe('0');
    await lab.lab.reset();
  });
});
