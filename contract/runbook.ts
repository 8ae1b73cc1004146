/**
 * The contract every runbook shares, imported by workflows, workers and the CLI:
 * the status shape, the message definitions (signals, updates, queries), the
 * search attributes and the failure type names. Keep this module free of Node
 * built-ins: it is bundled into the workflow sandbox.
 */
import type { SentinelStatus, SentinelTrigger } from './sentinel';
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
import type { Notification } from './database';
import type { EvidencePending, EvidenceRecord } from './evidence';

/** Default task queue; the config's `temporal.taskQueue` overrides it. */
export const DEFAULT_TASK_QUEUE = 'lifeboat';

export const ROLES = ['commander', 'approver', 'viewer', 'admin'] as const;
export type Role = (typeof ROLES)[number];

/**
 * Who may do what, one set per permission. The CLI refuses early with these
 * sets; the workflows check the same rules again on the run's snapshot of the
 * people, so a raw signal gets no further than the CLI would.
 */
export const ROLE_SETS = {
  /** Read a run, its report and evidence, the schedules and the audit: anyone configured. */
  read: ROLES,
  /** Start a runbook. */
  start: ['commander'],
  /** Start with --force: commanders, and admins, who may start a run only to override a cooldown. */
  forceStart: ['commander', 'admin'],
  /** Override a runbook's cooldown (--force). */
  overrideCooldown: ['admin'],
  /** Approve or reject a gate (never the run's own initiator). */
  decide: ['approver'],
  /** Cancel a run, or resolve one in needs-attention. */
  operate: ['commander', 'admin'],
  /** Apply, pause, unpause, trigger and delete schedules. */
  schedules: ['admin'],
  /** Start and stop sentinels. */
  sentinels: ['admin'],
} as const satisfies Record<string, readonly Role[]>;

/** Whether someone with `roles` holds one of the roles of `set`. */
export function hasRole(roles: readonly Role[], set: readonly Role[]): boolean {
  return roles.some((role) => set.includes(role));
}

export type RunState =
  | 'running'
  | 'waiting-approval'
  | 'compensating'
  | 'needs-attention'
  | 'completed'
  | 'failed'
  | 'rolled-back'
  /** Refused before it changed anything: a target it may change is held by another run. */
  | 'refused'
  /** A scheduled run (a drill) that found its target held by another run: nothing done, recorded. */
  | 'skipped';

/** A scheduled run (a drill) that found its target held by another run (a real incident): it did nothing and says so. */
export interface SkippedRun {
  skipped: { reason: string };
}

/** The result of a run that may have been skipped, for callers that expect it to have run. */
export function ranToEnd<T extends object>(result: T | SkippedRun): T {
  if ('skipped' in result) throw new Error(`the run was skipped: ${result.skipped.reason}`);
  return result;
}

/** States a run ends in. */
export const FINAL_STATES: readonly RunState[] = ['completed', 'failed', 'rolled-back', 'refused', 'skipped'];

export function isFinalState(state: RunState): boolean {
  return FINAL_STATES.includes(state);
}

export type StepState = 'pending' | 'running' | 'done' | 'failed' | 'compensated' | 'skipped';

/** `cancelled`: the run ended (cancel, failure) while the gate was waiting. */
export type GateState = 'pending' | 'waiting' | 'approved' | 'rejected' | 'timed-out' | 'cancelled';

export interface StepStatus {
  id: string;
  title: string;
  state: StepState;
  irreversible: boolean;
  /** Per-step budget in seconds, when the config sets one. */
  budgetSeconds?: number;
  budgetBreached: boolean;
  startedAt?: string;
  endedAt?: string;
  /** Why a step failed or was skipped, in words. */
  note?: string;
  /** Whether this step completed after the run passed its point of no return. */
  pastPointOfNoReturn: boolean;
}

export interface GateStatus {
  id: string;
  title: string;
  state: GateState;
  /** Changes at every opening: a decision naming another nonce is refused. */
  nonce?: string;
  openedAt?: string;
  escalatedAt?: string;
  decidedBy?: string;
  decidedAt?: string;
  comment?: string;
  /** People allowed to decide (approver role, never the initiator). */
  approvers: string[];
  /** Distinct approvals needed: 2 for a two-person gate. */
  required: number;
  /** Approvals of the current opening so far. */
  /** `signed`: the approval carried a verified Ed25519 signature. */
  approvals: Array<{ by: string; at: string; comment?: string; signed?: boolean }>;
}

