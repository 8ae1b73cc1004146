/**
 * The sentinel against real PostgreSQL and a real Temporal server: three voting
 * regions (east and west hold the nodes, central is a witness), each probing from
 * its own worker. A fault injected by the lab (kill, hang) is declared only after
 * a quorum saw it for the threshold; the runbook it starts measures its RTO from
 * the first failed probe; under `auto` the promote gate is the quorum's after a
 * veto window, under `confirm` it waits for a person. A short flap starts nothing,
 * and a person cannot pass off a start of their own as the sentinel's.
 */
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ApplicationFailure, WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decideGate, startRun } from '../../cli/runs';
import { readSentinels, startSentinels, stopSentinels, vetoRun } from '../../cli/sentinels';
import { addressFrom, postgresDatabase, type PostgresNodeConfig } from '../../config/load';
import { lsnToBigInt } from '../../contract/lsn';
import { FailureType } from '../../contract/failures';
import { sentinelStatusQuery, statusQuery } from '../../contract/runbook';
import { sentinelId, type Declaration, type SentinelStatus } from '../../contract/sentinel';
import { continueHung, hangDatabase, killDatabase } from '../../lab/faults';
import { startCluster, stopCluster } from '../../lab/postgres';
import { freePort, isAlive, sleep } from '../../lib/processes';
import { LinkProxy, linksOf } from '../../lab/links';
import type { dbPromotion } from '../../workflows';
import { createTestLab, sentinelExtra, type TestLab } from '../helpers/lab';
import { inRecovery, sql, tryWrite } from '../helpers/postgres';
import { gateWaiting, startTestTemporal, waitForStatus, type TestTemporal } from '../helpers/temporal';

const INTERVAL = 1;
const THRESHOLD = 4;
const VETO = 4;

let lab: TestLab;
let temporal: TestTemporal;
let links: LinkProxy | undefined;

beforeAll(async () => {
  lab = await createTestLab('sentinel', {
    databases: ['orders', 'stock', 'catalog', 'billing'],
    // Every region reaches another region's nodes through a link of the lab's proxy, so one link can be cut.
    links: ['east', 'west', 'central'],
    // orders, stock and catalog: tier 1 (auto); billing: tier 2 (confirm).
    databaseFields: { billing: { tier: 2 } },
    // orders has a second standby in central: the run chooses, the other follows.
    standbys: ['central'],
    standbysFor: ['orders'],
    extra: sentinelExtra(['orders', 'stock', 'catalog', 'billing'], { '1': { policy: 'auto', vetoSeconds: VETO }, '2': { policy: 'confirm' } }, { interval: INTERVAL, threshold: THRESHOLD }),
  });
  links = await LinkProxy.start({ port: await freePort(), logFile: path.join(lab.dir, 'toxiproxy.log') });
  await links.ensure(linksOf(lab.loaded));
  temporal = await startTestTemporal(lab.loaded);
  await startSentinels(temporal.client, lab.loaded, 'erin');
}, 240_000);

afterAll(async () => {
  if (temporal) await stopSentinels(temporal.client, lab.loaded, 'erin', 'test over').catch(() => undefined);
  continueHung(lab.lab, lab.loaded);
  await links?.stop();
  await temporal?.close();
  await lab?.destroy();
});

const sentinelOf = (database: string) => temporal.client.workflow.getHandle(sentinelId({ kind: 'database', database }));
const statusOf = (database: string): Promise<SentinelStatus> => sentinelOf(database).query(sentinelStatusQuery);

/** The sentinel's first declaration after `since` that started a run. */
async function declaredRun(database: string, since: string, timeoutMs = 60_000): Promise<Declaration> {
  let found: Declaration | undefined;
  await expect.poll(async () => {
    found = (await statusOf(database)).declarations.find((d) => d.workflowId !== undefined && d.trigger.declaredAt > since);
    return found !== undefined;
  }, { timeout: timeoutMs, interval: 250 }).toBe(true);
  return found as Declaration;
}

async function failureOf(handle: WorkflowHandle): Promise<ApplicationFailure> {
  const err = await handle.result().then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(WorkflowFailedError);
  return (err as WorkflowFailedError).cause as ApplicationFailure;
}

/** What reached the on-call about `workflowId`, from the notification journal. */
function pages(workflowId: string): Array<{ subject: string; body: string }> {
  if (!existsSync(lab.loaded.journalPath)) return [];
  return readFileSync(lab.loaded.journalPath, 'utf8').trim().split('\n').filter(Boolean)
    .map((l) => JSON.parse(l) as { workflowId: string; audience: string; subject: string; body: string })
    .filter((j) => j.workflowId === workflowId && j.audience === 'oncall');
}

