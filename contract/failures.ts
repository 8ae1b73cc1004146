/**
 * Failure type names shared by activities (which raise them), workflows (which
 * branch on them) and the CLI (which explains them). Used in
 * `nonRetryableErrorTypes`, so they are constants, never repeated literals.
 */
export const FailureType = {
  /** The promotion target is not a healthy, streaming standby. */
  StandbyNotHealthy: 'StandbyNotHealthy',
  /** Planned mode needs the old primary; it could not be reached. */
  PrimaryUnreachable: 'PrimaryUnreachable',
  /** The standby has not yet replayed up to the wanted LSN (retried as a poll). */
  ReplayBehind: 'ReplayBehind',
  /** The write check on the new primary failed. */
  WriteCheckFailed: 'WriteCheckFailed',
  /** The database is not in the worker's config. */
  UnknownDatabase: 'UnknownDatabase',
  /** A person rejected a gate, or it timed out. */
  GateRejected: 'GateRejected',
  /** The overall RTO budget ran out and the policy is rollback. */
  RtoBudgetExceeded: 'RtoBudgetExceeded',
  /** A provider the runbook needs is not in the config (DNS, a region's service). */
  NotConfigured: 'NotConfigured',
  /** A synthetic check (health, write, read) against a region failed. */
  SyntheticCheckFailed: 'SyntheticCheckFailed',
  /** A child promotion failed and the policy is abort. */
  PromotionFailed: 'PromotionFailed',
  /** A backup's artifact or copy does not match its manifest's checksum. */
  BackupCorrupt: 'BackupCorrupt',
  /** No backup to test (none verified, or the named one does not exist). */
  BackupNotFound: 'BackupNotFound',
  /** Restored data differs from the manifest (row counts, checksums) or a sample query failed. */
  RestoreMismatch: 'RestoreMismatch',
  /** A cloud provider's long-running operation ended in error (its message attached). */
  ProviderOperationFailed: 'ProviderOperationFailed',
  /** The target (a database, a region) is held by another run that may change it; nothing was changed. */
  TargetHeld: 'TargetHeld',
  /** A target hold was started by someone other than the run it names as its holder (a raw start): it held nothing and ended. */
  HoldNotClaimed: 'HoldNotClaimed',
  /** A target hold has not yet decided whether a run that asked to join is let in (retried as a poll). */
  JoinUndecided: 'JoinUndecided',
  /** An undo that would re-open writes found another node out of recovery, ahead, or unreadable: a person decides. */
  UnfenceRefused: 'UnfenceRefused',
  /** A return watch found the node it would fence to be the newest primary, not the one that was replaced. */
  FenceRefused: 'FenceRefused',
  /** A former primary must be stopped before its data directory is measured or copied. */
  FormerPrimaryRunning: 'FormerPrimaryRunning',
  /** Not enough free space beside a data directory to copy it aside: nothing is rebuilt without the copy. */
  NoRoomForCopy: 'NoRoomForCopy',
  /** A runbook step failed; the cause is attached. */
  StepFailed: 'StepFailed',
  /** The run was refused at its start by the worker's policy (an unsigned or forged start, a widened policy, a forged pre-approval); nothing was changed. */
  RunRefused: 'RunRefused',
  /** No node of the database is in a region its residency rules allow: nothing is promoted. */
  ResidencyDenied: 'ResidencyDenied',
} as const;
export type FailureTypeName = (typeof FailureType)[keyof typeof FailureType];
