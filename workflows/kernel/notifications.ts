/**
 * Notifications and escalation: an announcement waits for one delivery round;
 * pages and status updates go out in the background, retried with backoff
 * until delivered or the run ends, and survive cancellation. Every message
 * says where the run stands. A DR run never waits on email.
 */
import { CancellationScope, isCancellation, proxyActivities, sleep, workflowInfo } from '@temporalio/workflow';
import type { NotificationActivities } from '../../activities/notify';
import type { Notification } from '../../contract/database';
import type { RunbookStatus } from '../../contract/runbook';
import { failureMessage, ignoreCancellation } from './failures';
import type { EventExtra, RunLedger } from './ledger';

/** Escalations must be delivered even while the run is being cancelled. */
const NOTIFY_BACKOFF_MS = 5_000;
const DELIVERY_FLUSH_MS = 60_000;
const NOTIFY_BACKOFF_MAX_MS = 5 * 60_000;

/** A notification as a runbook writes it; the kernel adds the run's identity and link. */
export type Outgoing = Pick<Notification, 'audience' | 'severity' | 'kind' | 'subject' | 'body'>;

const notifications = proxyActivities<NotificationActivities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '2 seconds', backoffCoefficient: 2, maximumAttempts: 5 },
});

export class Notifier {
  /** Deliveries in flight; the run waits a little for them before it ends, or they would never be sent. */
  private readonly deliveries = new Set<Promise<unknown>>();

  /** `watchers`: the scope of the run's background work, cancelled when the run ends. */
  constructor(
    private readonly ledger: RunLedger,
    private readonly watchers: CancellationScope,
  ) {}

  /**
   * Sends a notification and waits for one delivery attempt round (channel failover
   * inside). If every channel fails, delivery goes on in the background with backoff
   * (shown in the status) and the run carries on: a DR run never waits on email.
   */
  async announce(n: Outgoing): Promise<'delivered' | 'retrying'> {
    const notification = this.notification(n);
    this.ledger.status.notifications.pending++;
    try {
      await notifications.notify.executeWithOptions(notifyOptions(notification), [notification]);
      this.delivered();
      return 'delivered';
    } catch (err) {
      if (isCancellation(err)) throw err;
      this.undelivered(notification, err, 1);
      this.retryDelivery(notification);
      return 'retrying';
    }
  }

  /** Pages the on-call (SMS, then voice) without waiting; the page survives cancellation. */
  escalate(kind: Notification['kind'], severity: Notification['severity'], subject: string, body: string, extra: Omit<EventExtra, 'by'> = {}): void {
    this.ledger.record('escalation', `${severity}: ${subject}`, extra);
    this.deliver({ audience: 'oncall', kind, severity, subject, body });
  }

  /** Delivers in the background, retrying with backoff until delivered or the run ends. */
  deliver(n: Outgoing): void {
    const notification = this.notification(n);
    this.ledger.status.notifications.pending++;
    this.track(
      CancellationScope.nonCancellable(async () => {
        try {
          await notifications.notify.executeWithOptions(notifyOptions(notification), [notification]);
          this.delivered();
        } catch (err) {
          this.undelivered(notification, err, 1);
          // A status update is stale by the next one: only pages and declarations keep retrying.
          if (notification.kind === 'status') return this.abandoned();
          await this.retryDeliveryLoop(notification);
        }
      }),
    );
  }

  /** Sends a status update to the incident channel every `seconds` until the run ends. */
  startStatusUpdates(seconds: number, render: (status: RunbookStatus) => Pick<Outgoing, 'subject' | 'body'>): void {
    if (seconds <= 0) return;
    void this.watchers
      .run(async () => {
        for (;;) {
          await sleep(seconds * 1000, { summary: `status update every ${seconds}s` });
          this.deliver({ audience: 'incident', kind: 'status', severity: 'info', ...render(this.ledger.snapshot()) });
        }
      })
      .catch(ignoreCancellation);
  }

  /** Gives deliveries started near the end (the last page) up to a minute to go out. */
  async flush(): Promise<void> {
    if (this.deliveries.size === 0) return;
    await CancellationScope.nonCancellable(() => Promise.race([Promise.allSettled([...this.deliveries]), sleep(DELIVERY_FLUSH_MS, { summary: 'last notifications' })]));
  }

  private retryDelivery(notification: Notification): void {
    this.track(CancellationScope.nonCancellable(() => this.retryDeliveryLoop(notification)));
  }

  private track(delivery: Promise<unknown>): void {
    const tracked = delivery.catch(ignoreCancellation).finally(() => this.deliveries.delete(tracked));
    this.deliveries.add(tracked);
  }

  private abandoned(): void {
    this.ledger.status.notifications.pending--;
  }

  private async retryDeliveryLoop(notification: Notification): Promise<void> {
    for (let attempt = 2; ; attempt++) {
      const backoff = Math.min(2 ** (attempt - 2) * NOTIFY_BACKOFF_MS, NOTIFY_BACKOFF_MAX_MS);
      await sleep(backoff, { summary: `retry notification "${notification.subject}"` });
      try {
        await notifications.notify.executeWithOptions(notifyOptions(notification), [notification]);
        this.delivered();
        this.ledger.record('escalation', `delivered "${notification.subject}" after ${attempt} rounds`);
        this.ledger.publish();
        return;
      } catch (err) {
        this.undelivered(notification, err, attempt);
      }
    }
  }

  private delivered(): void {
    this.ledger.status.notifications.pending--;
    this.ledger.status.notifications.delivered++;
  }

  private undelivered(notification: Notification, err: unknown, round: number): void {
    const counters = this.ledger.status.notifications;
    counters.failedRounds++;
    counters.lastError = failureMessage(err);
    this.ledger.record('notification-failed', `round ${round}: could not deliver "${notification.subject}" to ${notification.audience}: ${failureMessage(err)}; retrying`);
    this.ledger.publish();
  }

  private notification(n: Outgoing): Notification {
    const { workflowId, runId, namespace } = workflowInfo();
    const { runbook, context } = this.ledger;
    const ui = context.uiUrl;
    const { rto } = this.ledger.snapshot();
    const clock = rto.breached
      ? `RTO budget of ${rto.budgetSeconds}s BREACHED (${Math.round(rto.elapsedSeconds)}s elapsed)`
      : `RTO ${Math.round(rto.elapsedSeconds)}s elapsed, ${Math.round(rto.remainingSeconds)}s left of ${rto.budgetSeconds}s`;
    const { phase, state } = this.ledger.status;
    return {
      ...n,
      subject: `[${runbook}${context.drill ? ' drill' : ''}] ${n.subject}`,
      // Every message says where the run stands, so a reader needs nothing else at 3 a.m.
      body: `${n.body}\n\nPhase: ${phase} (${state}). ${clock}.`,
      workflowId,
      runbook,
      incident: context.incident,
      link: ui ? `${ui.replace(/\/$/, '')}/namespaces/${namespace}/workflows/${encodeURIComponent(workflowId)}/${runId}` : undefined,
    };
  }
}

/** One round: the activity tries every channel of the audience; the rounds are retried here, with backoff. */
function notifyOptions(n: Notification) {
  return {
    startToCloseTimeout: '60 seconds',
    retry: { initialInterval: '1 second', maximumAttempts: 2 },
    summary: `notify ${n.audience}: ${n.subject}`,
  } as const;
}
