/**
 * Runbook `database-backup`: a dump in one snapshot with its manifest, a copy
 * in a second region verified by re-reading it, then retention. See
 * runbooks/database-backup.md for the procedure.
 */
import { proxyActivities, workflowInfo, type ActivityOptions } from '@temporalio/workflow';
import type { BackupActivities } from '../activities/backup';
import {
  backupIdFor,
  databaseBackupPlan,
  DATABASE_BACKUP_RUNBOOK,
  type DatabaseBackupInput,
  type DatabaseBackupResult,
} from '../contract/backup';
import { FailureType } from '../contract/failures';
import { RunbookRun } from './kernel/runbook-run';
import { call } from './call';

const nonRetryableErrorTypes = [FailureType.UnknownDatabase, FailureType.BackupNotFound];

/** A dump streams for as long as the database is big; heartbeats carry the bytes uploaded, so a lost worker is noticed in a minute. */
const transferOptions = {
  startToCloseTimeout: '6 hours',
  heartbeatTimeout: '1 minute',
  retry: { initialInterval: '10 seconds', backoffCoefficient: 2, maximumAttempts: 3, nonRetryableErrorTypes },
} as const satisfies ActivityOptions;

const shortOptions = {
  startToCloseTimeout: '5 minutes',
  retry: { initialInterval: '2 seconds', maximumAttempts: 5, nonRetryableErrorTypes },
} as const satisfies ActivityOptions;

const backups = proxyActivities<BackupActivities>(shortOptions);

export async function databaseBackup(input: DatabaseBackupInput): Promise<DatabaseBackupResult> {
  const { database, policy } = input;
  const run = new RunbookRun({
    runbook: DATABASE_BACKUP_RUNBOOK,
    target: database,
    plan: databaseBackupPlan,
    context: input.run,
    rto: policy.rto,
    rpoTargetSeconds: 0,
    stepBudgets: policy.stepBudgets,
    gates: {},
    announceFailure: true,
    input,
  });
  const { workflowId, runId, runStartTime } = workflowInfo();
  // Sorts by time; the run id's random tail keeps two backups in one second apart (its head is a timestamp). Deterministic on replay.
  const backupId = backupIdFor(database, runStartTime.toISOString(), runId.slice(-8));
  const undoOptions = { ...shortOptions, retry: { ...shortOptions.retry, maximumAttempts: policy.compensationAttempts } };

  return run.execute(async () => {
    const manifest = await run.step('dump', () =>
      call(backups.takeBackup, transferOptions, `dump ${database} (one snapshot) to object storage as ${backupId}`, { database, backupId }),
    );
    const copies = await run.step(
      'copy',
      () => call(backups.replicateBackup, transferOptions, `copy ${backupId} to the other region and re-read its checksum`, { database, backupId }),
      // A copy can half-apply (uploaded, not verified): its undo is registered before it runs.
      { undoIfInterrupted: () => call(backups.deleteBackupCopies, undoOptions, `undo: delete unverified copies of ${backupId}`, { database, backupId }) },
    );
    await run.step('mark-verified', () =>
      call(backups.markBackupVerified, shortOptions, `mark ${backupId} verified in ${copies.length + 1} locations`, { database, backupId }),
    );
    const retention = await run.step('retention', () =>
      call(backups.applyRetention, shortOptions, `retention: keep the newest ${policy.keepVerified} verified backups of ${database}`, { database, keepVerified: policy.keepVerified }),
    );
    const durationSeconds = (Date.parse(manifest.finishedAt) - Date.parse(manifest.startedAt)) / 1000;
    await run.announce({
      audience: 'incident',
      kind: 'final',
      severity: 'info',
      subject: `backup ${backupId} of ${database} verified`,
      body: `${manifest.locations.length + copies.filter((c) => c.verified).length} verified copies; ${manifest.tables?.length ?? 0} tables fingerprinted; retention deleted ${retention.deleted.length}.`,
    });
    return { workflowId, database, backupId, manifest, copies, retention, durationSeconds };
  });
}
