/**
 * A region's sentinel, against the real Temporal dev server, real PostgreSQL and the lab's real regional
 * services: when a majority of the three regions sees east's service and east's primary fail for the
 * threshold, the sentinel starts regional-evacuation in unplanned mode as its identity, detectedAt at the
 * first failed probe. A region's evacuation moves people's traffic, so its gates wait for a person even
 * under an `auto` tier; once approved, the run evacuates east and the standby takes writes.
 */
import type { WorkflowHandle } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decideGate } from '../../cli/runs';
import { startSentinels, stopSentinels } from '../../cli/sentinels';
import { postgresDatabase } from '../../config/load';
import { dbPromotionWorkflowId } from '../../contract/db-promotion';
import { sentinelStatusQuery, statusQuery } from '../../contract/runbook';
import { sentinelId, type Declaration, type SentinelStatus } from '../../contract/sentinel';
import { killRegion } from '../../lab/faults';
import type { regionalEvacuation } from '../../workflows';
import { createTestLab, sentinelExtra, type TestLab } from '../helpers/lab';
import { approveAsBob } from '../helpers/lost-region';
import { inRecovery, tryWrite } from '../helpers/postgres';
import { gateWaiting, startTestTemporal, waitForStatus, type TestTemporal } from '../helpers/temporal';

const INTERVAL = 1;
const THRESHOLD = 4;

let lab: TestLab;
let temporal: TestTemporal;

beforeAll(async () => {
  const extra = sentinelExtra([], { '1': { policy: 'auto', vetoSeconds: 2 } }, { interval: INTERVAL, threshold: THRESHOLD });
  lab = await createTestLab('sentinel-region', {
    databases: ['orders'],
    regions: true,
    // A second standby in central: the evacuation's gate shows the one the promotion would choose.
    standbys: ['central'],
    extra: { ...extra, sentinels: { ...(extra.sentinels as Record<string, unknown>), services: ['east'] } },
  });
  temporal = await startTestTemporal(lab.loaded);
  await startSentinels(temporal.client, lab.loaded, 'erin');
}, 240_000);

afterAll(async () => {
  if (temporal) await stopSentinels(temporal.client, lab.loaded, 'erin', 'test over').catch(() => undefined);
  await temporal?.close();
  await lab?.destroy();
});

const east = sentinelId({ kind: 'region', region: 'east' });
const statusOfEast = (): Promise<SentinelStatus> => temporal.client.workflow.getHandle(east).query(sentinelStatusQuery);

describe('a region sentinel', () => {
  it('sees east healthy from all three regions, then, east lost, starts one unplanned evacuation that waits for people', { timeout: 300_000 }, async () => {
    await expect.poll(async () => {
      const s = await statusOfEast().catch(() => undefined);
      return s ? Object.entries(s.views).filter(([, v]) => v.last === 'healthy').map(([r]) => r).sort() : [];
    }, { timeout: 30_000, interval: 250 }).toEqual(['central', 'east', 'west']);

    const faults = await killRegion(lab.lab, lab.loaded, 'east', lab.lab.daemonPid('service-east'));
    expect(faults.map((f) => f.what)).toEqual([expect.stringMatching(/^orders primary \(east/), 'service-east']);
    const faultAt = faults[0]!.at;

    let declared: Declaration | undefined;
    await expect.poll(async () => {
      declared = (await statusOfEast()).declarations.find((d) => d.workflowId !== undefined && d.trigger.declaredAt > faultAt);
      return declared !== undefined;
    }, { timeout: 60_000, interval: 250 }).toBe(true);
    const { trigger } = declared as Declaration;
    expect(trigger.target).toEqual({ kind: 'region', region: 'east' });
    expect(Date.parse(trigger.detectedAt)).toBeGreaterThanOrEqual(Date.parse(faultAt) - 50);
    expect(Date.parse(trigger.declaredAt) - Date.parse(trigger.detectedAt)).toBeGreaterThanOrEqual(THRESHOLD * 1000);
    expect(trigger.votes.filter((v) => v.saw === 'failing').length).toBeGreaterThanOrEqual(2);

    const handle: WorkflowHandle<typeof regionalEvacuation> = temporal.client.workflow.getHandle(declared?.workflowId as string);
    // A person decides the evacuation's gates; the quorum never does, whatever the tier says.
    const atGate = await waitForStatus(handle, gateWaiting('drain-traffic'), 'the drain-traffic gate', 60_000);
    expect(atGate).toMatchObject({ initiator: 'sentinel', detectedAt: trigger.detectedAt });
    expect(atGate.events.find((e) => e.kind === 'gate-opened')?.detail).toMatch(/Declared by sentinel:region:east/);
    expect(atGate.events.find((e) => e.kind === 'gate-opened')?.detail).not.toMatch(/quorum approves/);
    await decideGate(temporal.client, lab.loaded, { workflowId: handle.workflowId, gate: 'drain-traffic', as: 'bob', comment: 'east is gone', decision: 'approve' });
    const atPromote = await approveAsBob(temporal.client, lab, handle, 'promote-databases');
    const briefed = atPromote.events.find((e) => e.kind === 'gate-opened' && e.gate === 'promote-databases')?.detail ?? '';
    const briefedRegion = /orders: standby (\w+)/.exec(briefed)?.[1];
    expect(['west', 'central']).toContain(briefedRegion);
    // The child's RPO after a kill is an upper bound that may exceed the target: then a person approves it too.
    const child = temporal.client.workflow.getHandle(dbPromotionWorkflowId('orders'));
    const at = await waitForStatus(child, (s) => s.detectedAt === trigger.detectedAt && (s.state === 'completed' || gateWaiting('promote')(s)), 'orders promoted or at its gate', 120_000);
    if (at.state !== 'completed') await decideGate(temporal.client, lab.loaded, { workflowId: child.workflowId, gate: 'promote', as: 'carol', comment: 'east is gone', decision: 'approve' });
    const result = await handle.result();
    expect('databases' in result ? result.databases.map((d) => [d.database, d.state]) : result).toEqual([['orders', 'promoted']]);
    const orders = postgresDatabase(lab.loaded.config, 'orders');
    const promoted = 'databases' in result ? result.databases[0]?.result : undefined;
    // The standby the gate showed is the one promoted (nothing changed between the reading and the promotion).
    expect(promoted?.newPrimary.region).toBe(briefedRegion);
    const node = [orders.standby, ...orders.standbys].find((n) => n.region === briefedRegion)!;
    expect(await inRecovery(node)).toBe(false);
    expect(await tryWrite(node, 'orders', 'after the evacuation the sentinel started')).toBeUndefined();
    expect(promoted?.followers?.map((f) => f.following)).toEqual([true]);
    expect((await handle.query(statusQuery)).state).toBe('completed');
    // One run for the failure: the region stays down and the sentinel starts nothing more.
    expect((await statusOfEast()).declarations.filter((d) => d.workflowId !== undefined)).toHaveLength(1);
  });
});