export interface RtoStatus {
  budgetSeconds: number;
  /** Seconds from detection to the last workflow activation (or to the end of the run). */
  elapsedSeconds: number;
  remainingSeconds: number;
  breached: boolean;
  breachedAt?: string;
  onBreach: BreachPolicy;
  /** Detection to verified service; set when the runbook verifies recovery. */
  measuredSeconds?: number;
}

/** The run's RPO: the rule in contract/rpo.ts decides `met`; unknown figures stay undefined, never 0. */
export interface RpoStatus {
  targetSeconds: number;
  /** Bytes of WAL not replayed on the standby (the primary measure); undefined: not measured. */
  measuredBytes?: number;
  /** Seconds of data at risk; undefined: unknown (e.g. replay_lag NULL for a standby that is not connected). */
  measuredSeconds?: number;
  /** How the figure was obtained, e.g. "planned: standby replayed the fenced primary's final LSN". */
  method?: string;
  /** Undefined until measured; then true only when the measured figures are within the target. */
  met?: boolean;
  /** Why `met` is what it is, e.g. "171392 bytes not replayed, seconds unknown". */
  verdict?: string;
}

/**
 * One database's replication as a parent run (evacuation, failback) read it
 * before its point-of-no-return gate, so the approver sees what each promotion risks.
 */
export interface DatabaseRpoStatus {
  database: string;
  /** The node that would be promoted: reachable, and streaming from its primary (undefined: not known). */
  standbyRegion: string;
  standbyReachable: boolean;
  streaming?: boolean;
  primaryReachable: boolean;
  targetSeconds: number;
  measuredBytes?: number;
  measuredSeconds?: number;
  method: string;
  met: boolean;
  verdict: string;
  inspectedAt: string;
}

export type RunEventKind =
  | 'started'
  | 'gate-opened'
  | 'gate-approved'
  | 'gate-rejected'
  | 'gate-timed-out'
  | 'decision-refused'
  | 'escalation'
  | 'notification-failed'
  | 'rto-breach'
  | 'step-budget-breach'
  | 'point-of-no-return'
  | 'compensation-failed'
  | 'resolved'
  | 'cancel-requested'
  | 'step-failed'
  /** A target hold claimed or joined. */
  | 'hold'
  /** The run was refused (a target held by another run, or refused at admission). */
  | 'refused'
  /** The run was admitted: its origin and the worker's policy it runs under. */
  | 'admitted'
  | 'artifact'
  | 'pre-approval-set-aside'
  | 'replication-measured'
  /** A return watch left for a part of the lost region the run could not reach (contract/return-watch.ts). */
  | 'return-watch'
  | 'finished';

export interface RunEvent {
  at: string;
  kind: RunEventKind;
  detail: string;
  by?: string;
  gate?: string;
  step?: string;
}

export type BreachPolicy = 'continue' | 'rollback';

export interface RunbookStatus {
  workflowId: string;
  runbook: string;
  /** Short human phase, e.g. "gate promote", "promote", "compensating". */
  phase: string;
  state: RunState;
  initiator: string;
  incident?: string;
  detectedAt: string;
  drill: boolean;
  target: string;
  steps: StepStatus[];
  gates: GateStatus[];
  rto: RtoStatus;
  rpo: RpoStatus;
  /** Parent runs: each database's lag and streaming state, read before the point-of-no-return gate. */
  replication?: DatabaseRpoStatus[];
  pointOfNoReturnPassed: boolean;
  /** Whether a failure, rejection or cancel would still run the undos. */
  rollbackAvailable: boolean;
  events: RunEvent[];
  /** Child runs (an evacuation's database promotions). */
  children: ChildStatus[];
  /** Head of the run's evidence chain (absent on runs from before the chain existed). */
  evidence?: { head: string; records: number; pending?: EvidencePending };
  /** Documents the run stored with its evidence (a reconciliation report), each sealed in the chain by its SHA-256. */
  artifacts?: RunArtifact[];
  /** Delivery counters; `lastError` tells why channels are failing while retries go on. */
  notifications: { delivered: number; pending: number; failedRounds: number; lastError?: string; pager?: string };
  error?: { type: string; message: string };
  /** The failed undo the run waits on in needs-attention: a resolution names it (and a signed one is bound to it). */
  attention?: { id: string; step: string };
}

