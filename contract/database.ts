/**
 * What a database provider reports to the runbooks. PostgreSQL implements it
 * today; Cloud SQL plugs in behind the same activity names.
 */
export interface NodeEndpoint {
  region: string;
  host: string;
  port: number;
}

/**
 * Which node a promotion makes the primary. `standby`: the configured standby (failover); `primary`: the
 * configured primary, replacing the standby (failback); `standby:<region>`: the standby in that region;
 * `primary:<region>`: the configured primary, replacing the node in that region (a failback after a
 * promotion chose a further standby). A region holds one node of a database, so a region names a node.
 */
export type PromotionTarget = 'standby' | 'primary' | `standby:${string}` | `primary:${string}`;

/** The promotion target as the pair of nodes it orients: `promote` becomes the primary, `replace` is the node it replaces. */
export function parsePromotionTarget(target: PromotionTarget | undefined): { becomes: 'standby' | 'primary'; region?: string } {
  if (target === undefined || target === 'standby') return { becomes: 'standby' };
  if (target === 'primary') return { becomes: 'primary' };
  const [becomes, region] = [target.slice(0, target.indexOf(':')), target.slice(target.indexOf(':') + 1)];
  if ((becomes !== 'standby' && becomes !== 'primary') || region === '') throw new Error(`not a promotion target: '${target}' (standby, primary, standby:<region> or primary:<region>)`);
  return { becomes, region };
}

export interface ReplicationInspection {
  database: string;
  standby: NodeEndpoint & {
    reachable: boolean;
    inRecovery?: boolean;
    streaming?: boolean;
    /** pg_stat_wal_receiver.status (`streaming`, `starting`, ...); undefined when no WAL receiver runs. */
    walReceiver?: string;
    replayLsn?: string;
    receiveLsn?: string;
    lastReplayedCommitAt?: string;
    error?: string;
  };
  primary: NodeEndpoint & {
    reachable: boolean;
    currentLsn?: string;
    readOnly?: boolean;
    error?: string;
  };
  /** The old primary is fenced on its own host (a self-managed node): its fence and undo run on that region's task queue. */
  fenceOnHost?: boolean;
  /** Primary's current LSN minus the standby's replay LSN, when both are reachable. */
  lagBytes?: number;
  /**
   * pg_stat_replication.replay_lag, when the primary reports one. Undefined when it is NULL:
   * a standby that is not connected has no row, and an idle caught-up one shows NULL. Never 0 for unknown.
   */
  lagSeconds?: number;
  inspectedAt: string;
}

export type FenceResult =
  /** `method`: how the node was fenced (absent on runs from before fences were shutdowns: a read-only default). */
  | { fenced: true; finalLsn: string; terminatedSessions: number; method?: string; cleanShutdown?: boolean; timeline?: number }
  /** `unreachable`: the node did not answer and no worker of its region took the fence (the run leaves a return watch). */
  | { fenced: false; reason: string; attempted?: boolean; unreachable?: boolean };

export interface CatchUpResult {
  targetLsn: string;
  replayLsn: string;
}

/** What a provider measured of the data at risk; a figure it could not take is undefined, never 0 (see contract/rpo.ts). */
export interface RpoMeasurement {
  /** Bytes of WAL the standby has not replayed: the primary measure. */
  measuredBytes?: number;
  /** Seconds of lag (or an upper bound when the old primary is gone); undefined when unknown. */
  measuredSeconds?: number;
  method: string;
}

/** Input of the read-only `measureReplication` activity (a parent run, before its gate). */
export interface MeasureReplicationInput {
  database: string;
  /** Which node would be promoted: the standby (evacuation) or the configured primary (failback); see PromotionTarget. */
  towards?: PromotionTarget;
  /** ISO detection time, for the upper bound when the old primary does not answer. */
  detectedAt: string;
}

/** One database's replication, read without changing anything; nodes that do not answer are reported, not thrown. */
export interface ReplicationReading {
  database: string;
  standby: { region: string; host: string; port: number; reachable: boolean; inRecovery?: boolean; streaming?: boolean; walReceiver?: string; error?: string };
  primary: { region: string; host: string; port: number; reachable: boolean; error?: string };
  rpo: RpoMeasurement;
  inspectedAt: string;
}

/** Input of the read-only `confirmStreaming` activity: a planned promotion checks again before it promotes. */
export interface ConfirmStreamingInput {
  database: string;
  towards?: PromotionTarget;
  /** When the check runs, for the message: e.g. "after catch-up", "right before promotion". */
  stage: string;
}

export interface PromotionOutcome {
  alreadyPromoted: boolean;
  timeline: number;
  promotedAt: string;
  newPrimary: NodeEndpoint;
}

export interface WriteCheck {
  ok: true;
  latencyMs: number;
  node: NodeEndpoint;
}

/** Who a notification is for: the incident channel (email first) or the on-call (paged: SMS, then voice). */
export type NotificationAudience = 'incident' | 'oncall';

export interface Notification {
  audience: NotificationAudience;
  severity: 'info' | 'warning' | 'critical';
  kind: 'declare' | 'status' | 'escalation' | 'rto-breach' | 'needs-attention' | 'final';
  subject: string;
  body: string;
  workflowId: string;
  runbook: string;
  incident?: string;
  link?: string;
}

export interface NotificationReceipt {
  channel: string;
  deliveredAt: string;
}
