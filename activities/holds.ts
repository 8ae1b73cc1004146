/**
 * Hold activities: read a target's hold and its members from the Temporal
 * server, for the kernel's claim and the hold's liveness check. The client is
 * the worker's own (its connection and data converter).
 */
import { ApplicationFailure } from '@temporalio/common';
import type { Client } from '@temporalio/client';
import type { HoldInspection, HoldMember, TargetRef } from '../contract/holds';
import { FailureType } from '../contract/failures';
import { inspectHold, openMembers } from '../lib/holds';

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
  };
}

export type HoldActivities = ReturnType<typeof createHoldActivities>;
