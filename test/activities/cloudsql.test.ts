/**
 * The Cloud SQL provider through the real `@google-cloud/sql` v1 clients (HTTP/1.1
 * REST mode) against a local stand-in of the Cloud SQL Admin API: the assertions
 * are on what the official client put on the wire and on the state it changed.
 */
import { protos } from '@google-cloud/sql';
import { ApplicationFailure } from '@temporalio/common';
import { PassThroughClient } from 'google-auth-library';
import { afterEach, beforeEach, describe, expect, expectTypeOf, it } from 'vitest';
import { createCloudSqlClients, createCloudSqlProvider, type CloudSqlClients, type CloudSqlDatabaseSpec } from '../../activities/cloudsql';
import type { CloudSqlDatabaseConfig } from '../../config/schema';
import type { ScratchTarget } from '../../contract/backup';
import { FailureType } from '../../contract/failures';
import { startCloudSqlStandIn, type CloudSqlStandIn, type RecordedRequest, type StandInOptions } from '../support/cloudsql-standin';

// No credentials and no metadata server: google-auth-library must never go looking for either.
process.env.METADATA_SERVER_DETECTION = 'none';

const PROJECT = 'lifeboat-test';
const BASE = `/v1/projects/${PROJECT}`;
const sql = protos.google.cloud.sql.v1;

const spec: CloudSqlDatabaseSpec = {
  provider: 'cloudsql',
  project: PROJECT,
  primary: { instance: 'orders-primary', region: 'us-east1' },
  replica: { instance: 'orders-replica', region: 'us-west1' },
  stagingInstance: 'orders-staging',
  rpoTargetSeconds: 60,
  tier: 1,
  operationPollMs: 10,
  operationTimeoutSeconds: 30,
};

const seeds: StandInOptions['instances'] = [
  { name: 'orders-primary', region: 'us-east1', ipAddress: '10.20.0.10' },
  { name: 'orders-replica', region: 'us-west1', replicaOf: 'orders-primary', ipAddress: '10.30.0.10' },
  { name: 'orders-staging', region: 'us-west1', activationPolicy: 'NEVER', ipAddress: '10.30.0.20' },
];

const noProgress = () => undefined;
const never = new AbortController().signal;

let standIn: CloudSqlStandIn;
let clients: CloudSqlClients;

async function start(opts: Partial<StandInOptions> = {}): Promise<void> {
  standIn = await startCloudSqlStandIn({ project: PROJECT, instances: seeds, ...opts });
  // Any metadata-server probe would land on the stand-in and be recorded.
  process.env.GCE_METADATA_HOST = `127.0.0.1:${standIn.port}`;
  clients = createCloudSqlClients({ apiEndpoint: '127.0.0.1', port: standIn.port, protocol: 'http', fallback: true, authClient: new PassThroughClient() });
}

beforeEach(async () => {
  await start();
});

afterEach(async () => {
  await clients.close();
  await standIn.close();
  delete process.env.GCE_METADATA_HOST;
});

const sent = (method: string, path: string): RecordedRequest[] => standIn.requests.filter((r) => r.method === method && r.path === path);
const operationPolls = (): Map<string, number> => {
  const polls = new Map<string, number>();
  for (const r of standIn.requests) {
    const m = new RegExp(`^${BASE}/operations/([^/]+)$`).exec(r.path);
    if (r.method === 'GET' && m?.[1]) polls.set(m[1], (polls.get(m[1]) ?? 0) + 1);
  }
  return polls;
};
const instance = (name: string) => {
  const i = standIn.instances.get(name);
  if (!i) throw new Error(`stand-in has no instance ${name}`);
  return i;
};

async function failureOf(promise: Promise<unknown>): Promise<ApplicationFailure> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof ApplicationFailure)) throw new Error(`expected an ApplicationFailure, got ${String(err)}`);
  return err;
}

