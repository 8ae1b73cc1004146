/**
 * What a former primary holds that the current primary does not, measured
 * before Lifeboat rebuilds it (pg_rewind or pg_basebackup would discard it):
 * its WAL past the fork point of the current primary's timeline, a copy of its
 * data directory set aside, and a reconciliation report of the rows it holds
 * that the current primary lacks or has otherwise. Shared by the host-bound
 * activities, the failback workflow and `lifeboat report`.
 */
import type { NodeEndpoint } from './database';

/** A node by the role the config gives it (`databases.<db>.primary|standby`), whatever it is now. */
export type ConfiguredNode = 'primary' | 'standby';

/** Input of every host-bound divergence activity: they run where `node`'s data directory is. */
export interface FormerPrimaryRef {
  database: string;
  /** The node about to be rebuilt; the other node of the database is the current primary. */
  node: ConfiguredNode;
}

/** What the node was before Lifeboat stopped it, so a rollback can put it back. */
export interface FormerPrimaryStop {
  database: string;
  node: NodeEndpoint;
  /** Already streaming from the current primary: nothing to measure, nothing to discard. */
  alreadyAStandby: boolean;
  wasRunning: boolean;
  /** When it was running: in recovery (a standby) and whether new sessions were read-only (fenced). */
  inRecovery?: boolean;
  readOnly?: boolean;
}

/** Counts of the WAL records past the fork, by kind. */
export interface DivergedRecords {
  total: number;
  /** Transactions committed past the fork (COMMIT, COMMIT_PREPARED): what clients were told is durable. */
  commits: number;
  /** Transactions prepared past the fork (PREPARE TRANSACTION): durable, waiting for COMMIT PREPARED. */
  prepared: number;
  /** Non-transactional logical decoding messages (durable without a commit). */
  messages: number;
  /** Records per `rmgr/TYPE`, e.g. `Heap/INSERT`. */
  byType: Record<string, number>;
  firstCommitAt?: string;
  lastCommitAt?: string;
}

export type DivergenceState = 'diverged' | 'not-diverged' | 'already-a-standby' | 'unknown';

/**
 * The former primary's WAL past the fork point. `divergedBytes` is what a
 * rebuild would discard: end of WAL minus the fork LSN when anything durable
 * lies past the fork (a commit, a prepared transaction, a non-transactional
 * message), 0 when nothing does (a shutdown checkpoint, a running-xacts
 * snapshot, hint bits, pruning, or changes of transactions that never
 * committed: no client was told they were durable), undefined when unknown.
 */
export interface DivergenceMeasurement {
  database: string;
  node: NodeEndpoint;
  source: NodeEndpoint;
  state: DivergenceState;
  /** The former primary's timeline (its control file, or a newer WAL segment in its pg_wal). */
  timeline?: number;
  /** The current primary's timeline, whose history gives the fork point. */
  sourceTimeline?: number;
  /** Where the current primary's timeline left the former primary's: the switchpoint in its history file. */
  forkLsn?: string;
  /** The end of the former primary's valid WAL (where PostgreSQL's own recovery would stop reading). */
  endLsn?: string;
  /** endLsn − forkLsn, every record included. */
  walBytes?: number;
  divergedBytes?: number;
  records?: DivergedRecords;
  /** pg_controldata's "Database cluster state" (e.g. "in production" after a crash, "shut down"). */
  clusterState?: string;
  method: string;
  /** Why the state is unknown. */
  error?: string;
  measuredAt: string;
}

/** The data directory copied aside before a rebuild; Lifeboat never deletes it. */
export interface SetAsideCopy {
  database: string;
  node: NodeEndpoint;
  dataDir: string;
  copy: string;
  bytes: number;
  /** An earlier attempt of the same run had made it already. */
  reused: boolean;
}

export interface ReconciledRow {
  /** The primary key's values, in key order, as PostgreSQL prints them. */
  key: string[];
  status: 'missing' | 'different';
  /** The row on the diverged node (to_jsonb). */
  diverged: Record<string, unknown>;
  /** The current primary's row under the same key, when it differs. */
  current?: Record<string, unknown>;
}

export interface ReconciledTable {
  schema: string;
  table: string;
  primaryKey: string[];
  /** Rows on the diverged node. */
  rows: number;
  missing: number;
  different: number;
  /** Keys of the missing and differing rows, up to the key limit. */
  missingKeys: string[][];
  differentKeys: string[][];
  keysTruncated: boolean;
  /** The rows themselves, up to the row limit. */
  sample: ReconciledRow[];
  sampleTruncated: boolean;
  /** Columns only one side has (compared on the common ones). */
  columnsOnlyOnDiverged?: string[];
  columnsOnlyOnCurrent?: string[];
  /** The table does not exist on the current primary: every row is missing. */
  absentOnCurrent?: boolean;
}

export interface UnreconciledTable {
  schema: string;
  table: string;
  reason: string;
  rowsOnDiverged?: number;
  rowsOnCurrent?: number;
}

export const RECONCILIATION_FORMAT = 'lifeboat-reconciliation/1';

/**
 * Delta reconciliation of one database: for each table with a primary key,
 * the rows the diverged node holds that are missing or different on the
 * current primary, read from the set-aside copy before anything is rebuilt.
 */
export interface ReconciliationReport {
  format: typeof RECONCILIATION_FORMAT;
  database: string;
  diverged: NodeEndpoint & { copy: string };
  current: NodeEndpoint;
  readAt: string;
  method: string;
  limits: { keys: number; rows: number };
  tables: ReconciledTable[];
  unreconciled: UnreconciledTable[];
  /** Other databases of the diverged cluster, not compared. */
  otherDatabases: string[];
  totals: { tables: number; missing: number; different: number };
}

export interface ReconcileInput extends FormerPrimaryRef {
  copy: string;
  /** Keys listed per table (the counts are always complete). */
  keyLimit: number;
  /** Rows shown per table. */
  rowLimit: number;
}

/** What a failback discarded (or did not) when it rebuilt one former primary. */
export interface DiscardOutcome {
  /** The rebuild that discarded it. */
  step: 'rebuild-standbys' | 'rebuild-old-primaries';
  node: NodeEndpoint;
  state: DivergenceState;
  /** Bytes of diverged WAL discarded by the rebuild: 0 only when measured 0; absent when unknown. */
  discardedBytes?: number;
  walBytes?: number;
  forkLsn?: string;
  endLsn?: string;
  commits?: number;
  /** From the reconciliation report: rows missing or different on the current primary. */
  rows?: { missing: number; different: number; tables: number; unreconciledTables: number };
  /** The set-aside data directory holding what was discarded. */
  keptCopy?: string;
  /** The reconciliation report stored with the run's evidence. */
  report?: { artifact: string; digest: string };
  /** One line for people: "0 bytes lost (measured: …)" or "2256 bytes discarded …, kept in …". */
  summary: string;
}

export const RECONCILIATION_ARTIFACT_KIND = 'reconciliation';

/** The artifact name of a reconciliation report: one per database and rebuild. */
export function reconciliationArtifactName(database: string, step: DiscardOutcome['step']): string {
  return `reconciliation-${step}-${database}`;
}
