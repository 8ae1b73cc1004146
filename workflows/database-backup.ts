/**
 * Runbook `database-backup`: a dump in one snapshot with its manifest, a copy
 * in a second region verified by re-reading it, then retention. See
 * runbooks/database-backup.md for the procedure.
 */
import { workflowInfo } from '@temporalio/workflow';
import type { BackupActivities } from '../activities/backup';
import {
  backupIdFor,
  databaseBackupRunbook,
  type DatabaseBackupInput,
  type DatabaseBackupResult,
} from '../contract/backup';
import { FailureType } from '../contract/failures';
import { RunbookRun } from './kernel/runbook-run';
import { call } from './call';
import { backupProfiles, proxyFor, undoProfile } from './options';

/** A dump streams for as long as the database is big; heartbeats carry the bytes uploaded, so a lost worker is noticed in a minute. */
const { transfer: transferOptions, short: shortOptions } = backupProfiles([FailureType.UnknownDatabase, FailureType.BackupNotFound]);

const backups = proxyFor<BackupActivities>();

export async function databaseBackup(input: DatabaseBackupInput): Promise<DatabaseBackupResult> {
  const { database, policy } = input;
  const run = RunbookRun.of(databaseBackupRunbook, input, { target: database, rpoTargetSeconds: 0, gates: {}, announceFailure: true });
  const { workflowId, runId, runStartTime } = workflowInfo();
  // Sorts by time; the run id's random tail keeps two backups in one second apart (its head is a timestamp). Deterministic on replay.
  const backupId = backupIdFor(database, runStartTime.toISOString(), runId.slice(-8));
  const undoOptions = undoProfile(shortOptions, policy.compensationAttempts);

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
