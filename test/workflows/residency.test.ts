/**
 * Residency rules against the real Temporal dev server, real PostgreSQL and the lab's regional services:
 * `orders` may run only in east (`residency.allow: [east]`), so its standby in west may never become its
 * primary. A promotion of it is refused before anything is touched; when east is lost, the evacuation
 * promotes `users` and leaves `orders` unpromoted, its requests in west answered by the maintenance page,
 * and the run says why.
 */
import { WorkflowFailedError } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decideGate, startRun } from '../../cli/runs';
import { postgresDatabase } from '../../config/load';
import { dbPromotionWorkflowId } from '../../contract/db-promotion';
import { FailureType } from '../../contract/failures';
import { statusQuery } from '../../contract/runbook';
import { stopPid } from '../../lib/processes';
import { stopCluster } from '../../activities/postgres-host';
import type { dbPromotion, regionalEvacuation } from '../../workflows';
import { createTestLab, type TestLab } from '../helpers/lab';
import { approveAsBob, labDaemons } from '../helpers/lost-region';
import { inRecovery, tryWrite } from '../helpers/postgres';
import { gateWaiting, startTestTemporal, waitForStatus, type TestTemporal } from '../helpers/temporal';

let lab: TestLab;
let temporal: TestTemporal;

beforeAll(async () => {
  lab = await createTestLab('residency', { databases: ['orders', 'users'], regions: true, databaseFields: { orders: { residency: { allow: ['east'] } } } });
  temporal = await startTestTemporal(lab.loaded);
}, 240_000);

afterAll(async () => {
  await temporal?.close();
  await lab?.destroy();
});

const db = (name: string) => postgresDatabase(lab.loaded.config, name);

async function service(region: string, route: string): Promise<{ status: number; json: Record<string, unknown> }> {
  const response = await fetch(`${lab.loaded.config.services[region]?.url ?? ''}${route}`);
  return { status: response.status, json: (await response.json()) as Record<string, unknown> };
}

describe('residency', () => {
  it('a promotion of a database with nowhere allowed to go is refused in preflight: nothing fenced, nothing promoted', async () => {
    const started = await startRun(temporal.client, lab.loaded, { runbook: 'db-promotion', params: ['database=orders', 'mode=planned'], as: 'alice', id: `db-promotion:orders:residency-${process.pid}`, drill: true });
    const handle = temporal.client.workflow.getHandle<typeof dbPromotion>(started.workflowId);
    const err = await handle.result().then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(WorkflowFailedError);
    const status = await handle.query(statusQuery);
    expect(status.error).toEqual({ type: FailureType.ResidencyDenied, message: "orders has nowhere allowed to go: region west is not among the allowed regions (east); nothing was changed" });
    expect(status.steps.filter((s) => s.state !== 'pending').map((s) => [s.id, s.state])).toEqual([['preflight', 'failed']]);
    expect(await inRecovery(db('orders').primary)).toBe(false);
    expect(await tryWrite(db('orders').primary, 'orders', 'still the primary')).toBeUndefined();
    expect(await inRecovery(db('orders').standby)).toBe(true);
  });

  it('east lost: the evacuation promotes users; orders stays unpromoted and west answers its requests with the maintenance page', { timeout: 300_000 }, async () => {
    for (const name of ['orders', 'users']) await stopCluster(lab.lab.clusters(name).primary, 'kill');
    await stopPid(labDaemons(lab)['service-east']!.pid, 'SIGKILL');
    const detectedAt = new Date().toISOString();
    const started = await startRun(temporal.client, lab.loaded, { runbook: 'regional-evacuation', params: ['region=east', 'mode=unplanned'], as: 'alice', id: `evacuation-residency-${process.pid}`, drill: true, detectedAt });
    const handle = temporal.client.workflow.getHandle<typeof regionalEvacuation>(started.workflowId);
    await approveAsBob(temporal.client, lab, handle, 'drain-traffic');
    await approveAsBob(temporal.client, lab, handle, 'promote-databases');
    // users' RPO after a kill is an upper bound that may exceed the target: then a person approves its own gate.
    const users = temporal.client.workflow.getHandle(dbPromotionWorkflowId('users'));
    const at = await waitForStatus(users, (s) => s.detectedAt === detectedAt && (s.state === 'completed' || gateWaiting('promote')(s)), 'users promoted or at its gate', 120_000);
    if (at.state !== 'completed') await decideGate(temporal.client, lab.loaded, { workflowId: users.workflowId, gate: 'promote', as: 'carol', comment: 'east is gone', decision: 'approve' });

    const result = await handle.result();
    if (!('databases' in result)) throw new Error(`the evacuation was skipped: ${JSON.stringify(result)}`);
    expect(result.databases.map((d) => [d.database, d.state])).toEqual([['orders', 'maintenance'], ['users', 'promoted']]);
    expect(result.databases[0]?.error).toBe('orders has nowhere allowed to go: region west is not among the allowed regions (east); nothing was changed');
    expect(result.degraded).toBe(true);
    const status = await handle.query(statusQuery);
    expect(status.steps.find((s) => s.id === 'promote-databases')?.note).toContain("orders not promoted: orders has nowhere allowed to go: region west is not among the allowed regions (east); nothing was changed; its requests in west get the maintenance page");

    // Read back: orders' standby never left recovery; users' did and takes writes.
    expect(await inRecovery(db('orders').standby)).toBe(true);
    expect(await inRecovery(db('users').standby)).toBe(false);
    // West's service: orders answers the maintenance page, users is served, and the service counts as healthy.
    const page = await service('west', '/records/orders/stats');
    expect(page.status).toBe(503);
    expect(String(page.json.error)).toMatch(/^orders is under maintenance \(since .*\): evacuation .*orders: orders has nowhere allowed to go/);
    expect((await service('west', '/records/users/stats')).status).toBe(200);
    const health = await service('west', '/health');
    expect(health.status).toBe(200);
    expect((health.json.databases as Record<string, { maintenance?: string }>).orders?.maintenance).toMatch(/nowhere allowed/);
  });
});