/** A document stored beside the run's evidence chain; `summary` is small enough for the status and the UI. */
export interface RunArtifact {
  /** Unique within the run; the stored file is `<name>.json`. */
  name: string;
  kind: string;
  title: string;
  /** SHA-256 of the stored bytes (canonical JSON), also in the evidence chain. */
  digest: string;
  /** Where the stores put it (local mirror, bucket). */
  locations: string[];
  step?: string;
  at: string;
  summary: Record<string, unknown>;
}

export interface ChildStatus {
  workflowId: string;
  runbook: string;
  target: string;
  state: 'running' | 'completed' | 'failed';
  detail?: string;
}

/** Who the run is, fixed at start from the validated config (roles are a snapshot). */
export interface RunContext {
  initiator: string;
  /** ISO time of the incident's detection; the RTO clock starts here. */
  detectedAt: string;
  /** Started by a Temporal Schedule: the input is fixed at schedule time, so the clock starts when the run starts. */
  scheduled?: boolean;
  incident?: string;
  drill: boolean;
  /** Roles of every configured person, as configured when the run started. */
  people: Record<string, Role[]>;
  /** Temporal Web UI base URL, so notifications can link to the run. */
  uiUrl?: string;
  /** Approvers' Ed25519 public keys (base64), as configured when the run started. */
  approvalKeys?: Record<string, string>;
  /** `required`: every gate decision must carry a valid signature; `optional`: a signature, when given, must be valid. */
  signatures?: 'optional' | 'required';
  /** The initiator's Ed25519 signature of this start (contract/approvals.ts startMessage); never inherited by a child. */
  startSignature?: string;
  /** When the start was signed (ISO): a signature is good for a few minutes around the run's start. */
  signedAt?: string;
  /** Started by a sentinel on a declared failure: its votes; admission asks the sentinel whether it declared this start. */
  trigger?: SentinelTrigger & { declaration: string };
}

export interface GatePolicy {
  /** Seconds after opening before the gate escalates (notification). */
  escalateAfterSeconds: number;
  /** Seconds after opening before the gate is rejected as timed out. */
  timeoutSeconds: number;
  /** Two distinct approvers must approve (the second approval opens the gate). */
  twoPerson?: boolean;
}

export interface RtoPolicy {
  budgetSeconds: number;
  onBreach: BreachPolicy;
}

/** A decision on a gate, as sent by the CLI, the Temporal UI or a raw signal. */
export interface GateDecision {
  gate: string;
  approver: string;
  comment?: string;
  /** The gate opening this decision is for; omitted means the current opening. */
  nonce?: string;
  /** Ed25519 signature (base64) of the decision by the approver's key: see contract/approvals.ts. */
  signature?: string;
}

export interface DecideRequest extends GateDecision {
  decision: 'approve' | 'reject';
}

export interface DecideResult {
  gate: string;
  state: GateState;
  decidedBy: string;
  decidedAt: string;
}

export interface CancelRequest {
  by: string;
  reason: string;
  /** Ed25519 signature of the cancel by `by` (contract/approvals.ts cancelMessage). */
  signature?: string;
}

export interface ResolveRequest {
  by: string;
  comment: string;
  /** `retry` runs the failed compensation again; `done-by-hand` records that a person undid it. */
  action: 'retry' | 'done-by-hand';
  /** The failed undo this resolves (the status's `attention.id`); a signature is bound to it. */
  attention?: string;
  /** Ed25519 signature of the resolution by `by` (contract/approvals.ts resolveMessage). */
  signature?: string;
}

