/**
 * A target's hold: claimed by starting this workflow under the target's id
 * (the server refuses a second start while it runs) as a child of the run it
 * names as holder (any other start ends at once), left when every member
 * has ended (a member's release only makes it check soon). It never outlives
 * its members: it checks them on a timer, and a contender that finds them all
 * ended ends it at once.
 */
import { ApplicationFailure, condition, continueAsNew, log, patched, proxyActivities, setCurrentDetails, setHandler, workflowInfo } from '@temporalio/workflow';
import type { HoldActivities } from '../activities/holds';
import {
  holdQuery,
  joinHoldSignal,
  releaseHoldSignal,
  describeTarget,
  memberOf,
  sameMember,
  type HoldMember,
  type TargetHoldInput,
} from '../contract/holds';
import { FailureType } from '../contract/failures';

/** Holds from before the claimant was checked replay without the check. */
const PATCH_CLAIMED_BY_HOLDER = 'lifeboat-hold-claimed-by-holder';

/** Holds from before a release was only a prompt replay dropping the member the signal names. */
const PATCH_RELEASE_PROMPTS = 'lifeboat-hold-release-prompts';

/** How often the hold checks that its members still run (a terminated holder cannot release). */
const LIVENESS_CHECK_MS = 30_000;

/** After a release the hold checks again this soon, then at its liveness cadence: a member releases just before it closes. */
const RECHECKS_AFTER_RELEASE_MS: readonly number[] = [500, 1_000, 2_000, 4_000, 8_000];

const holds = proxyActivities<HoldActivities>({
  startToCloseTimeout: '20 seconds',
  retry: { initialInterval: '1 second', maximumAttempts: 3 },
});

/** Holds `input.target` for `input.holder` and the child runs it lets in. */
export async function targetHold(input: TargetHoldInput): Promise<{ releasedAt: string }> {
  if (patched(PATCH_CLAIMED_BY_HOLDER)) endUnlessClaimedByHolder(input);
  const releaseIsPrompt = patched(PATCH_RELEASE_PROMPTS);
  let releasePrompted = false;
  let rechecks: number[] = [];
  let members: HoldMember[] = input.members ?? [memberOf(input.holder)];
  const render = () =>
    setCurrentDetails(`**${describeTarget(input.target)}** is held by \`${input.holder.workflowId}\` (${input.holder.runbook}, ${input.holder.initiator}, started ${input.holder.startedAt}); members: ${members.map((m) => `\`${m.workflowId}\``).join(', ')}`);
  setHandler(holdQuery, () => ({ target: input.target, holder: input.holder, members: [...members] }));
  setHandler(joinHoldSignal, (member) => {
    if (isMember(member) && !members.some((m) => sameMember(m, member))) members.push(memberOf(member));
    render();
  });
  setHandler(releaseHoldSignal, (member) => {
    if (!isMember(member)) return;
    // Anyone may send it (with any member's ids): the member leaves when the server says its run has closed.
    if (releaseIsPrompt) releasePrompted = true;
    else members = members.filter((m) => !sameMember(m, member));
    render();
  });
  render();
  while (members.length > 0) {
    await condition(() => members.length === 0 || releasePrompted, rechecks[0] ?? LIVENESS_CHECK_MS);
    if (members.length === 0) break;
    if (releasePrompted) {
      releasePrompted = false;
      rechecks = [...RECHECKS_AFTER_RELEASE_MS];
      continue;
    }
    rechecks.shift();
    const { open } = await holds.openMembers.executeWithOptions(
      { startToCloseTimeout: '20 seconds', retry: { initialInterval: '1 second', maximumAttempts: 3 }, summary: `hold ${describeTarget(input.target)}: are its members still running?` },
      [{ members }],
    ).catch(() => ({ open: members })); // unknown is not ended: keep the hold
    members = members.filter((m) => open.some((o) => sameMember(o, m)));
    render();
    // Not between the checks after a release: the member is about to close, and the next run would wait the full cadence.
    if (members.length > 0 && rechecks.length === 0 && workflowInfo().continueAsNewSuggested) {
      await continueAsNew<typeof targetHold>({ ...input, members });
    }
  }
  return { releasedAt: new Date().toISOString() };
}

/**
 * Only its holder's own claim holds a target: the hold must be the child of the run it names. A raw
 * `temporal workflow start --type targetHold` has no parent (or another one) and ends at once, holding
 * nothing. The server carries the parent across continue-as-new, so every run of a hold passes the same check.
 */
function endUnlessClaimedByHolder(input: TargetHoldInput): void {
  const { parent } = workflowInfo();
  if (parent?.workflowId === input.holder.workflowId && parent.runId === input.holder.runId) return;
  const startedBy = parent ? `${parent.workflowId} (run ${parent.runId})` : 'no run (a raw start)';
  const message = `this hold on ${describeTarget(input.target)} names ${input.holder.workflowId} (run ${input.holder.runId}) as its holder but was started by ${startedBy}: it holds nothing and ends`;
  log.warn(message, { target: input.target, holder: input.holder, parent });
  throw ApplicationFailure.create({ type: FailureType.HoldNotClaimed, message, nonRetryable: true });
}

function isMember(value: unknown): value is HoldMember {
  if (typeof value !== 'object' || value === null) return false;
  const { workflowId, runId, firstExecutionRunId } = value as Partial<Record<keyof HoldMember, unknown>>;
  return typeof workflowId === 'string' && typeof runId === 'string' && (firstExecutionRunId === undefined || typeof firstExecutionRunId === 'string');
}
