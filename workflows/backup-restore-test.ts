/**
 * Runbook `backup-restore-test`: "a backup that was never restored is not a
 * backup". Checks the artifact against its manifest, restores it into a
 * scratch target made for this run, verifies the data, and always drops the
 * scratch target (a compensation, so also on failure and on cancel). A failed
 * test tells the incident channel and pages the on-call with the reason.
 */
import { proxyActivities, workflowInfo, type ActivityOptions } from '@temporalio/workflow';
import type { BackupActivities } from '../activities/backup';
import {
  backupRestoreTestPlan,
  BACKUP_RESTORE_TEST_RUNBOOK,
  type BackupRestoreTestInput,
  type BackupRestoreTestResult,
} from '../contract/backup';
import { FailureType } from '../contract/failures';
import { RunbookRun } from './kernel/runbook-run';
import { call } from './call';

const nonRetryableErrorTypes = [FailureType.UnknownDatabase, FailureType.BackupNotFound, FailureType.BackupCorrupt, FailureType.RestoreMismatch];

const shortOptions = {
  startToCloseTimeout: '5 minutes',
  retry: { initialInterval: '2 seconds', maximumAttempts: 5, nonRetryableErrorTypes },
} as const satisfies ActivityOptions;

/** Reading or restoring a whole backup: heartbeats carry the bytes, and deliver a cancel to the activity. */
const transferOptions = {
  startToCloseTimeout: '6 hours',
  heartbeatTimeout: '1 minute',
  retry: { initialInterval: '10 seconds', backoffCoefficient: 2, maximumAttempts: 3, nonRetryableErrorTypes },
} as const satisfies ActivityOptions;

const backups = proxyActivities<BackupActivities>(shortOptions);

export async function backupRestoreTest(input: BackupRestoreTestInput): Promise<BackupRestoreTestResult> {
  const { database, policy } = input;
  const run = new RunbookRun({
    runbook: BACKUP_RESTORE_TEST_RUNBOOK,
    target: database,
    plan: backupRestoreTestPlan,
    context: input.run,
    rto: policy.rto,
    rpoTargetSeconds: 0,
    // The restore itself is held to the data category's recovery-time target.
    stepBudgets: { ...policy.stepBudgets, restore: policy.restoreTargetSeconds },
    gates: {},
    announceFailure: true,
    input,
  });
  const { workflowId, runId, runStartTime } = workflowInfo();
  const runKey = `${database}_${runId.slice(-12)}`;
  const undoOptions = { ...shortOptions, retry: { ...shortOptions.retry, maximumAttempts: policy.compensationAttempts } };
  const dropScratch = () =>
    call(backups.dropScratchTarget, undoOptions, `drop the scratch restore target of ${database}`, { database, runKey });

  return run.execute(async () => {
    const manifest = await run.step('select', () =>
      call(backups.selectBackup, shortOptions, input.backupId ? `select backup ${input.backupId}` : `select the newest verified backup of ${database}`, { database, backupId: input.backupId }),
    );
    const artifact = await run.step('verify-artifact', () =>
      call(backups.verifyBackupArtifact, transferOptions, `verify the SHA-256 of ${manifest.backupId}`, { database, backupId: manifest.backupId }),
    );
    // Registered before it runs: a scratch database created by a lost attempt is dropped too.
    const target = await run.step(
      'create-scratch',
      () => call(backups.createScratchTarget, shortOptions, `create the scratch restore target ${runKey}`, { database, runKey }),
      { undoIfInterrupted: dropScratch, compensate: () => dropScratch },
    );
    const restore = await run.step('restore', () =>
      call(backups.restoreBackup, transferOptions, `restore ${manifest.backupId} into ${target.name}`, { database, backupId: manifest.backupId, target }),
    );
    const verification = await run.step('verify-data', () =>
      call(backups.verifyRestoredData, shortOptions, `verify ${manifest.tables?.length ?? 0} tables and ${policy.sampleQueries.length} sample queries`, { database, backupId: manifest.backupId, target, samples: policy.sampleQueries }),
    );
    await run.step('cleanup', dropScratch);
    const met = restore.durationSeconds <= policy.restoreTargetSeconds;
    const result: BackupRestoreTestResult = {
      workflowId,
      database,
      backupId: manifest.backupId,
      backupAgeSeconds: Math.max(0, (runStartTime.getTime() - Date.parse(manifest.finishedAt)) / 1000),
      artifact,
      restore,
      verification,
      restoreTarget: { targetSeconds: policy.restoreTargetSeconds, measuredSeconds: restore.durationSeconds, met },
    };
    await run.announce({
      audience: 'incident',
      kind: 'final',
      severity: met ? 'info' : 'warning',
      subject: `restore test of ${database} passed${met ? '' : ' (restore target EXCEEDED)'}`,
      body: `Backup ${manifest.backupId} restored in ${restore.durationSeconds.toFixed(1)}s against a target of ${policy.restoreTargetSeconds}s; ` +
        `${verification.tables.length} tables and ${verification.samples.length} sample queries matched.`,
    });
    return result;
  });
}
