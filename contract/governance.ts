/**
 * Who may do what in a run comes from the worker's trusted config, not from
 * whoever started it. At its start a run reads the worker's policy (people,
 * roles, keys, signature mode, the runbook's gate rules) and where it came from
 * (a client, a Schedule, a parent run) through one activity, fixed in history
 * from then on; `admitRun` (pure, run in the workflow) then decides: the input
 * may narrow the policy, never widen it; a start is signed by its initiator when
 * the worker requires signatures (a verified Schedule or parent run stands in
 * for the signature); a pre-approval is honoured only as a parent run's recorded
 * decision, verified with that parent.
 */
import { startDigest, startMessage, verifySigned } from './approvals';
import { lookup } from './records';
import { hasRole, ROLE_SETS, type GatePolicy, type Role, type RunContext } from './runbook';
import type { SentinelTrigger } from './sentinel';

/** The policy a worker's config gives one runbook's runs. */
export interface TrustedPolicy {
  people: Record<string, Role[]>;
  /** Public keys (base64 Ed25519) of the people who have one. */
  approvalKeys: Record<string, string>;
  signatures: 'optional' | 'required';
  /** The runbook's gate rules in the config (empty for a runbook the config has no rules for). */
  gates: Record<string, GatePolicy>;
  /** A registered runbook: every gate of its run needs a rule in the worker's config (a test's or a bench's runbook is not). */
  strict?: boolean;
}

/**
 * A gate decided in a parent run, passed to a child run. The child does not take
 * its word: it asks the parent (named by the server, not by this record) for the
 * gate's decision and its approvers.
 */
export interface PreApproval {
  by: string;
  at: string;
  comment: string;
  /** The parent run's workflow id, its gate and that gate's opening (runs from before these fields lack them). */
  parent?: string;
  gate?: string;
  nonce?: string;
}

/** A parent's gate decision as the parent itself reports it. */
export interface VerifiedPreApproval {
  parent: string;
  gate: string;
  nonce?: string;
  at: string;
  comment: string;
  /** Distinct people who approved the parent's gate, in order. */
  approvers: string[];
}

/** Where the run came from, as the server and the worker see it. */
export type RunOrigin =
  | { kind: 'client' }
  | { kind: 'schedule'; scheduleId: string; verified: boolean; why?: string; initiator?: string }
  | { kind: 'parent'; workflowId: string; workflowType?: string; verified: boolean; why?: string; initiator?: string }
  /**
   * Started by a sentinel on a declared failure: verified only if that sentinel is an open sentinel of this
   * worker that declared this very start; `policy` and `vetoSeconds` are the worker config's for the target.
   */
  | { kind: 'sentinel'; workflowId: string; verified: boolean; why?: string; initiator?: string; policy?: SentinelTrigger['policy']; vetoSeconds?: number };

/** A sentinel's verified declaration: with policy auto, the run's promote gate is decided by the quorum after the veto window. */
export interface VerifiedSentinel {
  sentinel: string;
  policy: SentinelTrigger['policy'];
  vetoSeconds: number;
  trigger: SentinelTrigger & { declaration: string };
}

export interface AdmissionRequest {
  runbook: string;
  workflowId: string;
  firstExecutionRunId: string;
  workflowType: string;
  namespace: string;
  /** The run's task queue: a parent must run on the same one (this worker's), not on a queue anyone could serve. */
  taskQueue: string;
  /** The parent the server recorded (workflowInfo().parent), never one the input names. */
  parent?: { workflowId: string; runId: string; namespace: string };
  /** The server's TemporalScheduledById, when it set one. */
  scheduledBy?: string;
  /** startDigest of the run's input: a scheduled run's input must be what the worker's config schedules. */
  inputDigest?: string;
  /** A signed start's signing time: the activity looks for an earlier run of this id started since then. */
  signedAt?: string;
  preApproval?: PreApproval;
  /** run.trigger: the sentinel declaration the run says it was started for. */
  trigger?: SentinelTrigger & { declaration: string };
  /** What the run acts on (its first target), which a sentinel's declaration must name. */
  target?: string;
}

/** What the admission activity found; judged by admitRun in the workflow. */
export interface AdmissionFacts {
  policy: TrustedPolicy;
  origin: RunOrigin;
  preApproval?: { verified: VerifiedPreApproval } | { refused: string };
  /** Another run of this workflow id started since the start was signed: a signature starts one run. */
  signatureUsedBy?: string;
}

