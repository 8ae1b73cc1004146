/**
 * A failback stops and rebuilds its home region's nodes, so it refuses, before touching anything, a
 * database that takes writes there already (it was never moved): against the real Temporal dev server
 * and real PostgreSQL, the primary in east keeps answering writes and nothing is stopped.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRun } from '../../cli/runs';
import { postgresDatabase } from '../../config/load';
import { FailureType } from '../../contract/failures';
import { statusQuery } from '../../contract/runbook';
import type { failback } from '../../workflows';
import { createTestLab, type TestLab } from '../helpers/lab';
import { inRecovery, tryWrite } from '../helpers/postgres';
import { startTestTemporal, type TestTemporal } from '../helpers/temporal';

let lab: TestLab;
let temporal: TestTemporal;

beforeAll(async () => {
  lab = await createTestLab('failback-refusals', { databases: ['orders'], regions: true });
  temporal = await startTestTemporal(lab.loaded);
}, 240_000);

afterAll(async () => {
  await temporal?.close();
  await lab?.destroy();
});

describe('failback refusals', () => {
  it('a database whose primary is home already: refused in the first step, its primary untouched', async () => {
    const started = await startRun(temporal.client, lab.loaded, { runbook: 'failback', params: ['region=east'], as: 'alice', id: `failback-refused-${process.pid}`, drill: true });
    const handle = temporal.client.workflow.getHandle<typeof failback>(started.workflowId);
    await expect(handle.result()).rejects.toThrow();
    const status = await handle.query(statusQuery);
    expect(status.error).toEqual({
      type: FailureType.NotConfigured,
      message: 'refusing to fail back to east: orders takes writes in east already: its node there is the primary, never stopped or rebuilt by a failback. Nothing was changed',
    });
    expect(status.steps.filter((s) => s.state !== 'pending').map((s) => [s.id, s.state])).toEqual([['declare', 'failed']]);
    const orders = postgresDatabase(lab.loaded.config, 'orders');
    expect(await inRecovery(orders.primary)).toBe(false);
    expect(await tryWrite(orders.primary, 'orders', 'still served in east')).toBeUndefined();
    expect(await inRecovery(orders.standby)).toBe(true);
  });
});
