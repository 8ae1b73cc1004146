/**
 * What a runbook declares to the kernel: its plan (the steps and gates in
 * order, with the point of no return) and the options a run is given (who,
 * what, the budgets and the gate policies). A plan declared `as const` types
 * its ids, so a step, gate or budget the plan does not name does not compile.
 */
import type { PreApproval } from '../../contract/governance';
import type { TargetRef } from '../../contract/holds';
import type { GatePolicy, RtoPolicy, RunContext } from '../../contract/runbook';

export interface StepDefinition {
  readonly id: string;
  readonly title: string;
  /** A point of no return: it must follow an approved gate, and seals the undos before it. */
  readonly irreversible?: boolean;
}

export interface GateDefinition {
  readonly id: string;
  readonly title: string;
  /** The irreversible step this gate guards. */
  readonly before?: string;
}

export interface Plan {
  readonly steps: readonly StepDefinition[];
  readonly gates: readonly GateDefinition[];
}

/** The ids of a plan's steps (`string` for a plan built at run time). */
export type StepId<P extends Plan> = P['steps'][number]['id'];

/** The ids of a plan's gates. */
export type GateId<P extends Plan> = P['gates'][number]['id'];

export interface RunbookRunOptions<P extends Plan = Plan> {
  runbook: string;
  /** What the run acts on (a database, a region), for the status and the UI. */
  target: string;
  plan: P;
  context: RunContext;
  rto: RtoPolicy;
  rpoTargetSeconds: number;
  /** Seconds per step, for the steps that have a budget. */
  stepBudgets: Readonly<Partial<Record<StepId<P>, number>>>;
  /** A policy for every gate of the plan. */
  gates: Readonly<Record<GateId<P>, GatePolicy>>;
  /** Tell the incident channel (email first) and page the on-call (SMS first) when the run fails, with the reason. */
  announceFailure?: boolean;
  /** What the run may change: claimed before the procedure's first step, so a second run on them is refused before it changes anything. */
  holds?: readonly TargetRef[];
  /** The workflow's own input, which the initiator's start signature covers (contract/approvals.ts startDigest). */
  input?: unknown;
  /** A parent run's gate decision this run was started with: verified with the parent at admission. */
  preApproved?: PreApproval;
}