export interface GivenRun {
  context: RunContext;
  gates: Readonly<Record<string, GatePolicy>>;
  /** The workflow's whole input, which a start signature covers. */
  input?: unknown;
  workflowId: string;
  workflowType: string;
  startTime: Date;
  preApproved?: PreApproval;
}

export interface Admission {
  /** Why the run may not go on; empty when admitted. */
  refusals: string[];
  /** The context the run uses: the given one narrowed to the worker's policy, keys from the worker. */
  context: RunContext;
  gates: Record<string, GatePolicy>;
  preApproval?: VerifiedPreApproval;
  /** The sentinel that started the run, verified with it (absent: a person or a Schedule started it). */
  sentinel?: VerifiedSentinel;
  /** One line for the record: where the run came from and how it was admitted. */
  summary: string;
}

/** How long before the run's start a start may have been signed. */
export const START_SIGNATURE_MAX_AGE_SECONDS = 600;
/** How far after the run's start a signature's time may be (clock skew between the signer and the server). */
export const START_SIGNATURE_SKEW_SECONDS = 60;

/** Decides whether a run may go on, and with which policy. Pure: the same facts give the same answer in replay. */
export function admitRun(facts: AdmissionFacts, given: GivenRun): Admission {
  const { policy, origin } = facts;
  const malformed = malformedInput(given);
  if (malformed) return { refusals: [malformed], context: given.context, gates: {}, summary: 'refused: malformed input' };
  const refusals: string[] = [];
  const widenings: string[] = [];
  const people = narrowPeople(policy.people, given.context.people, widenings);
  for (const [who, key] of Object.entries(given.context.approvalKeys ?? {})) {
    if (lookup(policy.approvalKeys, who) !== key) widenings.push(`approvalKeys.${who}: not the key the worker's config has for them`);
  }
  if (policy.signatures === 'required' && given.context.signatures !== 'required') {
    widenings.push(`signatures: the worker requires signed decisions (approvals.signatures: required), the input says ${given.context.signatures ?? 'optional'}`);
  }
  const gates = narrowGates(policy.gates, given.gates, widenings);
  if (policy.strict) {
    const unruled = Object.keys(given.gates).filter((id) => !Object.hasOwn(policy.gates, id));
    if (unruled.length > 0) refusals.push(`the worker's config has no rules for gate ${unruled.join(', ')} of this runbook: configure runbooks.<runbook>.gates on the worker`);
  }
  if (widenings.length > 0) refusals.push(`the run's input disagrees with the worker's policy (it may narrow it, never widen it): ${widenings.join('; ')}`);
  const signatures = policy.signatures === 'required' || given.context.signatures === 'required' ? 'required' : 'optional';
  const approvalKeys = Object.fromEntries(Object.entries(policy.approvalKeys).filter(([who]) => Object.hasOwn(people, who)));
  const { startSignature, signedAt, ...rest } = given.context;
  const context: RunContext = { ...rest, people, ...(Object.keys(approvalKeys).length > 0 || signatures === 'required' ? { approvalKeys, signatures } : {}) };

  const initiator = given.context.initiator;
  const roles = lookup(people, initiator);
  if (!roles || !hasRole(roles, ROLE_SETS.forceStart)) {
    refusals.push(`'${initiator}' may not start runs by the worker's config (needs the ${ROLE_SETS.forceStart.join(' or ')} role; has ${roles?.join(', ') || 'no entry under people:'})`);
  }
  const vouched = judgeOrigin(origin, initiator, refusals);
  if (startSignature !== undefined) {
    const why = refuseStartSignature(given, policy, startSignature, signedAt);
    if (why) refusals.push(why);
    else if (facts.signatureUsedBy) refusals.push(`this signed start was already used by run ${facts.signatureUsedBy} of ${given.workflowId}: a signature starts one run; sign the start again`);
  } else if (signatures === 'required' && !vouched) {
    refusals.push(`this worker requires signed starts (approvals.signatures: required): start it with 'lifeboat start … --as ${initiator} --key <${initiator}'s private key>'`);
  }
  let preApproval: VerifiedPreApproval | undefined;
  if (given.preApproved) {
    if (origin.kind !== 'parent' || !origin.verified) {
      refusals.push(`a pre-approval (by ${given.preApproved.by}) is honoured only in a child of a Lifeboat run of this worker; this run ${origin.kind === 'parent' ? `has a parent that is not one (${origin.why ?? 'unverified'})` : 'has no parent'}: nothing was pre-approved`);
    } else if (!facts.preApproval) {
      refusals.push('the pre-approval could not be checked with the parent run');
    } else if ('refused' in facts.preApproval) {
      refusals.push(`the pre-approval does not match the parent's record: ${facts.preApproval.refused}`);
    } else {
      preApproval = facts.preApproval.verified;
    }
  }
  let sentinel: VerifiedSentinel | undefined;
  const trigger = given.context.trigger;
  if (trigger !== undefined && (origin.kind !== 'sentinel' || !origin.verified)) {
    refusals.push(`the run says sentinel ${trigger.sentinel} started it on a declared failure, but ${origin.kind === 'sentinel' ? `that sentinel does not vouch for it (${origin.why ?? 'unverified'})` : `it was started by a ${origin.kind}`}: start it as a person, without a trigger`);
  } else if (trigger !== undefined && origin.kind === 'sentinel') {
    sentinel = { sentinel: origin.workflowId, policy: origin.policy ?? 'confirm', vetoSeconds: origin.vetoSeconds ?? 60, trigger };
  }
  const summary = `${describeOrigin(origin)}; policy from the worker's config (signatures ${signatures}${startSignature !== undefined ? ', start signed' : ''})`;
  return { refusals, context, gates, preApproval, ...(sentinel ? { sentinel } : {}), summary };
}

