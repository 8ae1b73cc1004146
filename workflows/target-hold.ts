/**
 * A target's hold: claimed by starting this workflow under the target's id
 * (the server refuses a second start while it runs) as a child of the run it
 * names as holder (any other start ends at once), joined by the runs whose
 * parent is a member, left when every member has ended (a member's release
 * only makes it check soon). It never outlives
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
  type JoinVerdict,
  type TargetHoldInput,
  type TurnedAway,
} from '../contract/holds';
import { FailureType } from '../contract/failures';
import { call } from './call';

/** Holds from before the claimant was checked replay without the check. */
const PATCH_CLAIMED_BY_HOLDER = 'lifeboat-hold-claimed-by-holder';

/** Holds from before a release was only a prompt replay dropping the member the signal names. */
const PATCH_RELEASE_PROMPTS = 'lifeboat-hold-release-prompts';

/** Holds from before joiners were verified replay letting in whoever the signal names. */
const PATCH_VERIFIED_JOINS = 'lifeboat-hold-verified-joins';

/** How often the hold checks that its members still run (a terminated holder cannot release). */
const LIVENESS_CHECK_MS = 30_000;

/** After a release the hold checks again this soon, then at its liveness cadence: a member releases just before it closes. */
const RECHECKS_AFTER_RELEASE_MS: readonly number[] = [500, 1_000, 2_000, 4_000, 8_000];

/** How many turned-away joiners the hold keeps for them to read back. */
const TURNED_AWAY_KEPT = 20;

const holdActivityOptions = {
  startToCloseTimeout: '20 seconds',
  retry: { initialInterval: '1 second', maximumAttempts: 3 },
} as const;

const holds = proxyActivities<HoldActivities>(holdActivityOptions);

/** Holds `input.target` for `input.holder` and the child runs it lets in. */
export async function targetHold(input: TargetHoldInput): Promise<{ releasedAt: string }> {
  if (patched(PATCH_CLAIMED_BY_HOLDER)) endUnlessClaimedByHolder(input);
  const hold = new Hold(input, { releaseIsPrompt: patched(PATCH_RELEASE_PROMPTS), joinsVerified: patched(PATCH_VERIFIED_JOINS) });
  await hold.untilEveryMemberHasEnded();
  return { releasedAt: new Date().toISOString() };
}

/** The hold's members and what it was asked: signals only queue work, the loop asks the server. */
class Hold {
  private members: HoldMember[];
  private readonly joins: HoldMember[] = [];
  private turnedAway: TurnedAway[] = [];
  private releasePrompted = false;
  private rechecks: number[] = [];

  constructor(
    private readonly input: TargetHoldInput,
    private readonly rules: { releaseIsPrompt: boolean; joinsVerified: boolean },
  ) {
    this.members = input.members ?? [memberOf(input.holder)];
    setHandler(holdQuery, () => ({ target: input.target, holder: input.holder, members: [...this.members], turnedAway: [...this.turnedAway] }));
    setHandler(joinHoldSignal, (joiner) => this.onJoin(joiner));
    setHandler(releaseHoldSignal, (member) => this.onRelease(member));
    this.render();
  }

  async untilEveryMemberHasEnded(): Promise<void> {
    while (this.members.length > 0) {
      await condition(() => this.members.length === 0 || this.releasePrompted || this.joins.length > 0, this.rechecks[0] ?? LIVENESS_CHECK_MS);
      if (this.members.length === 0) break;
      const joiner = this.joins.shift();
      if (joiner) await this.admit(joiner);
      else if (this.releasePrompted) this.checkSoon();
      else await this.checkMembers();
    }
  }

  private onJoin(joiner: unknown): void {
    if (!isMember(joiner)) return;
    if (this.rules.joinsVerified) this.joins.push(memberOf(joiner));
    else if (!this.members.some((m) => sameMember(m, joiner))) this.members.push(memberOf(joiner));
    this.render();
  }

  private onRelease(member: unknown): void {
    if (!isMember(member)) return;
    // Anyone may send it (with any member's ids): the member leaves when the server says its run has closed.
    if (this.rules.releaseIsPrompt) this.releasePrompted = true;
    else this.members = this.members.filter((m) => !sameMember(m, member));
    this.render();
  }

  /** Lets `joiner` in only on the server's word that its parent is an open member (whoever sent the signal). */
  private async admit(joiner: HoldMember): Promise<void> {
    if (this.members.some((m) => m.workflowId === joiner.workflowId && m.runId === joiner.runId)) return;
    const verdict = await call(holds.verifyJoiner, holdActivityOptions, `hold ${describeTarget(this.input.target)}: may ${joiner.workflowId} join?`, { members: this.members, joiner }).catch((): JoinVerdict => ({ refused: 'its parent could not be checked' })); // unknown is not a member
    if ('admitted' in verdict) {
      const { admitted } = verdict;
      if (!this.members.some((m) => sameMember(m, admitted))) this.members.push(admitted);
    } else {
      this.turnedAway = [...this.turnedAway, { joiner, reason: verdict.refused }].slice(-TURNED_AWAY_KEPT);
      log.warn('a run asked to join this hold and was turned away', { target: this.input.target, joiner, reason: verdict.refused });
    }
    this.render();
  }

  /** A member said it is leaving: ask the server a few times over the next seconds. */
  private checkSoon(): void {
    this.releasePrompted = false;
    this.rechecks = [...RECHECKS_AFTER_RELEASE_MS];
  }

  private async checkMembers(): Promise<void> {
    this.rechecks.shift();
    const { open } = await call(holds.openMembers, holdActivityOptions, `hold ${describeTarget(this.input.target)}: are its members still running?`, { members: this.members }).catch(() => ({ open: this.members })); // unknown is not ended: keep the hold
    this.members = this.members.filter((m) => open.some((o) => sameMember(o, m)));
    this.render();
    // Not with work queued, nor between the checks after a release (the next run would wait the full cadence).
    if (this.members.length > 0 && this.joins.length === 0 && this.rechecks.length === 0 && workflowInfo().continueAsNewSuggested) {
      await continueAsNew<typeof targetHold>({ ...this.input, members: this.members });
    }
  }

  private render(): void {
    const { target, holder } = this.input;
    setCurrentDetails(`**${describeTarget(target)}** is held by \`${holder.workflowId}\` (${holder.runbook}, ${holder.initiator}, started ${holder.startedAt}); members: ${this.members.map((m) => `\`${m.workflowId}\``).join(', ')}`);
  }
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