/** Fire-and-forget approval (Temporal UI, scripts). Invalid ones change nothing and are recorded. */
export const approveSignal = defineSignal<[GateDecision]>('approve');
/** Fire-and-forget rejection. Invalid ones change nothing and are recorded. */
export const rejectSignal = defineSignal<[GateDecision]>('reject');
/**
 * Approval or rejection with an answer: an Update, so the validator can refuse an
 * unknown gate, a gate not waiting, an unauthorised approver or self-approval
 * before anything is written to history, and the CLI can tell the person why.
 */
export const decideUpdate = defineUpdate<DecideResult, [DecideRequest]>('decide');
/** Records who cancels and why before the client requests cancellation. */
export const requestCancelUpdate = defineUpdate<{ accepted: true }, [CancelRequest]>('requestCancel');
/** Unblocks a run in needs-attention after a person dealt with a failed compensation. */
export const resolveSignal = defineSignal<[ResolveRequest]>('resolve');
/** The run's live status as JSON. */
export const statusQuery = defineQuery<RunbookStatus>('status');

/** An evidence keeper's records not yet stored (empty once stored): `evidence verify` checks them with the stored part. */
export const evidencePendingQuery = defineQuery<EvidenceRecord[]>('evidencePending');

/** The pager of one run's last pages: its id names the run. */
export function pagerWorkflowId(workflowId: string, runId: string): string {
  return `lifeboat-pager:${workflowId}:${runId}`;
}

export interface PagerInput {
  workflowId: string;
  runId: string;
  /** The pages the run could not deliver before it closed. */
  notifications: Notification[];
  /** Pause after the first failed round, doubled up to `maximumIntervalSeconds` (defaults 5 s and 300 s). */
  initialIntervalSeconds?: number;
  maximumIntervalSeconds?: number;
  /** Who may acknowledge: the run's people as it was admitted, and whether an acknowledgement must be signed. */
  people?: Record<string, Role[]>;
  approvalKeys?: Record<string, string>;
  signatures?: 'optional' | 'required';
}

export interface PageOutcome {
  subject: string;
  audience: Notification['audience'];
  state: 'pending' | 'delivered' | 'acknowledged';
  rounds: number;
  channel?: string;
  at?: string;
  lastError?: string;
}

export interface PagerResult {
  pages: PageOutcome[];
  acknowledged?: { by: string; at: string; comment?: string };
}

export interface AcknowledgeRequest {
  by: string;
  comment?: string;
  /** Ed25519 signature by `by` (contract/approvals.ts ackMessage): required when the run's signatures are. */
  signature?: string;
}

/** Stops a pager's retries: a person has the message. An Update, so the CLI learns what was still undelivered. */
export const acknowledgeUpdate = defineUpdate<PagerResult, [AcknowledgeRequest]>('acknowledge');
/** The pager's pages and their delivery. */
export const pagerQuery = defineQuery<PagerResult>('pager');

export const searchAttributes = {
  runbook: defineSearchAttributeKey('LifeboatRunbook', SearchAttributeType.KEYWORD),
  phase: defineSearchAttributeKey('LifeboatPhase', SearchAttributeType.KEYWORD),
  rtoBreached: defineSearchAttributeKey('LifeboatRtoBreached', SearchAttributeType.BOOL),
  drill: defineSearchAttributeKey('LifeboatDrill', SearchAttributeType.BOOL),
  incident: defineSearchAttributeKey('LifeboatIncident', SearchAttributeType.KEYWORD),
} as const;

/** Registered on the dev server with `--search-attribute NAME=TYPE`. */
export const SEARCH_ATTRIBUTE_REGISTRATIONS: Record<string, 'Keyword' | 'Bool'> = {
  LifeboatRunbook: 'Keyword',
  LifeboatPhase: 'Keyword',
  LifeboatRtoBreached: 'Bool',
  LifeboatDrill: 'Bool',
  LifeboatIncident: 'Keyword',
};

/** A sentinel's live view: each region's probes, the verdict, its declarations (contract/sentinel.ts). */
export const sentinelStatusQuery = defineQuery<SentinelStatus>('sentinelStatus');
/** Stops a sentinel after its current round (`lifeboat sentinel stop`); `by` is recorded. */
export const stopSentinelSignal = defineSignal<[{ by: string; reason?: string }]>('stopSentinel');
