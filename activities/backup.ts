/**
 * Backup activities used by `database-backup` and `backup-restore-test`. Each
 * call names a database; the provider behind it (pg_dump to S3, or Cloud SQL
 * backup runs) comes from the worker's config.
 */
import { Context, heartbeat } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type {
  ArtifactCheck,
  BackupCopy,
  BackupListing,
  BackupManifest,
  RestoreOutcome,
  RestoreVerification,
  RetentionOutcome,
  SampleQuery,
  ScratchTarget,
} from '../contract/backup';
import { FailureType } from '../contract/failures';

/** Progress a long provider call reports; the activity heartbeats it. */
export type Progress = (detail: Record<string, unknown>) => void;

/** What the backup runbooks need from one database's backups, whatever stores them. */
export interface BackupProvider {
  readonly database: string;
  /** Takes a backup into the first location and writes its manifest there. */
  takeBackup(backupId: string, progress: Progress, signal: AbortSignal): Promise<BackupManifest>;
  /** Copies the backup to the other locations and re-reads each copy's checksum. Idempotent. */
  replicateBackup(backupId: string, progress: Progress): Promise<BackupCopy[]>;
  /** Deletes the copies replicateBackup made (the undo of an unverified copy). Idempotent. */
  deleteCopies(backupId: string): Promise<void>;
  /** Marks the backup verified in every location. Idempotent. */
  markVerified(backupId: string): Promise<void>;
  /** Every backup of the database, newest first. */
  listBackups(): Promise<BackupListing[]>;
  readManifest(backupId: string): Promise<BackupManifest>;
  /** Deletes a backup from every location. Idempotent. */
  deleteBackup(backupId: string): Promise<void>;
  /** Re-reads the artifact and compares its checksum with the manifest. */
  verifyArtifact(backupId: string, progress: Progress): Promise<ArtifactCheck>;
  /** A restore target created for one run (a scratch database or staging instance). Idempotent by runKey. */
  createScratch(runKey: string): Promise<ScratchTarget>;
  restoreInto(backupId: string, target: ScratchTarget, progress: Progress, signal: AbortSignal): Promise<RestoreOutcome>;
  verifyRestore(backupId: string, target: ScratchTarget, samples: readonly SampleQuery[]): Promise<RestoreVerification>;
  /** Drops (or stops) the scratch target of `runKey`. Idempotent: a missing target is success. */
  dropScratch(runKey: string): Promise<void>;
}

const HEARTBEAT_MS = 2000;

/** Heartbeats while `work` runs, with the latest progress as details; `signal` aborts on cancel. */
async function withHeartbeat<T>(work: (progress: Progress, signal: AbortSignal) => Promise<T>): Promise<T> {
  let latest: Record<string, unknown> = {};
  const timer = setInterval(() => heartbeat(latest), HEARTBEAT_MS);
  try {
    heartbeat(latest);
    return await work((d) => { latest = d; }, Context.current().cancellationSignal);
  } finally {
    clearInterval(timer);
  }
}

/** One backup of one database: what most backup activities act on. */
export interface BackupRef {
  database: string;
  backupId: string;
}

/** A restore test's scratch target, by the run it belongs to. */
export interface ScratchRef {
  database: string;
  runKey: string;
}