describe('the sentinel', () => {
  it('watches from all three regions, each from its own worker, and sees every database healthy', async () => {
    await expect.poll(async () => {
      const readings = await readSentinels(temporal.client, lab.loaded);
      return readings.every((r) => 'status' in r && r.status !== undefined && Object.values(r.status.views).every((v) => v.last === 'healthy'));
    }, { timeout: 30_000, interval: 500 }).toBe(true);
    const orders = await statusOf('orders');
    expect(Object.keys(orders.views).sort()).toEqual(['central', 'east', 'west']);
    expect(orders.rules).toMatchObject({ policy: 'auto', vetoSeconds: VETO, failoverThresholdSeconds: THRESHOLD });
    expect((await statusOf('billing')).rules.policy).toBe('confirm');
    expect(orders.declarations).toEqual([]);
  });

  it('a cut link between east and west (central sees both) is one region\'s view: no failover, however long', { timeout: 60_000 }, async () => {
    const cut = await (links as LinkProxy).cut({ between: ['east', 'west'] });
    expect(cut.length).toBeGreaterThan(0);
    try {
      // West loses east's primary (through its link) and east loses west's standby; central sees both.
      await expect.poll(async () => (await statusOf('orders')).views.west?.last, { timeout: 10_000, interval: 200 }).toBe('failing');
      await sleep((THRESHOLD + 3) * 1000);
      const s = await statusOf('orders');
      expect(s.views.west).toMatchObject({ last: 'failing', lastDetail: expect.stringMatching(/via west->east/) });
      expect(s.views.central?.last).toBe('healthy');
      expect(s.views.east?.last).toBe('healthy');
      expect(s.verdict?.declared).toBe(false);
      expect(s.declarations).toEqual([]);
    } finally {
      await (links as LinkProxy).heal();
    }
    await expect.poll(async () => Object.values((await statusOf('orders')).views).every((v) => v.last === 'healthy'), { timeout: 15_000, interval: 250 }).toBe(true);
    expect(await inRecovery(postgresDatabase(lab.loaded.config, 'orders').standby)).toBe(true);
  });

  it('a hang shorter than the threshold starts nothing, and the failing streak resets', { timeout: 60_000 }, async () => {
    const before = await statusOf('stock');
    const fault = await hangDatabase(lab.lab, lab.loaded, 'stock');
    // The probes see it fail (their deadline, not a wait) ...
    await expect.poll(async () => Object.values((await statusOf('stock')).views).filter((v) => v.last === 'failing').length, { timeout: 10_000, interval: 200 }).toBeGreaterThanOrEqual(2);
    // ... and it comes back before the threshold.
    await sleep(Math.max(0, (THRESHOLD - 2) * 1000 - (Date.now() - Date.parse(fault.at))));
    continueHung(lab.lab, lab.loaded);
    await expect.poll(async () => Object.values((await statusOf('stock')).views).every((v) => v.last === 'healthy' && v.failingSince === undefined), { timeout: 15_000, interval: 250 }).toBe(true);
    await sleep((THRESHOLD + 2) * 1000);
    const after = await statusOf('stock');
    expect(after.declarations).toEqual([]);
    expect(after.rounds).toBeGreaterThan(before.rounds + THRESHOLD);
    expect(await inRecovery(postgresDatabase(lab.loaded.config, 'stock').standby)).toBe(true);
  });

  it('a person cannot start a run as if the sentinel had: a forged trigger is refused at admission', async () => {
    const forged = {
      sentinel: sentinelId({ kind: 'database', database: 'orders' }),
      declaration: '00000000-0000-4000-8000-000000000000',
      target: { kind: 'database' as const, database: 'orders' },
      declaredAt: new Date().toISOString(),
      detectedAt: new Date().toISOString(),
      needed: 2,
      votes: [],
      policy: 'auto' as const,
    };
    // A person naming the sentinel, and the sentinel's own identity used by a person: the sentinel has no such declaration.
    for (const as of ['alice', 'sentinel']) {
      const started = await startRun(temporal.client, lab.loaded, { runbook: 'db-promotion', params: ['database=orders', 'mode=unplanned'], as, drill: false, trigger: forged, id: `db-promotion:orders:forged-${as}-${process.pid}` });
      const failure = await failureOf(temporal.client.workflow.getHandle(started.workflowId));
      expect(failure.type).toBe(FailureType.RunRefused);
      expect(failure.message).toMatch(as === 'alice' ? /sentinel/ : /sentinel sentinel:db:orders .* does not vouch for it \(the sentinel has no declaration 00000000-/);
    }
    // An approver is refused before the start: the trigger changes nothing about who may start a run.
    await expect(startRun(temporal.client, lab.loaded, { runbook: 'db-promotion', params: ['database=orders', 'mode=unplanned'], as: 'bob', drill: false, trigger: forged })).rejects.toThrow(/bob/);
    expect(await inRecovery(postgresDatabase(lab.loaded.config, 'orders').standby)).toBe(true);
  });

  it('auto, not vetoed: a killed primary is declared by the quorum, exactly one run promotes the best standby, the other follows it, the RTO runs from the fault', { timeout: 180_000 }, async () => {
    const db = postgresDatabase(lab.loaded.config, 'orders');
    const fault = await killDatabase(lab.lab, lab.loaded, 'orders');
    const declared = await declaredRun('orders', fault.at);
    const { trigger } = declared;
    // Detected at the first failed probe of the quorum window: at or after the fault, within a round of it.
    expect(Date.parse(trigger.detectedAt)).toBeGreaterThanOrEqual(Date.parse(fault.at) - 50);
    expect(Date.parse(trigger.detectedAt) - Date.parse(fault.at)).toBeLessThan((INTERVAL * 2 + 1) * 1000);
    // Declared only after the threshold, by at least two of three regions.
    expect(Date.parse(trigger.declaredAt) - Date.parse(trigger.detectedAt)).toBeGreaterThanOrEqual(THRESHOLD * 1000);
    expect(trigger.needed).toBe(2);
    expect(trigger.votes.filter((v) => v.saw === 'failing').length).toBeGreaterThanOrEqual(2);

    const handle = temporal.client.workflow.getHandle<typeof dbPromotion>(declared.workflowId as string);
    const result = await handle.result();
    const status = await handle.query(statusQuery);
    expect(status.initiator).toBe('sentinel');
    expect(status.detectedAt).toBe(trigger.detectedAt);
    const promote = status.gates.find((g) => g.id === 'promote');
    expect(promote).toMatchObject({ state: 'approved', decidedBy: expect.stringMatching(/^sentinel:db:orders \(quorum (east|west|central)(, (east|west|central))+\)$/) });
    // The veto window was kept: approved no sooner than vetoSeconds after the gate opened.
    expect(Date.parse(promote?.decidedAt as string) - Date.parse(promote?.openedAt as string)).toBeGreaterThanOrEqual(VETO * 1000 - 100);
    expect(status.events.find((e) => e.kind === 'gate-opened')?.detail).toMatch(/Declared by sentinel:db:orders: .*east.*The sentinel's quorum approves it in 4s/);
    expect(status.events.find((e) => e.kind === 'admitted')?.detail).toMatch(/detected at .* \(the RTO clock starts there\)/);
    // Two standbys: the one holding the most WAL (then configured order) was promoted; the other streams from it.
    const held = (result.choice?.candidates ?? []).filter((c) => c.eligible).map((c) => lsnToBigInt(c.heldLsn as string));
    expect(held).toHaveLength(2);
    const chosen = result.choice?.candidates.find((c) => c.region === result.newPrimary.region);
    expect(lsnToBigInt(chosen?.heldLsn as string)).toBe(held.reduce((a, b) => (a > b ? a : b)));
    const promoted = [db.standby, ...db.standbys].find((n) => n.region === result.newPrimary.region) as PostgresNodeConfig;
    const other = [db.standby, ...db.standbys].find((n) => n !== promoted) as PostgresNodeConfig;
    expect(result.followers).toEqual([{ region: other.region, following: true, method: expect.any(String) }]);
    const [receiver] = await sql<{ status: string; port: number }>(other, 'postgres', 'SELECT status, sender_port AS port FROM pg_stat_wal_receiver');
    expect(receiver).toEqual({ status: 'streaming', port: addressFrom(promoted, other.region).port });
    expect(await inRecovery(promoted)).toBe(false);
    expect(await inRecovery(other)).toBe(true);
    expect(await tryWrite(promoted, 'orders', 'after the automatic promotion')).toBeUndefined();
    // The measured RTO runs from the first failed probe, so it covers the threshold and the veto window.
    expect(result.rto.measuredSeconds).toBeGreaterThanOrEqual(THRESHOLD + VETO);

    // The promoted standby is the primary now: the sentinel sees the database healthy and starts nothing more.
    await expect.poll(async () => Object.values((await statusOf('orders')).views).every((v) => v.last === 'healthy'), { timeout: 20_000, interval: 250 }).toBe(true);
    await sleep((THRESHOLD + 2) * 1000);
    expect((await statusOf('orders')).declarations.filter((d) => d.workflowId !== undefined)).toHaveLength(1);
    expect(pages(sentinelId({ kind: 'database', database: 'orders' })).some((p) => p.subject.includes(`${declared.workflowId} started`) && /saw it failing|failing/.test(p.body))).toBe(true);
  });

  it('two writable nodes (the old primary restarted by hand without its fence) are paged at once, and no run is started', { timeout: 60_000 }, async () => {
    const { primary } = lab.lab.clusters('orders');
    const id = sentinelId({ kind: 'database', database: 'orders' });
    const since = new Date().toISOString();
    // Someone removes the fence and starts east's old primary: it comes back writable on its old timeline.
    rmSync(path.join(primary.dataDir, 'standby.signal'), { force: true });
    await startCluster(primary);
    try {
      await expect.poll(() => pages(id).some((p) => /TWO WRITABLE NODES seen from/.test(p.subject) && p.body.includes('Fence one now')), { timeout: 20_000, interval: 250 }).toBe(true);
      const s = await statusOf('orders');
      expect(s.declarations.filter((d) => d.workflowId !== undefined && d.trigger.declaredAt > since)).toEqual([]);
    } finally {
      await stopCluster(primary, 'kill');
      writeFileSync(path.join(primary.dataDir, 'standby.signal'), '');
    }
  });

  it('auto: a hung primary (its port accepts, nothing answers) is declared and replaced the same way, and fenced for good', { timeout: 180_000 }, async () => {
    const db = postgresDatabase(lab.loaded.config, 'catalog');
    const fault = await hangDatabase(lab.lab, lab.loaded, 'catalog');
    const declared = await declaredRun('catalog', fault.at);
    expect(Date.parse(declared.trigger.detectedAt)).toBeGreaterThanOrEqual(Date.parse(fault.at) - 50);
    expect(declared.trigger.votes.filter((v) => v.saw === 'failing').map((v) => v.detail).join(' ')).toMatch(/no answer within 800 ms|timeout/i);
    const handle = temporal.client.workflow.getHandle<typeof dbPromotion>(declared.workflowId as string);
    const result = await handle.result();
    expect(result.fence).toMatchObject({ fenced: true });
    expect(await inRecovery(db.standby)).toBe(false);
    // The hung postmaster was killed by the fence (a clean shutdown never comes): nothing is left to wake up writable.
    expect(isAlive(fault.pid)).toBe(false);
    expect(existsSync(path.join(lab.lab.clusters('catalog').primary.dataDir, 'standby.signal'))).toBe(true);
    expect(continueHung(lab.lab, lab.loaded)).toEqual([]);
  });

  it('auto, vetoed within the window: the run rolls back and nothing is promoted', { timeout: 180_000 }, async () => {
    const db = postgresDatabase(lab.loaded.config, 'stock');
    const fault = await killDatabase(lab.lab, lab.loaded, 'stock');
    const declared = await declaredRun('stock', fault.at);
    const handle = temporal.client.workflow.getHandle<typeof dbPromotion>(declared.workflowId as string);
    await waitForStatus(handle, gateWaiting('promote'), 'the promote gate in its veto window', 60_000);
    // A commander is not an approver: the veto is an approver's rejection.
    await expect(vetoRun(temporal.client, lab.loaded, { workflowId: handle.workflowId, as: 'alice', reason: 'not mine to stop' })).rejects.toThrow(/alice/);
    const vetoed = await vetoRun(temporal.client, lab.loaded, { workflowId: handle.workflowId, as: 'bob', reason: 'the primary is only being restarted' });
    expect(vetoed).toMatchObject({ gate: 'promote', state: 'rejected', decidedBy: 'bob' });
    const failure = await failureOf(handle);
    expect(failure.type).toBe(FailureType.GateRejected);
    expect(failure.message).toMatch(/rejected by bob: veto: the primary is only being restarted/);
    expect(await inRecovery(db.standby)).toBe(true);
    expect((await handle.query(statusQuery)).steps.find((s) => s.id === 'promote')?.state).toBe('pending');
    // The primary is still down, the quorum still sees it: a veto is not overruled by the next declaration.
    await sleep((THRESHOLD + 3) * 1000);
    const after = await statusOf('stock');
    expect(after.declarations.filter((d) => d.workflowId !== undefined)).toHaveLength(1);
    expect(after.state).toBe('holding');
    expect(after.holding).toMatch(new RegExp(`${handle.workflowId} was started for this failure .*no other run is started automatically until a majority of regions sees database stock healthy again`));
    expect(await inRecovery(db.standby)).toBe(true);
  });

  it('confirm: the run waits for a person at the promote gate, and the on-call is paged with the votes', { timeout: 180_000 }, async () => {
    const db = postgresDatabase(lab.loaded.config, 'billing');
    const fault = await killDatabase(lab.lab, lab.loaded, 'billing');
    const declared = await declaredRun('billing', fault.at);
    const handle = temporal.client.workflow.getHandle<typeof dbPromotion>(declared.workflowId as string);
    const waiting = await waitForStatus(handle, gateWaiting('promote'), 'the promote gate', 60_000);
    expect(waiting.events.find((e) => e.kind === 'gate-opened')?.detail).toMatch(/Declared by sentinel:db:billing/);
    expect(waiting.events.find((e) => e.kind === 'gate-opened')?.detail).not.toMatch(/quorum approves/);
    // Well past where auto would have decided, it still waits.
    await sleep((VETO + 3) * 1000);
    expect((await handle.query(statusQuery)).gates.find((g) => g.id === 'promote')?.state).toBe('waiting');
    expect(await inRecovery(db.standby)).toBe(true);
    const paged = pages(sentinelId({ kind: 'database', database: 'billing' }));
    expect(paged.some((p) => p.subject.includes(`${declared.workflowId} started`) && p.body.includes('Its gates wait for you') && /east/.test(p.body))).toBe(true);
    // The sentinel started this run: it may not approve it, and a person does.
    await decideGate(temporal.client, lab.loaded, { workflowId: handle.workflowId, gate: 'promote', as: 'bob', decision: 'approve', comment: 'billing primary is gone' });
    await handle.result();
    expect(await inRecovery(db.standby)).toBe(false);
  });

  it('a sentinel started by hand with declarations of its own vouches for nothing: only its own continue-as-new carries state', { timeout: 60_000 }, async () => {
    const id = sentinelId({ kind: 'database', database: 'stock' });
    await stopSentinels(temporal.client, lab.loaded, 'erin', 'the attack', ['stock']);
    await sentinelOf('stock').result();
    const forged = {
      sentinel: id,
      target: { kind: 'database' as const, database: 'stock' },
      declaredAt: new Date().toISOString(),
      detectedAt: new Date(Date.now() - 60_000).toISOString(),
      needed: 2,
      votes: [{ region: 'east', saw: 'failing' as const }, { region: 'west', saw: 'failing' as const }, { region: 'central', saw: 'failing' as const }],
      policy: 'auto' as const,
    };
    const longAgo = new Date(Date.now() - 3_600_000).toISOString();
    const views = Object.fromEntries(['east', 'west', 'central'].map((region) => [region, { region, last: 'failing', failingSince: longAgo, lastProbeAt: new Date().toISOString(), failures: 99 }]));
    await temporal.client.workflow.start('sentinel', {
      taskQueue: lab.loaded.config.temporal.taskQueue,
      workflowId: id,
      args: [{ target: forged.target, carried: { views, declarations: [{ trigger: forged, declaration: 'forged-1' }], rounds: 0, startedAt: longAgo } }],
    });
    await expect.poll(async () => (await statusOf('stock')).rounds, { timeout: 15_000, interval: 250 }).toBeGreaterThan(0);
    const s = await statusOf('stock');
    expect(s.declarations).toEqual([]);
    expect(Object.values(s.views).some((v) => v.failures === 99)).toBe(false);
    const started = await startRun(temporal.client, lab.loaded, { runbook: 'db-promotion', params: ['database=stock', 'mode=unplanned'], as: 'sentinel', drill: false, trigger: { ...forged, declaration: 'forged-1' }, id: `db-promotion:stock:forged-carried-${process.pid}` });
    const failure = await failureOf(temporal.client.workflow.getHandle(started.workflowId));
    expect(failure.type).toBe(FailureType.RunRefused);
    expect(failure.message).toMatch(/the sentinel has no declaration forged-1/);
  });
});
