/**
 * Contract of the backup runbooks: `database-backup` takes a verified backup in
 * two locations, `backup-restore-test` proves one can be restored. Shared by
 * the workflows, the activities, the CLI and the audit.
 */
import type { RtoPolicy, RunContext } from './runbook';
import { defineRunbook } from './definition';
import type { RunOutcome } from './outcome';

export const DATABASE_BACKUP_RUNBOOK = 'database-backup';
export const DATABASE_BACKUP_WORKFLOW_TYPE = 'databaseBackup' as const;
export const BACKUP_RESTORE_TEST_RUNBOOK = 'backup-restore-test';
export const BACKUP_RESTORE_TEST_WORKFLOW_TYPE = 'backupRestoreTest' as const;

export const databaseBackupPlan = {
  steps: [
    { id: 'dump', title: 'Dump the database in one snapshot (pg_dump custom format, or a Cloud SQL backup run) with a manifest: SHA-256, size, per-table row counts and checksums' },
    { id: 'copy', title: 'Copy to the second region and verify the copy by re-reading its checksum', undo: 'delete the unverified copy' },
    { id: 'mark-verified', title: 'Mark the backup verified in both locations' },
    { id: 'retention', title: 'Delete backups that newer verified backups supersede (retention)' },
  ],
  gates: [],
} as const;

export const backupRestoreTestPlan = {
  steps: [
    { id: 'select', title: 'Select the backup: the newest verified one, or the one named' },
    { id: 'verify-artifact', title: 'Verify the artifact’s SHA-256 against its manifest' },
    { id: 'create-scratch', title: 'Create a scratch restore target for this run', undo: 'drop the scratch target (also on failure and cancel)' },
    { id: 'restore', title: 'Restore the backup into the scratch target (timed against the RTO target)' },
    { id: 'verify-data', title: 'Verify row counts and table checksums against the manifest, and run the sample queries' },
    { id: 'cleanup', title: 'Drop the scratch target' },
  ],
  gates: [],
} as const;

export type DatabaseBackupStepId = (typeof databaseBackupPlan.steps)[number]['id'];
export type BackupRestoreTestStepId = (typeof backupRestoreTestPlan.steps)[number]['id'];

/** One table's fingerprint, taken in the dump's snapshot. */
export interface TableFingerprint {
  /** schema.table */
  table: string;
  rows: number;
  /** Order-independent digest of every row's text form (md5 of the sorted row md5s). */
  checksum: string;
}

/** Written next to the artifact; the restore test checks the artifact and the restored data against it. */
export interface BackupManifest {
  format: 'lifeboat-backup/1';
  backupId: string;
  database: string;
  provider: 'postgres' | 'cloudsql';
  /** `pg_dump -Fc` for PostgreSQL; a provider-managed backup for Cloud SQL. */
  artifact: { kind: 'pg_dump-custom'; key: string; sha256: string; sizeBytes: number } | { kind: 'cloudsql-backup-run'; backupRunId: string; instance: string };
  /** Row counts and checksums taken in the same snapshot as the dump (absent when the provider cannot read the data). */
  tables?: TableFingerprint[];
  serverVersion?: string;
  snapshot?: string;
  startedAt: string;
  finishedAt: string;
  /** Where the artifact is stored: the first is where it was written. */
  locations: string[];
}

/** A backup as listed in its primary location. */
export interface BackupListing {
  backupId: string;
  database: string;
  startedAt: string;
  finishedAt?: string;
  /** Copied to every location and re-read; only verified backups supersede older ones. */
  verified: boolean;
  sizeBytes?: number;
}

export interface BackupCopy {
  location: string;
  sha256?: string;
  verified: boolean;
  method: string;
}

export interface RetentionOutcome {
  kept: string[];
  deleted: string[];
}

export interface ArtifactCheck {
  backupId: string;
  ok: boolean;
  expectedSha256?: string;
  actualSha256?: string;
  sizeBytes?: number;
  method: string;
}

