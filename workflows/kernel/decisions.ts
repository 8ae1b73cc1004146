/**
 * Who may decide a gate or resolve a run: pure checks shared by the `decide`
 * Update's validator and the `approve`/`reject`/`resolve` signal handlers, so a
 * raw signal cannot bypass a rule the CLI path enforces. A message's shape is
 * checked first, by its schema (contract/requests.ts); then the rules.
 */
import { verifyApproval, verifySigned } from '../../contract/approvals';
import { lookup } from '../../contract/records';
import { decisionSchema, resolutionSchema, shapeRefusal } from '../../contract/requests';
import { hasRole, ROLE_SETS, type DecideRequest, type GateStatus, type ResolveRequest, type RunContext } from '../../contract/runbook';


/** Returns why the decision is refused, or undefined when it may be applied. */
export function refuseDecision(
  request: unknown,
  gates: readonly GateStatus[],
  context: RunContext,
  /** The run a signature must be bound to. */
  binding: { workflowId: string } = { workflowId: '' },
): string | undefined {
  const malformed = shapeRefusal(decisionSchema, request);
  if (malformed) return malformed;
  const r = request as Partial<DecideRequest> & Pick<DecideRequest, 'gate' | 'approver'>;
  const gate = gates.find((g) => g.id === r.gate);
  if (!gate) return `unknown gate '${r.gate}': this runbook's gates are ${gates.map((g) => g.id).join(', ')}`;
  if (gate.state !== 'waiting') {
    const how = gate.decidedBy ? ` by ${gate.decidedBy} at ${gate.decidedAt ?? '?'}` : '';
    return `gate '${gate.id}' is not waiting for a decision (it is ${gate.state}${how})`;
  }
  if (r.nonce !== undefined && r.nonce !== gate.nonce) {
    return `the decision is for an earlier opening of gate '${gate.id}' (nonce ${r.nonce}; the current one is ${gate.nonce ?? 'none'})`;
  }
  const roles = lookup(context.people, r.approver);
  if (!roles) return `'${r.approver}' is not a configured person: add them under people: in the config`;
  if (!hasRole(roles, ROLE_SETS.decide)) {
    return `'${r.approver}' does not have the approver role (roles: ${roles.join(', ') || 'none'})`;
  }
  if (r.approver === context.initiator) {
    return `'${r.approver}' started this run and may not decide its gates (separation of duties)`;
  }
  if (r.decision !== 'reject' && gate.approvals?.some((a) => a.by === r.approver)) {
    return `'${r.approver}' already approved gate '${gate.id}': a two-person gate needs a second, different approver`;
  }
  if (r.decision === 'reject' && (typeof r.comment !== 'string' || r.comment.trim() === '')) {
    return 'a rejection needs a reason (comment)';
  }
  return refuseSignature(r, gate, context, binding.workflowId);
}

/** Signed approvals: the signature must verify against the approver's configured key, for this run and this gate opening. */
function refuseSignature(r: Partial<Record<keyof DecideRequest, unknown>>, gate: GateStatus, context: RunContext, workflowId: string): string | undefined {
  const approver = String(r.approver);
  if (r.signature === undefined) {
    return context.signatures === 'required' ? `gate decisions on this run must be signed (approvals.signatures: required): sign with 'lifeboat approve --key <file>'` : undefined;
  }
  const key = lookup(context.approvalKeys ?? {}, approver);
  if (!key) return `'${approver}' has no publicKey in the config: a signed decision cannot be verified`;
  const fields = {
    workflowId,
    gate: gate.id,
    nonce: gate.nonce ?? '',
    decision: r.decision === 'reject' ? ('reject' as const) : ('approve' as const),
    approver,
    comment: typeof r.comment === 'string' ? r.comment : '',
  };
  if (!verifyApproval(fields, String(r.signature), key)) {
    return `the signature is not ${approver}'s signature of this decision (run ${workflowId}, gate ${gate.id}, opening ${gate.nonce ?? '?'}): signed with another key, for another run or gate opening, or altered`;
  }
  return undefined;
}

export function refuseOperator(by: unknown, context: RunContext, what: string): string | undefined {
  if (typeof by !== 'string' || by.length === 0) return `${what} must name who does it`;
  const roles = lookup(context.people, by);
  if (!roles) return `'${by}' is not a configured person: add them under people: in the config`;
  if (!hasRole(roles, ROLE_SETS.operate)) {
    return `'${by}' may not ${what} (needs the commander or admin role; has ${roles.join(', ') || 'none'})`;
  }
  return undefined;
}

/**
 * A command other than a gate decision (a cancel, a resolution) signed like one: required when the run's
 * policy requires signatures, verified whenever one is given. `message` is what the signer signed.
 */
export function refuseSignedCommand(signature: unknown, by: string, context: RunContext, what: 'cancel' | 'resolution', message: () => Uint8Array): string | undefined {
  if (signature === undefined) {
    return context.signatures === 'required' ? `a ${what} on this run must be signed (approvals.signatures: required): sign with --key <file>` : undefined;
  }
  if (typeof signature !== 'string') return 'the signature must be a base64 string';
  const key = lookup(context.approvalKeys ?? {}, by);
  if (!key) return `'${by}' has no publicKey in the config: a signed ${what} cannot be verified`;
  if (!verifySigned(message(), signature, key)) {
    return `the signature is not ${by}'s signature of this ${what}: signed with another key, for another run or request, or altered`;
  }
  return undefined;
}

export function refuseResolve(request: unknown, context: RunContext, needsAttention: boolean): string | undefined {
  const malformed = shapeRefusal(resolutionSchema, request);
  if (malformed) return malformed;
  const who = refuseOperator((request as ResolveRequest).by, context, 'resolve a run');
  if (who) return who;
  if (!needsAttention) return 'the run is not waiting for a resolution (it is not in needs-attention)';
  return undefined;
}
