/**
 * What a database provider reports to the runbooks. PostgreSQL implements it
 * today; Cloud SQL plugs in behind the same activity names.
 */
export interface NodeEndpoint {
  region: string;
  host: string;
  port: number;
}

export interface ReplicationInspection {
  database: string;
  standby: NodeEndpoint & {
    reachable: boolean;
    inRecovery?: boolean;
    streaming?: boolean;
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
  /** Replay lag reported by the primary (0 when caught up), when reachable. */
  lagSeconds?: number;
  inspectedAt: string;
}

export type FenceResult =
  /** `method`: how the node was fenced (absent on runs from before fences were shutdowns: a read-only default). */
  | { fenced: true; finalLsn: string; terminatedSessions: number; method?: string }
  | { fenced: false; reason: string; attempted?: boolean };

export interface CatchUpResult {
  targetLsn: string;
  replayLsn: string;
}

export interface RpoMeasurement {
  measuredBytes?: number;
  measuredSeconds?: number;
  method: string;
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
