/**
 * The fence holds against any client: after a promotion the old primary is
 * shut down on its host with a standby.signal, so neither a session that turns
 * its read-only default off nor a restart by hand gets a write in. Real
 * Temporal, real PostgreSQL; rows are counted on both nodes.
 */
import { existsSync, readFileSync } from 'node:fs';
import { Client as PgClient } from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decideGate, startRun } from '../../cli/runs';
import { postgresDatabase } from '../../config/load';
import { startCluster, stopCluster } from '../../lab/postgres';
import { RunRefusedError } from '../../cli/runs';
import { inspectHold } from '../../lib/holds';
import { prepareForRewind } from '../../activities/postgres-fence';
import path from 'node:path';
import { writeFileSync } from 'node:fs';
import { returnWatchWorkflowId } from '../../contract/return-watch';
import type { returnWatch } from '../../workflows';
import type { dbPromotion } from '../../workflows';
import { createTestLab, type TestLab } from '../helpers/lab';
import { countRows, inRecovery, sql, tryWrite } from '../helpers/postgres';
import { WorkflowFailedError } from '@temporalio/client';
import { FailureType } from '../../contract/failures';
import { buildActivityDependencies } from '../../workers/dependencies';
import { gateWaiting, startTestTemporal, waitForStatus, type TestTemporal } from '../helpers/temporal';

let lab: TestLab;
let temporal: TestTemporal;

