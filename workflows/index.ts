/** Workflow bundle entry: every runbook workflow, by its workflow type name. */
export { dbPromotion } from './db-promotion';
export { regionalEvacuation } from './regional-evacuation';
export { failback } from './failback';
export { databaseBackup } from './database-backup';
export { backupRestoreTest } from './backup-restore-test';
export { targetHold } from './target-hold';
export { returnWatch } from './return-watch';
export { evidenceKeeper } from './evidence-keeper';
export { pager } from './pager';
export { sentinel } from './sentinel';
