/**
 * Hold activities: read a target's hold and its members from the Temporal
 * server, for the kernel's claim and join, and for the hold's liveness and join
 * checks. The client is the worker's own (its connection and data converter).
 */
import { ApplicationFailure } from '@temporalio/common';
import type { Client } from '@temporalio/client';
import type { HoldInspection, HoldMember, JoinDecision, JoinVerdict, TargetRef } from '../contract/holds';
import { FailureType } from '../contract/failures';
import { admission, inspectHold, joinDecision, openMembers } from '../lib/holds';

export function createHoldActivities(deps: { client?: Client }) {
  const client = (): Client => {
    if (!deps.client) throw ApplicationFailure.nonRetryable('this worker has no Temporal client for target holds', FailureType.NotConfigured);
    return deps.client;
  };
  return {
    /** Who holds `target`; ends a hold whose members have all ended. */
    async inspectHold(input: { target: TargetRef }): Promise<HoldInspection> {
      return inspectHold(client(), input.target, { endOrphan: true });
    },
    /** Which of `members` still run. */
    async openMembers(input: { members: HoldMember[] }): Promise<{ open: HoldMember[] }> {
      return { open: await openMembers(client(), input.members) };
    },
    /** For the hold: may `joiner` join (its server-recorded parent is an open member)? */
    async verifyJoiner(input: { members: HoldMember[]; joiner: HoldMember }): Promise<JoinVerdict> {
      return admission(client(), input.members, input.joiner);
    },
    /** For a joiner: did the hold let it in? Retried as a poll (JoinUndecided) until the hold has decided. */
    async joinDecision(input: { target: TargetRef; joiner: HoldMember }): Promise<JoinDecision> {
      const decision = await joinDecision(client(), input.target, input.joiner);
      if (!decision) throw ApplicationFailure.retryable(`the hold has not decided on ${input.joiner.workflowId} yet`, FailureType.JoinUndecided);
      return decision;
    },
  };
}

export type HoldActivities = ReturnType<typeof createHoldActivities>;
