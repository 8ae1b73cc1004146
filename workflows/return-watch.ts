/**
 * The return watch a run leaves behind when it passed its point of no return
 * without reaching part of the lost region (contract/return-watch.ts). The
 * fence waits on the task queue of the old primary's region, so it runs the
 * moment a worker there polls again; meanwhile the watch checks from here
 * whether the node answers without such a worker and pages the on-call if it
 * takes writes. A service is frozen as soon as it answers. The watch is a
 * member of its target's hold until its duty is done.
 */
import {
  ApplicationFailure,
  CancellationScope,
  getExternalWorkflowHandle,
  isCancellation,
  proxyActivities,
  setCurrentDetails,
  sleep,
  workflowInfo,
  type ActivityOptions,
} from '@temporalio/workflow';
import { ActivityCancellationType } from '@temporalio/workflow';
import type { DatabaseActivities } from '../activities/database';
import type { NotificationActivities } from '../activities/notify';
import type { TrafficActivities } from '../activities/traffic';
import type { HoldActivities } from '../activities/holds';
import type { FenceResult, Notification } from '../contract/database';
import { FailureType } from '../contract/failures';
import { describeTarget, releaseHoldSignal, holdWorkflowId } from '../contract/holds';
import { hostTaskQueue } from '../contract/queues';
import { describeDuty, returnWatchTarget, type ReturnDuty, type ReturnWatchInput, type ReturnWatchResult } from '../contract/return-watch';
import { call } from './call';
import { failureMessage } from './kernel/failures';

/** Until its region's worker takes it: no start deadline. Each attempt may shut the node down (a checkpoint). */
const fenceOptions = {
  startToCloseTimeout: '3 minutes',
  heartbeatTimeout: '20 seconds',
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
  retry: { initialInterval: '5 seconds', maximumInterval: '1 minute', nonRetryableErrorTypes: [FailureType.UnknownDatabase, FailureType.NotConfigured] },
} as const satisfies ActivityOptions;

/** A service that does not answer is asked again every 30 s, for as long as the watch runs. */
const freezeOptions = {
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '5 seconds', maximumInterval: '30 seconds', nonRetryableErrorTypes: [FailureType.NotConfigured] },
} as const satisfies ActivityOptions;

const readOptions = {
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', maximumAttempts: 3 },
} as const satisfies ActivityOptions;

const db = proxyActivities<DatabaseActivities>(readOptions);
const app = proxyActivities<TrafficActivities>(freezeOptions);
const holds = proxyActivities<HoldActivities>(readOptions);
const notifications = proxyActivities<NotificationActivities>({
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '5 seconds', maximumInterval: '5 minutes' },
});

const DEFAULT_PROBE_SECONDS = 300;

type FenceDuty = Extract<ReturnDuty, { kind: 'fence' }>;

/** Watches for the lost part of a region to come back, then fences or freezes it. */
export async function returnWatch(input: ReturnWatchInput): Promise<ReturnWatchResult> {
  const { duty } = input;
  setCurrentDetails(`Left by \`${input.leftBy}\`: **${describeDuty(duty)}**. Cancel this watch only if ${duty.region} is gone for good.`);
  // Only a run that holds the target leaves a watch: a watch started by anyone else (a raw start) could
  // shut down a node nobody decided to fence, so it ends here having done nothing.
  await refuseUnlessLeftByHolder(duty);
  try {
    if (duty.kind === 'freeze') {
      await call(app.setWriteFreeze, freezeOptions, `freeze ${duty.region} service once it answers (left by ${input.leftBy})`, { region: duty.region, frozen: true, reason: `lost region back: frozen by the return watch of ${input.leftBy}`, skipIfUnreachable: false });
      const at = new Date().toISOString();
      await tell(input, 'incident', 'warning', `${duty.region} service answered again and was frozen`, `The ${duty.region} service, unreachable during ${input.leftBy}, answers again: risky writes there are frozen. Its traffic stays where ${input.leftBy} left it.`);
      return { duty: 'freeze', region: duty.region, at };
    }

    const fence = await fenceOnReturn(input, duty);
    const at = new Date().toISOString();
    const how = fence.fenced ? `fenced: ${fence.method ?? 'clean shutdown'}` : fence.reason;
    await tell(input, 'oncall', 'critical', `${duty.database}: old primary in ${duty.region} is back; ${fence.fenced ? 'fenced' : 'not fenced'}`, `${duty.database}'s old primary in ${duty.region}, unreachable when ${input.leftBy} promoted its standby, is back: ${how}. Rebuild it as a standby (failback) before it serves again.`);
    return { duty: 'fence', database: duty.database, region: duty.region, fence, at };
  } finally {
    // The hold ends with its last member; leaving it explicitly lets the next run in without waiting for the check.
    await CancellationScope.nonCancellable(() =>
      getExternalWorkflowHandle(holdWorkflowId(returnWatchTarget(duty))).signal(releaseHoldSignal, { workflowId: workflowInfo().workflowId, runId: workflowInfo().runId }).catch(() => undefined),
    );
  }
}

