/** The CLI side of database-backup: `database=NAME` becomes a verified backup of that database in two locations. */
import { databaseBackupRunbook } from '../../contract/backup';
import { backedUpDatabase } from './backups';
import { backupChecks } from './checks';
import { cliRunbook, commonStart, startEnvelope, stepBudgets } from './common';

export const databaseBackupCli = cliRunbook({
  definition: databaseBackupRunbook,
  plan(loaded, request) {
    const { config } = loaded;
    const { initiator, context, params } = commonStart(loaded, request, ['database']);
    const { database, backup } = backedUpDatabase(loaded, databaseBackupRunbook.name, params.database);
    const runbook = config.runbooks['database-backup'];
    return {
      ...startEnvelope(databaseBackupRunbook, request, database, context.detectedAt),
      input: {
        database,
        run: context,
        policy: { rto: runbook.rto, keepVerified: config.backups?.keepVerified ?? 1, stepBudgets: stepBudgets(runbook.steps), compensationAttempts: runbook.compensationAttempts },
      },
      targets: [database],
      staticSummary: `${request.drill ? 'DRILL: ' : ''}back up ${database} (category ${backup.category}) to ${Object.values(config.backups?.storage.buckets ?? {}).join(' + ')}`,
      staticDetails: [
        `**Runbook** database-backup, **database** ${database}, **category** ${backup.category}`,
        `**Initiator** ${initiator}, **retention** newest ${config.backups?.keepVerified ?? 1} verified backups`,
      ].join('\n'),
    };
  },
  preflight: (readers, targets) => backupChecks(readers, targets, { needVerified: false }),
  policy: (loaded) => ({ ...loaded.config.runbooks['database-backup'], gates: {} }),
});