beforeAll(async () => {
  // A return watch probes an unreachable old primary every 2 s (300 s by default), so its page is seen here.
  lab = await createTestLab('fence', { dbPromotion: { returnWatchProbeSeconds: 2 } });
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

/** What was delivered to the on-call for `workflowId` (the notification journal). */
function pages(workflowId: string): Array<{ subject: string; body: string }> {
  if (!existsSync(lab.loaded.journalPath)) return [];
  return readFileSync(lab.loaded.journalPath, 'utf8').trim().split('\n').filter(Boolean)
    .map((l) => JSON.parse(l) as { workflowId: string; audience: string; delivered: boolean; subject: string; body: string })
    .filter((j) => j.workflowId === workflowId && j.audience === 'oncall' && j.delivered);
}

describe('an old primary that was unreachable', () => {
  it('unreachable then back: the return watch fences it the moment its region\'s worker runs again, and holds the database until then', { timeout: 240_000 }, async () => {
    const db = orders();
    const { primary } = lab.lab.clusters('orders');
    // East is lost: its primary crashed and no Lifeboat worker runs there.
    await temporal.hosts.stop('east');
    await stopCluster(primary, 'kill');
    try {
      const started = await startRun(temporal.client, lab.loaded, { runbook: 'db-promotion', params: ['database=orders', 'mode=unplanned'], as: 'alice', drill: true });
      const handle = temporal.client.workflow.getHandle<typeof dbPromotion>(started.workflowId);
      const atGate = await waitForStatus(handle, gateWaiting('promote'), 'gate promote', 90_000);
      expect(atGate.steps.find((s) => s.id === 'fence-primary')).toMatchObject({ state: 'skipped', note: expect.stringMatching(/^not fenced: unreachable/) });
      await decideGate(temporal.client, lab.loaded, { workflowId: handle.workflowId, gate: 'promote', as: 'bob', decision: 'approve', comment: 'east is gone' });
      const result = await handle.result();
      const watchId = returnWatchWorkflowId({ kind: 'fence', database: 'orders', region: 'east', towards: 'standby' });
      expect(result.fence).toEqual({ fenced: false, reason: expect.stringMatching(/^not fenced: unreachable/) });
      expect(result.returnWatch).toBe(watchId);
      expect(await inRecovery(db.standby)).toBe(false);

      // East's host comes back: its primary restarts writable on its old timeline (two writable primaries) ...
      await startCluster(primary);
      expect(await inRecovery(db.primary)).toBe(false);
      // The watch sees it from the main worker and pages the on-call: the node takes writes and is not fenced.
      await expect.poll(() => pages(watchId).some((p) => /TAKES WRITES and is not fenced/.test(p.subject) && p.body.includes("start 'lifeboat worker --region east'")), { timeout: 30_000, interval: 500 }).toBe(true);
      // ... and while no worker of east runs, the database stays held by the watch: nothing else acts on it.
      const refused = await startRun(temporal.client, lab.loaded, { runbook: 'db-promotion', params: ['database=orders', 'mode=unplanned'], as: 'alice', drill: true, id: `db-promotion:orders:after-${process.pid}` }).catch((err: unknown) => err);
      expect(refused).toBeInstanceOf(RunRefusedError);
      expect((refused as Error).message).toMatch(new RegExp(`^orders is held by ${handle.workflowId} \\(alice, started [^)]*, ended; still held by ${watchId}\\)`));

      // The worker of east runs again: the watch's fence, waiting on east's queue, shuts the node down at once.
      await temporal.hosts.start('east');
      const watch = await temporal.client.workflow.getHandle<typeof returnWatch>(watchId).result();
      expect(watch).toMatchObject({ duty: 'fence', database: 'orders', region: 'east', fence: { fenced: true, method: expect.stringMatching(/^clean shutdown/) } });
      expect((await bypassWrite(db.primary)).every((m) => /ECONNREFUSED/.test(m))).toBe(true);
      expect(pages(watchId).some((p) => /old primary in east is back; fenced/.test(p.subject))).toBe(true);
      // A restart by hand now comes back read-only.
      await startCluster(primary);
      expect(await inRecovery(db.primary)).toBe(true);
      // The hold left with the watch: the database is free for the next run (the CLI asks the server first).
      await expect.poll(async () => inspectHold(temporal.client, { kind: 'database', name: 'orders' }, { endOrphan: false }).then((h) => h.state), { timeout: 60_000, interval: 500 }).toBe('free');
    } finally {
      await temporal.hosts.start('east');
      await lab.lab.reset();
    }
  });
});

describe('a return watch acts only for the run that left it', () => {
  it('a watch started by hand (not by the holder of its target) ends at once, having shut nothing down', async () => {
    const db = orders();
    // The attack: a raw start that would "fence the old primary" of a database whose primary is healthy.
    const forged = await temporal.client.workflow.start('returnWatch', {
      taskQueue: lab.taskQueue,
      workflowId: `lifeboat-return-watch:database:orders-forged-${process.pid}`,
      args: [{ duty: { kind: 'fence', database: 'orders', region: 'east', towards: 'standby' }, leftBy: 'nobody', runbook: 'db-promotion', drill: false }],
    });
    const failure = await forged.result().then(() => undefined, (err: unknown) => err);
    expect(failure).toBeInstanceOf(WorkflowFailedError);
    expect(((failure as WorkflowFailedError).cause as Error).message).toMatch(/^a return watch is left only by the run that holds orders \(this one was started directly\): nothing was done$/);
    // Nothing was stopped: the primary still takes writes.
    expect(await inRecovery(db.primary)).toBe(false);
    expect(await tryWrite(db.primary, 'orders', 'still writable')).toBeUndefined();
  });

  it('the fence of a return watch refuses a node that is the only primary (its standby was never promoted)', async () => {
    const provider = buildActivityDependencies(lab.loaded).databases.get('orders');
    if (!provider) throw new Error('no orders provider');
    await expect(provider.fencePrimary(false, 'test/forged', true)).rejects.toMatchObject({
      type: FailureType.FenceRefused,
      message: expect.stringMatching(/^refusing to fence orders east \(.*\): orders west \(.*\) is still a standby \(in recovery\) while this node takes writes; it is not the primary the promotion replaced$/),
    });
    expect(await inRecovery(orders().primary)).toBe(false);
  });
});

describe('a rebuild keeps the node read-only on restart', () => {
  it('the standby.signal stays before pg_rewind on a cleanly stopped node; only a crashed one, which pg_rewind recovers in single-user mode, loses it', async () => {
    const { primary } = lab.lab.clusters('orders');
    const signal = path.join(primary.dataDir, 'standby.signal');
    try {
      await stopCluster(primary, 'fast');
      writeFileSync(signal, '');
      await prepareForRewind(primary);
      expect(existsSync(signal)).toBe(true);

      await startCluster(primary); // comes back a standby: the signal holds
      expect(await inRecovery(orders().primary)).toBe(true);
      await stopCluster(primary, 'kill');
      await prepareForRewind(primary);
      expect(existsSync(signal)).toBe(false);
    } finally {
      await lab.lab.reset();
    }
  });
});

