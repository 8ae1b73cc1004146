/**
 * db-promotion, database-backup and backup-restore-test, unchanged, on Cloud
 * SQL databases: the worker's real `@google-cloud/sql` clients talk REST to a
 * local stand-in of the Cloud SQL Admin API (test support), which records
 * what it received; the runbooks wait for each Operation to be DONE.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decideGate, startRun } from '../../cli/runs';
import { UsageError } from '../../cli/start';
import type { BackupRestoreTestResult, DatabaseBackupResult } from '../../contract/backup';
import type { DbPromotionResult } from '../../contract/db-promotion';
import { createTestLab, type TestLab } from '../helpers/lab';
import { gateWaiting, startTestTemporal, waitForStatus, type TestTemporal } from '../helpers/temporal';
import { startCloudSqlStandIn, type CloudSqlStandIn } from '../support/cloudsql-standin';

process.env.METADATA_SERVER_DETECTION = 'none';

const PROJECT = 'lifeboat-lab-db';
let standIn: CloudSqlStandIn;
let lab: TestLab;
let temporal: TestTemporal;
let counter = 0;

const cloudSql = (db: string, promotion: 'switchover' | 'promote-replica', url: string) => ({
  provider: 'cloudsql',
  project: PROJECT,
  primary: { instance: `${db}-primary`, region: 'us-east1' },
  replica: { instance: `${db}-replica`, region: 'us-west1' },
  stagingInstance: `${db}-staging`,
  promotion,
  apiEndpoint: url,
  auth: 'none',
  operationPollMs: 50,
  rpoTargetSeconds: 60,
  backup: { category: 'managed' },
});

beforeAll(async () => {
  const instances = ['orders', 'users'].flatMap((db) => [
    { name: `${db}-primary`, region: 'us-east1' },
    { name: `${db}-replica`, region: 'us-west1', replicaOf: `${db}-primary` },
    { name: `${db}-staging`, region: 'us-west1', activationPolicy: 'NEVER' as const },
  ]);
  standIn = await startCloudSqlStandIn({ project: PROJECT, instances });
  lab = await createTestLab('cloudsql', {
    databases: [],
    extra: {
      databases: { orders: cloudSql('orders', 'switchover', standIn.url), users: cloudSql('users', 'promote-replica', standIn.url) },
      // Cloud SQL keeps its own backups: the S3 storage is configured but unused by these databases.
      backups: { storage: { endpoint: 'http://s3.invalid', buckets: { 'us-east1': 'backups-east', 'us-west1': 'backups-west' } }, categories: { managed: { rpoSeconds: 86400, restoreTargetSeconds: 600 } } },
    },
  });
  temporal = await startTestTemporal(lab.loaded);
});

afterAll(async () => {
  await temporal?.close();
  await lab?.destroy();
  await standIn?.close();
});

const calls = (method: string, suffix: string) => standIn.requests.filter((r) => r.method === method && r.path.endsWith(suffix));

async function promote(database: string, mode: 'planned' | 'unplanned'): Promise<DbPromotionResult> {
  const started = await startRun(temporal.client, lab.loaded, { runbook: 'db-promotion', params: [`database=${database}`, `mode=${mode}`], as: 'alice', drill: true, id: `cloudsql-${database}-${++counter}` });
  const handle = temporal.client.workflow.getHandle(started.workflowId);
  await waitForStatus(handle, gateWaiting('promote'), 'gate promote');
  await decideGate(temporal.client, lab.loaded, { workflowId: started.workflowId, gate: 'promote', as: 'bob', decision: 'approve' });
  return handle.result();
}

describe('Cloud SQL through the same runbooks', () => {
  it('a planned db-promotion calls instances.switchover on the replica and waits for the Operation to be DONE', async () => {
    const result = await promote('orders', 'planned');
    const switchovers = calls('POST', `/v1/projects/${PROJECT}/instances/orders-replica/switchover`);
    expect(switchovers).toHaveLength(1);
    // The runbook waited: the operation was polled until DONE (PENDING, RUNNING, DONE).
    const op = standIn.requests.filter((r) => r.method === 'GET' && r.path.startsWith(`/v1/projects/${PROJECT}/operations/`));
    expect(op.length).toBeGreaterThanOrEqual(3);
    expect(standIn.instances.get('orders-replica')?.instanceType).toBe('CLOUD_SQL_INSTANCE');
    expect(result.newPrimary.region).toBe('us-west1');
    expect(result.alreadyPromoted).toBe(false);
  });

  it('an unplanned db-promotion calls instances.promoteReplica (failover=false); planned mode with promote-replica is refused', async () => {
    await expect(startRun(temporal.client, lab.loaded, { runbook: 'db-promotion', params: ['database=users', 'mode=planned'], as: 'alice', drill: true })).rejects.toThrow(UsageError);
    const result = await promote('users', 'unplanned');
    const promotes = calls('POST', '/instances/users-replica/promoteReplica');
    expect(promotes).toHaveLength(1);
    expect(promotes[0]?.query).toMatchObject({ failover: 'false' });
    expect(standIn.instances.get('users-replica')?.instanceType).toBe('CLOUD_SQL_INSTANCE');
    expect(result.rpo.method).toMatch(/Cloud SQL/);
  });

  it('database-backup inserts an on-demand backup run on the current primary; backup-restore-test restores it into the staging instance and stops it after', async () => {
    // The first test switched orders over: orders-replica is the primary now, and backups follow it.
    const backupRun = await startRun(temporal.client, lab.loaded, { runbook: 'database-backup', params: ['database=orders'], as: 'alice', drill: false, id: `cloudsql-backup-${++counter}` });
    const backup: DatabaseBackupResult = await temporal.client.workflow.getHandle(backupRun.workflowId).result();
    const inserts = calls('POST', '/instances/orders-replica/backupRuns');
    expect(inserts).toHaveLength(1);
    expect(inserts[0]?.body).toEqual({ description: `lifeboat:${backup.backupId}` });
    expect(backup.manifest.artifact.kind).toBe('cloudsql-backup-run');
    const backupRunId = backup.manifest.artifact.kind === 'cloudsql-backup-run' ? backup.manifest.artifact.backupRunId : '';

    const testRun = await startRun(temporal.client, lab.loaded, { runbook: 'backup-restore-test', params: ['database=orders'], as: 'alice', drill: true, id: `cloudsql-restore-${++counter}` });
    const result: BackupRestoreTestResult = await temporal.client.workflow.getHandle(testRun.workflowId).result();
    expect(result.backupId).toBe(backup.backupId);
    const restores = calls('POST', '/instances/orders-staging/restoreBackup');
    expect(restores).toHaveLength(1);
    expect(restores[0]?.body).toMatchObject({ restoreBackupContext: { backupRunId, instanceId: 'orders-replica', project: PROJECT } });
    // Started for the test (ALWAYS), stopped by the cleanup (NEVER): activationPolicy 1 then 2 on the wire.
    const patches = calls('PATCH', '/instances/orders-staging').map((r) => (r.body as { settings?: { activationPolicy?: number } }).settings?.activationPolicy);
    expect(patches).toEqual([1, 2]);
    expect(standIn.instances.get('orders-staging')?.activationPolicy).toBe('NEVER');
    expect(standIn.instances.get('orders-staging')?.restoredFrom).toMatchObject({ backupRunId, instanceId: 'orders-replica' });
  });
});