export function createBackupActivities(deps: { providers: ReadonlyMap<string, BackupProvider> }) {
  const provider = (database: string): BackupProvider => {
    const p = deps.providers.get(database);
    if (!p) {
      throw ApplicationFailure.nonRetryable(
        `no backups configured for database '${database}': the worker's config has backups for ${[...deps.providers.keys()].join(', ') || 'none'}`,
        FailureType.UnknownDatabase,
      );
    }
    return p;
  };

  return {
    async takeBackup({ database, backupId }: BackupRef): Promise<BackupManifest> {
      return withHeartbeat((progress, signal) => provider(database).takeBackup(backupId, progress, signal));
    },
    async replicateBackup({ database, backupId }: BackupRef): Promise<BackupCopy[]> {
      const copies = await withHeartbeat((progress) => provider(database).replicateBackup(backupId, progress));
      const bad = copies.filter((c) => !c.verified);
      if (bad.length > 0) {
        throw ApplicationFailure.retryable(`copy of ${backupId} not verified in ${bad.map((c) => c.location).join(', ')}: ${bad.map((c) => c.method).join('; ')}`, FailureType.BackupCorrupt);
      }
      return copies;
    },
    async deleteBackupCopies({ database, backupId }: BackupRef): Promise<void> {
      await provider(database).deleteCopies(backupId);
    },
    async markBackupVerified({ database, backupId }: BackupRef): Promise<void> {
      await provider(database).markVerified(backupId);
    },
    /** Keeps the newest `keepVerified` verified backups; deletes only what a newer verified backup supersedes. */
    async applyRetention({ database, keepVerified }: { database: string; keepVerified: number }): Promise<RetentionOutcome> {
      const p = provider(database);
      const backups = await p.listBackups();
      const kept: string[] = [];
      const deleted: string[] = [];
      let newerVerified = 0;
      for (const backup of backups) {
        // Newest first: a backup goes once `keepVerified` newer verified backups exist.
        if (newerVerified >= keepVerified) {
          await p.deleteBackup(backup.backupId);
          deleted.push(backup.backupId);
        } else {
          kept.push(backup.backupId);
        }
        if (backup.verified) newerVerified += 1;
      }
      return { kept, deleted };
    },
    /** The named backup (it must be verified) or the newest verified one, with its manifest. */
    async selectBackup({ database, backupId }: { database: string; backupId?: string }): Promise<BackupManifest> {
      const p = provider(database);
      const backups = await p.listBackups();
      const chosen = backupId ? backups.find((b) => b.backupId === backupId) : backups.find((b) => b.verified);
      if (!chosen) {
        const known = backups.slice(0, 5).map((b) => `${b.backupId}${b.verified ? '' : ' (unverified)'}`).join(', ') || 'none';
        throw ApplicationFailure.nonRetryable(
          backupId ? `no backup '${backupId}' of ${database}; newest: ${known}` : `no verified backup of ${database} to test; run database-backup first (found: ${known})`,
          FailureType.BackupNotFound,
        );
      }
      return p.readManifest(chosen.backupId);
    },
    async verifyBackupArtifact({ database, backupId }: BackupRef): Promise<ArtifactCheck> {
      const check = await withHeartbeat((progress) => provider(database).verifyArtifact(backupId, progress));
      if (!check.ok) {
        throw ApplicationFailure.nonRetryable(
          `backup ${backupId} is corrupt: ${check.method}`,
          FailureType.BackupCorrupt,
          check,
        );
      }
      return check;
    },
    async createScratchTarget({ database, runKey }: ScratchRef): Promise<ScratchTarget> {
      return provider(database).createScratch(runKey);
    },
    async restoreBackup({ database, backupId, target }: BackupRef & { target: ScratchTarget }): Promise<RestoreOutcome> {
      return withHeartbeat((progress, signal) => provider(database).restoreInto(backupId, target, progress, signal));
    },
    async verifyRestoredData({ database, backupId, target, samples }: BackupRef & { target: ScratchTarget; samples: SampleQuery[] }): Promise<RestoreVerification> {
      const verification = await provider(database).verifyRestore(backupId, target, samples);
      if (!verification.ok) {
        throw ApplicationFailure.nonRetryable(
          `restored data of ${backupId} does not match its manifest: ${verification.mismatches.join('; ')}`,
          FailureType.RestoreMismatch,
          verification,
        );
      }
      return verification;
    },
    async dropScratchTarget({ database, runKey }: ScratchRef): Promise<void> {
      await provider(database).dropScratch(runKey);
    },
  };
}

export type BackupActivities = ReturnType<typeof createBackupActivities>;