describe('Cloud SQL provider through @google-cloud/sql (REST) against the stand-in', () => {
  it('inspects the pair through instances.get, sending no credentials and probing no metadata server', async () => {
    const provider = createCloudSqlProvider('orders', spec, clients);
    const inspection = await provider.inspect();

    expect(inspection.standby).toMatchObject({ region: 'us-west1', host: '10.30.0.10', port: 5432, reachable: true, inRecovery: true, streaming: true });
    expect(inspection.primary).toMatchObject({ region: 'us-east1', host: '10.20.0.10', port: 5432, reachable: true });
    expect(inspection.lagBytes).toBeUndefined();
    expect(sent('GET', `${BASE}/instances/orders-primary`)).toHaveLength(1);
    expect(sent('GET', `${BASE}/instances/orders-replica`)).toHaveLength(1);

    for (const r of standIn.requests) {
      expect(r.headers.authorization).toBeUndefined();
      expect(r.headers['x-goog-api-client']).toMatch(/gapic\/0\.32\.0 .*rest\//);
      expect(r.query.$alt).toBe('json;enum-encoding=int');
    }
    expect(standIn.requests.filter((r) => r.path.startsWith('/computeMetadata'))).toEqual([]);

    // The API names the primary `project:instance`; a bare name is accepted too, another primary is not.
    instance('orders-replica').masterInstanceName = 'orders-primary';
    expect((await provider.inspect()).standby.streaming).toBe(true);
    instance('orders-replica').masterInstanceName = `${PROJECT}:billing-primary`;
    expect((await provider.inspect()).standby).toMatchObject({ inRecovery: true, streaming: false, reachable: true });
    instance('orders-replica').masterInstanceName = `${PROJECT}:orders-primary`;

    instance('orders-replica').state = 'MAINTENANCE';
    const degraded = await provider.inspect();
    expect(degraded.standby).toMatchObject({ reachable: false, inRecovery: true, streaming: false });
    expect(degraded.standby.error).toContain('MAINTENANCE');
  });

  it('promotes with promoteReplica (failover=false), waits until the operation is DONE, then is idempotent', async () => {
    const provider = createCloudSqlProvider('orders', spec, clients);
    const outcome = await provider.promoteStandby();

    expect(outcome).toMatchObject({ alreadyPromoted: false, timeline: 0, newPrimary: { region: 'us-west1', host: '10.30.0.10', port: 5432 } });
    const promote = sent('POST', `${BASE}/instances/orders-replica/promoteReplica`);
    expect(promote).toHaveLength(1);
    expect(promote[0]?.query.failover).toBe('false');
    // PENDING → RUNNING → DONE: the provider polled the operation until DONE, and no further.
    const polls = [...operationPolls().values()];
    expect(polls).toEqual([3]);
    const promoteAt = standIn.requests.indexOf(promote[0] as RecordedRequest);
    const lastPoll = standIn.requests.findLastIndex((r) => r.path.startsWith(`${BASE}/operations/`));
    expect(lastPoll).toBeGreaterThan(promoteAt);
    expect(instance('orders-replica')).toMatchObject({ instanceType: 'CLOUD_SQL_INSTANCE', masterInstanceName: undefined });
    expect(instance('orders-primary').replicaNames).not.toContain('orders-replica');
    expect(Date.parse(outcome.promotedAt)).not.toBeNaN();

    const check = await provider.verifyWrite('run-1');
    expect(check).toMatchObject({ ok: true, node: { host: '10.30.0.10' } });

    const again = await provider.promoteStandby();
    expect(again.alreadyPromoted).toBe(true);
    expect(sent('POST', `${BASE}/instances/orders-replica/promoteReplica`)).toHaveLength(1);
    expect((await provider.inspect()).standby.inRecovery).toBe(false);
  });

  it('waits on a promotion an earlier attempt started instead of promoting again', async () => {
    const [started] = await clients.instances.promoteReplica({ project: PROJECT, instance: 'orders-replica', failover: false });
    const provider = createCloudSqlProvider('orders', spec, clients);
    const outcome = await provider.promoteStandby();

    expect(outcome.alreadyPromoted).toBe(false);
    expect(sent('POST', `${BASE}/instances/orders-replica/promoteReplica`)).toHaveLength(1);
    expect(sent('GET', `${BASE}/operations`)[0]?.query.instance).toBe('orders-replica');
    expect(operationPolls().get(started.name ?? '')).toBe(3);
    expect(instance('orders-replica').instanceType).toBe('CLOUD_SQL_INSTANCE');
  });

  it('switches over: the replica becomes the primary and the old primary its replica', async () => {
    await clients.close();
    await standIn.close();
    await start({ pollsUntilDone: 5 });
    const provider = createCloudSqlProvider('orders', { ...spec, promotion: 'switchover' }, clients);

    const fence = await provider.fencePrimary(true);
    expect(fence).toMatchObject({ fenced: false });
    expect(fence.fenced === false && fence.reason).toContain('switchover');
    expect(standIn.requests).toEqual([]); // nothing to fence through the Admin API

    const outcome = await provider.promoteStandby();
    expect(outcome.alreadyPromoted).toBe(false);
    expect(sent('POST', `${BASE}/instances/orders-replica/switchover`)).toHaveLength(1);
    expect(sent('POST', `${BASE}/instances/orders-replica/promoteReplica`)).toHaveLength(0);
    expect([...operationPolls().values()]).toEqual([5]);
    expect(instance('orders-replica')).toMatchObject({ instanceType: 'CLOUD_SQL_INSTANCE', replicaNames: ['orders-primary'] });
    expect(instance('orders-primary')).toMatchObject({ instanceType: 'READ_REPLICA_INSTANCE', masterInstanceName: `${PROJECT}:orders-replica` });

    // Failback orientation: the old primary is now a streaming replica of the promoted one.
    const back = await provider.reversed().inspect();
    expect(back.standby).toMatchObject({ region: 'us-east1', inRecovery: true, streaming: true, reachable: true });
  });

  it("surfaces a failed operation's Google message as a non-retryable ProviderOperationFailed", async () => {
    standIn.failNext('PROMOTE_REPLICA', 'The replica is not in sync with its primary.', 'REPLICA_NOT_IN_SYNC');
    const provider = createCloudSqlProvider('orders', spec, clients);

    const failure = await failureOf(provider.promoteStandby());
    expect(failure.type).toBe(FailureType.ProviderOperationFailed);
    expect(failure.nonRetryable).toBe(true);
    expect(failure.message).toContain('The replica is not in sync with its primary.');
    expect(failure.message).toContain('REPLICA_NOT_IN_SYNC');
    expect([...operationPolls().values()]).toEqual([3]);
    expect(instance('orders-replica').instanceType).toBe('READ_REPLICA_INSTANCE');
  });

  it('turns an API error into a ProviderOperationFailed that keeps its cause', async () => {
    const provider = createCloudSqlProvider('orders', { ...spec, replica: { instance: 'no-such-replica', region: 'us-west1' } }, clients);
    const inspection = await provider.inspect();
    expect(inspection.standby.reachable).toBe(false);
    expect(inspection.standby.error).toContain('does not exist');

    const failure = await failureOf(provider.promoteStandby());
    expect(failure.type).toBe(FailureType.ProviderOperationFailed);
    expect(failure.nonRetryable).toBe(true); // NOT_FOUND will not fix itself
    expect(failure.cause?.message).toContain('does not exist');
  });

  it('takes, lists, reads, verifies and deletes backup runs', async () => {
    await clients.close();
    await standIn.close();
    await start({
      maxPageSize: 2,
      backupRuns: [
        { id: '1000', instance: 'orders-primary', description: '', type: 'AUTOMATED', status: 'SUCCESSFUL', enqueuedTime: '2025-01-01T03:00:00.000Z' },
        { id: '1001', instance: 'orders-primary', description: '', type: 'AUTOMATED', status: 'FAILED', enqueuedTime: '2025-01-02T03:00:00.000Z' },
      ],
    });
    const provider = createCloudSqlProvider('orders', spec, clients);
    const backupId = 'orders-20250103T000000Z-abc123';

    const manifest = await provider.takeBackup(backupId, noProgress, never);
    const insert = sent('POST', `${BASE}/instances/orders-primary/backupRuns`);
    expect(insert).toHaveLength(1);
    expect(insert[0]?.body).toEqual({ description: `lifeboat:${backupId}` });
    expect([...operationPolls().values()]).toEqual([3]);
    const run = [...standIn.backupRuns.values()].find((r) => r.description === `lifeboat:${backupId}`);
    expect(run?.status).toBe('SUCCESSFUL');
    expect(manifest).toEqual({
      format: 'lifeboat-backup/1',
      backupId,
      database: 'orders',
      provider: 'cloudsql',
      artifact: { kind: 'cloudsql-backup-run', backupRunId: run?.id, instance: 'orders-primary' },
      startedAt: run?.startTime,
      finishedAt: run?.endTime,
      locations: [`cloudsql:${PROJECT}/orders-primary`],
    });

    const listing = await provider.listBackups();
    expect(listing.map((b) => [b.backupId, b.verified])).toEqual([
      [backupId, true],
      ['cloudsql-1001', false],
      ['cloudsql-1000', true],
    ]);
    // Three runs, two per page: the provider followed nextPageToken.
    const lists = sent('GET', `${BASE}/instances/orders-primary/backupRuns`).slice(-2);
    expect(lists.map((r) => [r.query.maxResults, r.query.pageToken])).toEqual([
      ['100', undefined],
      ['100', '2'],
    ]);

    expect(await provider.readManifest(backupId)).toEqual(manifest);
    expect(sent('GET', `${BASE}/instances/orders-primary/backupRuns/${run?.id}`)).toHaveLength(1);
    expect(await provider.readManifest('cloudsql-1000')).toMatchObject({ backupId: 'cloudsql-1000', artifact: { backupRunId: '1000' }, startedAt: '2025-01-01T03:00:00.000Z' });

    expect(await provider.verifyArtifact(backupId, noProgress)).toMatchObject({ backupId, ok: true });
    expect(await provider.verifyArtifact('cloudsql-1001', noProgress)).toMatchObject({ ok: false, method: expect.stringContaining('FAILED') });
    expect(await provider.replicateBackup(backupId, noProgress)).toEqual([
      { location: `cloudsql:${PROJECT}/orders-primary`, verified: true, method: expect.stringContaining('Cloud SQL stores backups in its own multi-region location') },
    ]);
    const missing = await failureOf(provider.readManifest('orders-20240101T000000Z-nope'));
    expect(missing.type).toBe(FailureType.BackupNotFound);

    await provider.deleteBackup(backupId);
    expect(sent('DELETE', `${BASE}/instances/orders-primary/backupRuns/${run?.id}`)).toHaveLength(1);
    expect(standIn.backupRuns.has(run?.id ?? '')).toBe(false);
    await provider.deleteBackup(backupId); // idempotent: gone is success
    expect(standIn.requests.filter((r) => r.method === 'DELETE')).toHaveLength(1);
    expect((await provider.listBackups()).map((b) => b.backupId)).toEqual(['cloudsql-1001', 'cloudsql-1000']);
  });

  it('fails a backup whose operation fails, with Google’s message', async () => {
    standIn.failNext('BACKUP_VOLUME', 'Backup failed: the instance ran out of disk quota.');
    const provider = createCloudSqlProvider('orders', spec, clients);

    const failure = await failureOf(provider.takeBackup('orders-20250103T000000Z-fail', noProgress, never));
    expect(failure.type).toBe(FailureType.ProviderOperationFailed);
    expect(failure.message).toContain('Backup failed: the instance ran out of disk quota.');
    expect([...standIn.backupRuns.values()].map((r) => r.status)).toEqual(['FAILED']);
  });

  it('restores into the staging instance: start, restoreBackup with restoreBackupContext, verify, stop', async () => {
    const provider = createCloudSqlProvider('orders', spec, clients);
    const backupId = 'orders-20250103T000000Z-restore';
    const manifest = await provider.takeBackup(backupId, noProgress, never);
    const backupRunId = manifest.artifact.kind === 'cloudsql-backup-run' ? manifest.artifact.backupRunId : '';
    standIn.requests.length = 0;

    // RUNNABLE also describes an instance its owner stopped: a stopped staging instance is no restore.
    const stopped = await provider.verifyRestore(backupId, { kind: 'cloudsql-instance', name: 'orders-staging', createdAt: new Date().toISOString() }, []);
    expect(stopped.ok).toBe(false);
    expect(stopped.mismatches[0]).toContain('activation policy NEVER');
    standIn.requests.length = 0;

    const target = await provider.createScratch('run-1');
    expect(target).toMatchObject({ kind: 'cloudsql-instance', name: 'orders-staging', host: '10.30.0.20', port: 5432 });
    const start = sent('PATCH', `${BASE}/instances/orders-staging`);
    expect(start).toHaveLength(1);
    expect(start[0]?.body).toMatchObject({ settings: { activationPolicy: sql.Settings.SqlActivationPolicy.ALWAYS } });
    expect(instance('orders-staging').activationPolicy).toBe('ALWAYS');
    await provider.createScratch('run-1'); // already started: no second patch
    expect(sent('PATCH', `${BASE}/instances/orders-staging`)).toHaveLength(1);

    const progress: Array<Record<string, unknown>> = [];
    const restored = await provider.restoreInto(backupId, target, (d) => progress.push(d), never);
    const restore = sent('POST', `${BASE}/instances/orders-staging/restoreBackup`);
    expect(restore).toHaveLength(1);
    expect(restore[0]?.body).toEqual({
      restoreBackupContext: { kind: 'sql#restoreBackupContext', backupRunId, instanceId: 'orders-primary', project: PROJECT },
    });
    expect(instance('orders-staging').restoredFrom).toEqual({ backupRunId, instanceId: 'orders-primary', project: PROJECT });
    expect(restored).toMatchObject({ backupId, target });
    expect(restored.durationSeconds).toBeGreaterThan(0);
    expect(progress.map((p) => p.status)).toEqual(['PENDING', 'RUNNING', 'DONE']);

    const verification = await provider.verifyRestore(backupId, target, []);
    expect(verification).toMatchObject({ ok: true, tables: [], samples: [], mismatches: [] });
    const withSamples = await provider.verifyRestore(backupId, target, [{ name: 'recent orders', sql: 'SELECT 1', minRows: 1 }]);
    expect(withSamples.ok).toBe(false);
    expect(withSamples.samples).toEqual([{ name: 'recent orders', rows: 0, ok: false, error: expect.stringContaining('database connection') }]);
    expect(withSamples.mismatches[0]).toContain("sample query 'recent orders' not run");

    await provider.dropScratch('run-1');
    const patches = sent('PATCH', `${BASE}/instances/orders-staging`);
    expect(patches).toHaveLength(2);
    expect(patches[1]?.body).toMatchObject({ settings: { activationPolicy: sql.Settings.SqlActivationPolicy.NEVER } });
    expect(instance('orders-staging').activationPolicy).toBe('NEVER');
    await provider.dropScratch('run-1'); // idempotent
    expect(sent('PATCH', `${BASE}/instances/orders-staging`)).toHaveLength(2);
  });

  it('refuses to restore into anything but a staging instance outside the pair', async () => {
    const provider = createCloudSqlProvider('orders', { ...spec, stagingInstance: 'orders-replica' }, clients);
    const failure = await failureOf(provider.createScratch('run-1'));
    expect(failure.type).toBe(FailureType.NotConfigured);
    expect(failure.message).toContain('would overwrite it');

    const good = createCloudSqlProvider('orders', spec, clients);
    const elsewhere: ScratchTarget = { kind: 'cloudsql-instance', name: 'orders-primary', createdAt: new Date().toISOString() };
    const refused = await failureOf(good.restoreInto('cloudsql-1', elsewhere, noProgress, never));
    expect(refused.type).toBe(FailureType.NotConfigured);
    expect(standIn.requests.filter((r) => r.method !== 'GET')).toEqual([]);
  });

  it('says what the Admin API cannot do instead of inventing it', async () => {
    const provider = createCloudSqlProvider('orders', spec, clients);
    const rpo = await provider.measureRpo(new Date().toISOString());
    expect(rpo.measuredBytes).toBeUndefined();
    expect(rpo.measuredSeconds).toBeUndefined();
    expect(rpo.method).toContain('Cloud SQL Admin API exposes no replica lag');

    const fence = await provider.fencePrimary(false);
    expect(fence.fenced === false && fence.reason).toContain('leaves orders-primary writable');

    const rebuild = await failureOf(provider.rebuildOldPrimary());
    expect(rebuild.type).toBe(FailureType.NotConfigured);
    expect(rebuild.nonRetryable).toBe(true);
    expect(standIn.requests).toEqual([]);
  });

  it('checks credentials up front: missing ones fail the check, not the process', async () => {
    await expect(clients.checkCredentials()).resolves.toBeUndefined();

    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    const saved = process.env.GOOGLE_APPLICATION_CREDENTIALS;
    process.env.GOOGLE_APPLICATION_CREDENTIALS = '/nonexistent/lifeboat-test-credentials.json';
    const production = createCloudSqlClients();
    try {
      await expect(production.checkCredentials()).rejects.toThrow(/lifeboat-test-credentials\.json/);
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
      if (saved === undefined) delete process.env.GOOGLE_APPLICATION_CREDENTIALS;
      else process.env.GOOGLE_APPLICATION_CREDENTIALS = saved;
      await production.close();
    }
    expect(standIn.requests.filter((r) => r.path.startsWith('/computeMetadata'))).toEqual([]);
  });

  it('stand-in: clone through the client creates the destination instance at DONE', async () => {
    const [op] = await clients.instances.clone({ project: PROJECT, instance: 'orders-primary', body: { cloneContext: { destinationInstanceName: 'orders-clone' } } });
    expect(sent('POST', `${BASE}/instances/orders-primary/clone`)[0]?.body).toEqual({ cloneContext: { destinationInstanceName: 'orders-clone' } });
    expect(standIn.instances.has('orders-clone')).toBe(false);
    const statuses: unknown[] = [];
    for (let i = 0; i < 3; i++) statuses.push((await clients.operations.get({ project: PROJECT, operation: op.name ?? '' }))[0].status);
    expect(statuses).toEqual(['PENDING', 'RUNNING', 'DONE']);
    expect(instance('orders-clone')).toMatchObject({ instanceType: 'CLOUD_SQL_INSTANCE', activationPolicy: 'ALWAYS' });
  });

  it('accepts the config schema’s cloudsql entry as its spec', () => {
    expectTypeOf<CloudSqlDatabaseConfig>().toExtend<CloudSqlDatabaseSpec>();
    // The URL form of apiEndpoint (what the config holds) reaches the same stand-in over http.
    const fromUrl = createCloudSqlClients({ apiEndpoint: standIn.url, authClient: new PassThroughClient() });
    return fromUrl.instances
      .get({ project: PROJECT, instance: 'orders-primary' })
      .then(([i]) => expect(i.name).toBe('orders-primary'))
      .finally(() => fromUrl.close());
  });
});