/** The server's record: this watch's parent holds (or is a member of) the hold on the watch's target. */
async function refuseUnlessLeftByHolder(duty: ReturnDuty): Promise<void> {
  const { parent } = workflowInfo();
  const target = returnWatchTarget(duty);
  const held = await call(holds.inspectHold, readOptions, `is ${describeTarget(target)} held by the run that left this watch?`, { target });
  const same = (m: { workflowId: string; runId: string } | undefined) => parent !== undefined && m?.workflowId === parent.workflowId && m.runId === parent.runId;
  if (held.state === 'held' && (same(held.claimedBy) || (held.members ?? []).some(same))) return;
  throw ApplicationFailure.create({
    type: FailureType.NotConfigured,
    message: `a return watch is left only by the run that holds ${describeTarget(target)} (${parent ? `started by ${parent.workflowId}, which does not hold it` : 'this one was started directly'}): nothing was done`,
    nonRetryable: true,
  });
}

/**
 * The fence waits on its region's queue and is tried again, however it fails, until the node is fenced or a
 * person cancels the watch: a watch never ends with the node unfenced. Meanwhile a probe from the main worker
 * pages the on-call whenever the node starts taking writes.
 */
async function fenceOnReturn(input: ReturnWatchInput, duty: FenceDuty): Promise<FenceResult> {
  const probeEvery = input.probeEverySeconds ?? DEFAULT_PROBE_SECONDS;
  const probes = new CancellationScope();
  const probing = probes.run(() => pageWhileWritable(input, duty, probeEvery));
  let lastError: string | undefined;
  try {
    for (;;) {
      try {
        return await call(db.fencePrimary, { ...fenceOptions, taskQueue: hostTaskQueue(workflowInfo().taskQueue, duty.region) }, `fence ${duty.database} old primary in ${duty.region} once its worker runs again`, { database: duty.database, mode: 'unplanned', towards: duty.towards, supersededOnly: true });
      } catch (err) {
        if (isCancellation(err)) throw err;
        const message = failureMessage(err);
        if (message !== lastError) {
          await tell(input, 'oncall', 'critical', `${duty.database}: could not fence the old primary in ${duty.region} (will try again)`, `The return watch left by ${input.leftBy} could not fence ${duty.database}'s old primary in ${duty.region}: ${message}. It tries again every ${probeEvery}s; until then stop that node by hand before anything routes to it.`);
          lastError = message;
        }
        await sleep(probeEvery * 1000, { summary: `fence ${duty.database} again after: ${message.slice(0, 80)}` });
      }
    }
  } finally {
    probes.cancel();
    await probing.catch(() => undefined);
  }
}

/** Pages once each time the old primary starts taking writes, from the main worker (one long activity per change). */
async function pageWhileWritable(input: ReturnWatchInput, duty: FenceDuty, everySeconds: number): Promise<void> {
  const probe = { ...readOptions, startToCloseTimeout: '1 day', heartbeatTimeout: `${everySeconds * 2 + 60} seconds`, retry: { initialInterval: '10 seconds', maximumInterval: '5 minutes' } };
  try {
    for (;;) {
      const writable = await call(db.awaitOldPrimary, probe, `wait for ${duty.database}'s old primary in ${duty.region} to take writes (read-only probe)`, { database: duty.database, towards: duty.towards, everySeconds, until: 'writable' });
      await tell(input, 'oncall', 'critical', `${duty.database}: old primary in ${duty.region} TAKES WRITES and is not fenced`,
        `${duty.database}'s old primary ${writable.node.host}:${writable.node.port} in ${duty.region} answers as a writable primary while its standby was promoted by ${input.leftBy}: two writable primaries. No Lifeboat worker of ${duty.region} has fenced it: start 'lifeboat worker --region ${duty.region}' on its host (the fence is waiting for it), or stop that node by hand.`);
      await call(db.awaitOldPrimary, probe, `wait for ${duty.database}'s old primary in ${duty.region} to stop taking writes (read-only probe)`, { database: duty.database, towards: duty.towards, everySeconds, until: 'not-writable' });
    }
  } catch (err) {
    if (!isCancellation(err)) throw err;
  }
}


async function tell(input: ReturnWatchInput, audience: Notification['audience'], severity: Notification['severity'], subject: string, body: string): Promise<void> {
  const notification: Notification = {
    audience,
    severity,
    kind: severity === 'critical' ? 'escalation' : 'status',
    subject: `[${input.runbook}${input.drill ? ' drill' : ''} return watch] ${subject}`,
    body,
    workflowId: workflowInfo().workflowId,
    runbook: input.runbook,
    incident: input.incident,
  };
  await call(notifications.notify, {}, `tell ${audience}: ${subject}`, notification).catch((err: unknown) => {
    if (isCancellation(err)) throw err;
  });
}
