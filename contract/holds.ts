/**
 * Contract of target holds: at most one run that may change a database or a
 * region holds it, whatever its workflow id, its starter or its schedule. A
 * hold is a small workflow per target (`lifeboat-hold:<kind>:<name>`); the
 * server's workflow-id uniqueness makes the claim atomic, and the hold lives
 * only as long as one of its members (the holder and the child runs it lets in).
 */
import { defineQuery, defineSignal } from '@temporalio/workflow';

export const TARGET_HOLD_WORKFLOW_TYPE = 'targetHold' as const;

/** What a run may change: a database (promotion, failback) or a region (evacuation, failback, drills). */
export interface TargetRef {
  kind: 'database' | 'region';
  name: string;
}

/** One run in a hold: the holder that claimed it, or a child run it let in. */
export interface HoldMember {
  workflowId: string;
  /** The run that claimed or joined. */
  runId: string;
  /**
   * The first run of its chain (`workflowInfo().firstExecutionRunId`, the server's `firstRunId`):
   * a reset or a continue-as-new of the member keeps it, a later run that reuses the workflow id
   * has its own. Absent in members recorded before it was kept: their `runId` stands for it.
   */
  firstExecutionRunId?: string;
}

export interface HolderInfo extends HoldMember {
  runbook: string;
  initiator: string;
  /** ISO time the holder started. */
  startedAt: string;
}

export interface TargetHoldInput {
  target: TargetRef;
  holder: HolderInfo;
  /** Child runs let in, carried across continue-as-new. */
  members?: HoldMember[];
}

export interface HoldState {
  target: TargetRef;
  holder: HolderInfo;
  members: HoldMember[];
  /** The last runs that asked to join and were not let in, with why (what the joiner reads back). */
  turnedAway?: TurnedAway[];
}

export interface TurnedAway {
  /** As the joinHold signal named it. */
  joiner: HoldMember;
  reason: string;
}

/** The server's word on a run that asks to join: let in (with its chain as the server records it), or why not. */
export type JoinVerdict = { admitted: HoldMember } | { refused: string };

/** What a joiner learns from the hold; undefined (the hold has not decided yet) is asked again. */
export type JoinDecision = { admitted: true } | { admitted: false; reason: string };

/** What a contender learns about a hold (read by an activity from the server, not from the hold's word alone). */
export interface HoldInspection {
  /** `free`: no hold, or a hold whose members have all ended (it is ended by the inspection). */
  state: 'free' | 'held';
  holder?: HolderInfo;
  /** The server's record of who started the hold (its parent execution). */
  claimedBy?: HoldMember;
  members?: HoldMember[];
  /**
   * Held, but every open member says (its status query) that it has reached its final state: it has
   * released the hold or is about to, and closes in a moment. A contender waits for it instead of being refused.
   */
  closing?: boolean;
  /** Human: `orders is held by db-promotion:orders (alice, started 21:02, waiting at gate promote)`. */
  description: string;
}

/** The run chain a member is: its reset and continued runs are the member, a new start under its id is not. */
export function memberChain(member: HoldMember): string {
  return member.firstExecutionRunId ?? member.runId;
}

export function sameMember(a: HoldMember, b: HoldMember): boolean {
  return a.workflowId === b.workflowId && memberChain(a) === memberChain(b);
}

/** A member as the hold keeps it (a holder's or a signal's other fields left out). */
export function memberOf(run: HoldMember): HoldMember {
  return run.firstExecutionRunId === undefined
    ? { workflowId: run.workflowId, runId: run.runId }
    : { workflowId: run.workflowId, runId: run.runId, firstExecutionRunId: run.firstExecutionRunId };
}

/** The workflow id of a target's hold. */
export function holdWorkflowId(target: TargetRef): string {
  return `lifeboat-hold:${target.kind}:${target.name}`;
}

export function describeTarget(target: TargetRef): string {
  return target.kind === 'region' ? `region ${target.name}` : target.name;
}

/**
 * A member says it is leaving. Anyone may send a signal, so it is only a prompt: the hold checks its
 * members again soon, and drops one only when the server says its run has closed.
 */
export const releaseHoldSignal = defineSignal<[HoldMember]>('releaseHold');
/**
 * A run asks to join the hold, itself or by its parent on its behalf (it changes the target on the
 * holder's decision). Anyone may send it: the hold lets the run in only when the server records its
 * parent as an open member.
 */
export const joinHoldSignal = defineSignal<[HoldMember]>('joinHold');
export const holdQuery = defineQuery<HoldState>('hold');
