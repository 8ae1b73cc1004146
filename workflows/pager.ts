/**
 * The pager: the last pages of a run (failed past the point of no return,
 * needs-attention) that no channel took before the run closed, retried by
 * this workflow, which outlives the run, until each is delivered or a person
 * acknowledges them (`lifeboat ack <run>`, the `acknowledge` Update). Started
 * by the run as a child it abandons, so the pages are in the server's records
 * and the run never waits on a channel.
 */
import { condition, isCancellation, setHandler, workflowInfo } from '@temporalio/workflow';
import { ackMessage, verifySigned } from '../contract/approvals';
import type { Notification } from '../contract/database';
import { lookup } from '../contract/records';
import { acknowledgeUpdate, pagerQuery, type PageOutcome, type PagerInput, type PagerResult } from '../contract/runbook';
import { deliverOnce, NOTIFY_BACKOFF_MAX_MS, NOTIFY_BACKOFF_MS, retryBackoffMs } from './kernel/notifications';
import { failureMessage } from './kernel/failures';

/** Retries every page of `input` until delivered, or until acknowledged; the result says which. */
export async function pager(input: PagerInput): Promise<PagerResult> {
  const result: PagerResult = { pages: input.notifications.map((n): PageOutcome => ({ subject: n.subject, audience: n.audience, state: 'pending', rounds: 0 })) };
  const open = () => result.pages.some((p) => p.state === 'pending');
  setHandler(pagerQuery, () => result);
  setHandler(
    acknowledgeUpdate,
    (request) => {
      const at = new Date().toISOString();
      result.acknowledged = { by: request.by, at, ...(request.comment ? { comment: request.comment } : {}) };
      for (const page of result.pages) if (page.state === 'pending') Object.assign(page, { state: 'acknowledged', at });
      return result;
    },
    {
      validator: (request) => {
        if (typeof request?.by !== 'string' || request.by.trim() === '') throw new Error('acknowledge needs `by`: the person who has the message');
        // Silencing a "finish by hand" page is a decision: only the run's people, signed when its decisions are.
        if (input.people && !lookup(input.people, request.by)) throw new Error(`'${request.by}' is not a configured person: add them under people: in the config`);
        if (input.signatures === 'required') {
          const key = lookup(input.approvalKeys ?? {}, request.by);
          const message = ackMessage({ pager: workflowInfo().workflowId, by: request.by, comment: request.comment ?? '' });
          if (typeof request.signature !== 'string' || !key || !verifySigned(message, request.signature, key)) {
            throw new Error(`an acknowledgement of this run's pages must be signed by ${request.by}'s key (approvals.signatures: required): 'lifeboat ack … --key <file>'`);
          }
        }
        if (!open()) throw new Error(`nothing to acknowledge: every page of ${input.workflowId} was ${result.acknowledged ? `acknowledged by ${result.acknowledged.by}` : 'delivered'}`);
      },
    },
  );
  const initialMs = (input.initialIntervalSeconds ?? NOTIFY_BACKOFF_MS / 1000) * 1000;
  const maximumMs = (input.maximumIntervalSeconds ?? NOTIFY_BACKOFF_MAX_MS / 1000) * 1000;
  for (let round = 1; open(); round++) {
    if (round > 1) await condition(() => !open(), retryBackoffMs(round, initialMs, maximumMs));
    await Promise.all(input.notifications.map((n, i) => attempt(n, result.pages[i])));
  }
  return result;

  async function attempt(notification: Notification, page: PageOutcome | undefined): Promise<void> {
    if (!page || page.state !== 'pending') return;
    page.rounds++;
    try {
      const receipt = await deliverOnce({ ...notification, body: `${notification.body}\n\n(Retried by ${workflowInfo().workflowId} after the run ended; round ${page.rounds}.)` });
      // Acknowledged while this round was under way: the page went out anyway; say so.
      Object.assign(page, { state: 'delivered', channel: receipt.channel, at: receipt.deliveredAt });
    } catch (err) {
      if (isCancellation(err)) throw err;
      page.lastError = failureMessage(err);
    }
  }
}