/** What makes the input unreadable as a run's context and gate rules (the run is refused, never crashed on). */
function malformedInput(given: GivenRun): string | undefined {
  const { context, gates } = given;
  const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  if (!isRecord(context)) return 'the run context (run) must be an object';
  if (typeof context.initiator !== 'string' || context.initiator === '') return 'the run context must name its initiator';
  if (!isRecord(context.people) || !Object.values(context.people).every((r) => Array.isArray(r) && r.every((x) => typeof x === 'string'))) {
    return 'run.people must map each person to a list of roles';
  }
  if (context.approvalKeys !== undefined && (!isRecord(context.approvalKeys) || !Object.values(context.approvalKeys).every((k) => typeof k === 'string'))) {
    return 'run.approvalKeys must map people to base64 public keys';
  }
  if (context.trigger !== undefined && (!isRecord(context.trigger) || typeof context.trigger.sentinel !== 'string' || typeof context.trigger.declaration !== 'string' || !isRecord(context.trigger.target) || !Array.isArray(context.trigger.votes))) {
    return 'run.trigger must be a sentinel declaration (sentinel, declaration, target, votes)';
  }
  if (!isRecord(gates)) return 'the gate rules must be an object';
  const seconds = (v: unknown) => typeof v === 'number' && Number.isFinite(v) && v >= 0;
  for (const [id, rule] of Object.entries(gates)) {
    if (!isRecord(rule) || !seconds(rule.escalateAfterSeconds) || !seconds(rule.timeoutSeconds) || (rule.twoPerson !== undefined && typeof rule.twoPerson !== 'boolean')) {
      return `gate rule ${id} must have escalateAfterSeconds and timeoutSeconds (seconds, finite) and an optional boolean twoPerson`;
    }
  }
  return undefined;
}

/** The given people, each with no role the worker's config does not give them. */
function narrowPeople(trusted: Record<string, Role[]>, given: Record<string, Role[]>, widenings: string[]): Record<string, Role[]> {
  const people: Record<string, Role[]> = {};
  for (const [who, roles] of Object.entries(given)) {
    const allowed = lookup(trusted, who);
    if (!allowed) {
      widenings.push(`people.${who}: not a person in the worker's config`);
      continue;
    }
    const extra = roles.filter((r) => !allowed.includes(r));
    if (extra.length > 0) widenings.push(`people.${who}: role ${extra.join(', ')} is not theirs in the worker's config (${allowed.join(', ') || 'none'})`);
    people[who] = roles.filter((r) => allowed.includes(r));
  }
  return people;
}