/** A restore target made for one run and dropped after it. */
export interface ScratchTarget {
  kind: 'postgres-database' | 'cloudsql-instance';
  /** Database name or instance name. */
  name: string;
  host?: string;
  port?: number;
  createdAt: string;
}

export interface RestoreOutcome {
  backupId: string;
  target: ScratchTarget;
  durationSeconds: number;
  method: string;
}

/** A read-only query run against the restored data; `expectRows` checks the count of rows it returns. */
export interface SampleQuery {
  name: string;
  sql: string;
  minRows?: number;
}

export interface RestoreVerification {
  ok: boolean;
  tables: Array<TableFingerprint & { expectedRows?: number; expectedChecksum?: string; match: boolean }>;
  samples: Array<{ name: string; rows: number; ok: boolean; error?: string }>;
  mismatches: string[];
  method: string;
}

export interface DatabaseBackupPolicy {
  rto: RtoPolicy;
  /** Verified backups to keep; older ones are deleted only when this many newer verified ones exist. */
  keepVerified: number;
  stepBudgets: Partial<Record<DatabaseBackupStepId, number>>;
  compensationAttempts: number;
}

export interface DatabaseBackupInput {
  database: string;
  run: RunContext;
  policy: DatabaseBackupPolicy;
}

export interface DatabaseBackupResult extends RunOutcome {
  workflowId: string;
  database: string;
  backupId: string;
  manifest: BackupManifest;
  copies: BackupCopy[];
  retention: RetentionOutcome;
  durationSeconds: number;
}

export interface BackupRestoreTestPolicy {
  rto: RtoPolicy;
  /** The data category's recovery-time target: the restore duration is measured against it. */
  restoreTargetSeconds: number;
  sampleQueries: SampleQuery[];
  stepBudgets: Partial<Record<BackupRestoreTestStepId, number>>;
  compensationAttempts: number;
}

export interface BackupRestoreTestInput {
  database: string;
  /** A backup id to test; the newest verified backup when absent. */
  backupId?: string;
  run: RunContext;
  policy: BackupRestoreTestPolicy;
}

export interface BackupRestoreTestResult extends RunOutcome {
  workflowId: string;
  database: string;
  backupId: string;
  /** Age of the tested backup when the test started, seconds. */
  backupAgeSeconds: number;
  artifact: ArtifactCheck;
  restore: RestoreOutcome;
  verification: RestoreVerification;
  restoreTarget: { targetSeconds: number; measuredSeconds: number; met: boolean };
}

/** A backup id sorts by time: `<db>-<yyyymmddThhmmss.mmmZ>-<run suffix>`. */
export function backupIdFor(database: string, startedAt: string, runSuffix: string): string {
  const stamp = startedAt.replace(/[-:]/g, '');
  return `${database}-${stamp}-${runSuffix}`;
}

export function databaseBackupWorkflowId(database: string, startedAt: string): string {
  return `${DATABASE_BACKUP_RUNBOOK}:${database}:${startedAt}`;
}

export function backupRestoreTestWorkflowId(database: string, startedAt: string): string {
  return `${BACKUP_RESTORE_TEST_RUNBOOK}:${database}:${startedAt}`;
}

/** The database-backup runbook's one definition; a backup changes no topology, so it holds nothing. */
export const databaseBackupRunbook = defineRunbook<DatabaseBackupInput, DatabaseBackupResult>()({
  name: DATABASE_BACKUP_RUNBOOK,
  workflowType: DATABASE_BACKUP_WORKFLOW_TYPE,
  plan: databaseBackupPlan,
  workflowId: databaseBackupWorkflowId,
  holds: () => [],
});

/** The backup-restore-test runbook's one definition; it restores into a scratch target of its own and holds nothing. */
export const backupRestoreTestRunbook = defineRunbook<BackupRestoreTestInput, BackupRestoreTestResult>()({
  name: BACKUP_RESTORE_TEST_RUNBOOK,
  workflowType: BACKUP_RESTORE_TEST_WORKFLOW_TYPE,
  plan: backupRestoreTestPlan,
  workflowId: backupRestoreTestWorkflowId,
  holds: () => [],
});
