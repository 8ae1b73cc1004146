/** The CLI side of backup-restore-test: `database=NAME [backup=ID]` becomes a restore of that backup into a scratch target. */
import { backupRestoreTestRunbook } from '../../contract/backup';
import { backedUpDatabase } from './backups';
import { backupChecks } from './checks';
import { cliRunbook, commonStart, startEnvelope, stepBudgets, UsageError } from './common';

export const backupRestoreTestCli = cliRunbook({
  definition: backupRestoreTestRunbook,
  plan(loaded, request) {
    const { config } = loaded;
    const { initiator, context, params } = commonStart(loaded, request, ['database', 'backup']);
    const { database, backup, category } = backedUpDatabase(loaded, backupRestoreTestRunbook.name, params.database);
    if (params.backup !== undefined && !/^[\w.:-]{1,200}$/.test(params.backup)) throw new UsageError(`backup must be a backup id such as ${database}-20261123T030000Z-1a2b3c4d, not '${params.backup}'`);
    const runbook = config.runbooks['backup-restore-test'];
    return {
      ...startEnvelope(backupRestoreTestRunbook, request, database, context.detectedAt),
      input: {
        database,
        backupId: params.backup,
        run: context,
        policy: {
          rto: runbook.rto,
          restoreTargetSeconds: category.restoreTargetSeconds,
          sampleQueries: backup.sampleQueries,
          stepBudgets: stepBudgets(runbook.steps),
          compensationAttempts: runbook.compensationAttempts,
        },
      },
      targets: [database],
      staticSummary: `${request.drill ? 'DRILL: ' : ''}restore test of ${database}: ${params.backup ?? 'newest verified backup'}`,
      staticDetails: [
        `**Runbook** backup-restore-test, **database** ${database}, **backup** ${params.backup ?? 'newest verified'}`,
        `**Restore target** ${category.restoreTargetSeconds}s (category ${backup.category}), **sample queries** ${backup.sampleQueries.length}`,
        `**Initiator** ${initiator}`,
      ].join('\n'),
    };
  },
  preflight: (readers, targets) => backupChecks(readers, targets, { needVerified: true }),
  policy: (loaded) => ({ ...loaded.config.runbooks['backup-restore-test'], gates: {} }),
});