/** The worker's gate rules, tightened where the input is stricter; a looser one is a widening. */
function narrowGates(trusted: Record<string, GatePolicy>, given: Readonly<Record<string, GatePolicy>>, widenings: string[]): Record<string, GatePolicy> {
  const gates: Record<string, GatePolicy> = { ...given };
  for (const [id, rule] of Object.entries(trusted)) {
    const asked = lookup(given, id);
    if (!asked) {
      gates[id] = rule;
      continue;
    }
    if (rule.twoPerson && !asked.twoPerson) widenings.push(`gates.${id}: the worker's config requires two approvers`);
    if (asked.timeoutSeconds > rule.timeoutSeconds) widenings.push(`gates.${id}.timeoutSeconds: ${asked.timeoutSeconds} is longer than the worker's ${rule.timeoutSeconds}`);
    if (asked.escalateAfterSeconds > rule.escalateAfterSeconds) widenings.push(`gates.${id}.escalateAfterSeconds: ${asked.escalateAfterSeconds} is longer than the worker's ${rule.escalateAfterSeconds}`);
  }
  return gates;
}

/** Whether the origin vouches for the start in place of a signature; records why an origin that claims to be one is not. */
function judgeOrigin(origin: RunOrigin, initiator: string, refusals: string[]): boolean {
  if (origin.kind === 'schedule') {
    if (!origin.verified) {
      refusals.push(`the run carries the Schedule id ${origin.scheduleId}, but that Schedule does not vouch for it (${origin.why ?? 'unverified'})`);
      return false;
    }
    if (origin.initiator !== undefined && origin.initiator !== initiator) {
      refusals.push(`a scheduled run starts as ${origin.initiator} (schedules.initiator in the worker's config), not as '${initiator}'`);
      return false;
    }
    return true;
  }
  if (origin.kind === 'sentinel' && origin.verified) {
    if (origin.initiator !== initiator) {
      refusals.push(`a sentinel's run starts as ${origin.initiator ?? '?'} (sentinels.identity in the worker's config), not as '${initiator}'`);
      return false;
    }
    return true;
  }
  if (origin.kind === 'parent' && origin.verified) {
    if (origin.initiator !== initiator) {
      refusals.push(`a child run starts as its parent's initiator (${origin.initiator ?? '?'}), not as '${initiator}'`);
      return false;
    }
    return true;
  }
  return false;
}

function refuseStartSignature(given: GivenRun, policy: TrustedPolicy, signature: string, signedAt: string | undefined): string | undefined {
  const initiator = given.context.initiator;
  const key = lookup(policy.approvalKeys, initiator);
  if (!key) return `the start is signed, but '${initiator}' has no publicKey in the worker's config: it cannot be verified`;
  if (given.input === undefined) return 'the start is signed, but this runbook does not hand its input to the kernel: it cannot be verified';
  const message = startMessage({ workflowId: given.workflowId, workflowType: given.workflowType, initiator, inputDigest: startDigest(given.input) });
  if (!verifySigned(message, signature, key)) {
    return `the start signature is not ${initiator}'s signature of this start (workflow ${given.workflowId}, ${given.workflowType}, this input): signed with another key, for another run, or the input was altered`;
  }
  const at = signedAt === undefined ? Number.NaN : Date.parse(signedAt);
  const age = given.startTime.getTime() - at;
  // Signed before the start (a minute's clock skew allowed), and recently.
  if (Number.isNaN(at) || age > START_SIGNATURE_MAX_AGE_SECONDS * 1000 || age < -START_SIGNATURE_SKEW_SECONDS * 1000) {
    return `the start was signed at ${signedAt ?? '(no time)'}, not within the ${START_SIGNATURE_MAX_AGE_SECONDS}s before the run's start: sign it again`;
  }
  return undefined;
}

function describeOrigin(origin: RunOrigin): string {
  switch (origin.kind) {
    case 'client':
      return 'started by a client';
    case 'schedule':
      return `started by Schedule ${origin.scheduleId}${origin.verified ? ' (verified with the server)' : ' (not verified)'}`;
    case 'parent':
      return `started by ${origin.workflowType ?? 'a workflow'} ${origin.workflowId}${origin.verified ? ' (a Lifeboat run of this worker)' : ` (${origin.why ?? 'not verified'})`}`;
    case 'sentinel':
      return `started by sentinel ${origin.workflowId} on a declared failure${origin.verified ? ` (verified with the sentinel; policy ${origin.policy ?? 'confirm'})` : ` (${origin.why ?? 'not verified'})`}`;
  }
}
