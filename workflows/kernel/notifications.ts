/**
 * Notifications and escalation: an announcement waits for one delivery round;
 * pages and status updates go out in the background, retried with backoff
 * until delivered or the run ends, and survive cancellation. Every message
 * says where the run stands. A DR run never waits on email. A final page
 * (needs-attention, a final word) still undelivered when the run closes is
 * handed to the run's pager (workflows/pager.ts), which outlives the run.
 */
import { CancellationScope, ChildWorkflowCancellationType, isCancellation, ParentClosePolicy, proxyActivities, sleep, startChild, workflowInfo } from '@temporalio/workflow';
import type { NotificationActivities } from '../../activities/notify';
import type { Notification, NotificationReceipt } from '../../contract/database';
import { pagerWorkflowId, type PagerInput, type RunbookStatus, type RunContext } from '../../contract/runbook';
import { call } from '../call';
import { pager } from '../pager';
import { failureMessage, ignoreCancellation } from './failures';
import type { EventExtra, RunLedger } from './ledger';

/** Escalations must be delivered even while the run is being cancelled. */
export const NOTIFY_BACKOFF_MS = 5_000;
/** Runs from before the pager give their last deliveries this long, then abandon them. */
const DELIVERY_FLUSH_MS = 60_000;
export const NOTIFY_BACKOFF_MAX_MS = 5 * 60_000;

/** What still matters once the run has ended: undelivered at the close, these go to the pager. */
const FINAL_KINDS: ReadonlySet<Notification['kind']> = new Set(['needs-attention', 'final']);

/** A notification as a runbook writes it; the kernel adds the run's identity and link. */
export type Outgoing = Pick<Notification, 'audience' | 'severity' | 'kind' | 'subject' | 'body'>;

/** One round: the activity tries every channel of the audience; the rounds are retried by the caller, with backoff. */
const notifyRoundOptions = {
  startToCloseTimeout: '60 seconds',
  retry: { initialInterval: '1 second', maximumAttempts: 2 },
} as const;

const notifications = proxyActivities<NotificationActivities>(notifyRoundOptions);

/** One delivery round of `n` (channel failover inside the activity). */
export function deliverOnce(n: Notification): Promise<NotificationReceipt> {
  return call(notifications.notify, notifyRoundOptions, `notify ${n.audience}: ${n.subject}`, n);
}

/** The pause before round `round` (2, 3, …): doubling from `initialMs`, at most `maximumMs`. */
export function retryBackoffMs(round: number, initialMs = NOTIFY_BACKOFF_MS, maximumMs = NOTIFY_BACKOFF_MAX_MS): number {
  return Math.min(2 ** (round - 2) * initialMs, maximumMs);
}

export class Notifier {
  /** Deliveries in flight; the run waits a little for them before it ends, or they would never be sent. */
  private readonly deliveries = new Set<Promise<unknown>>();
  /** Final pages not delivered yet, handed to the pager if still undelivered at the close. */
  private readonly undeliveredFinal = new Set<Notification>();

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
    const notification = this.pending(n);
    try {
      await deliverOnce(notification);
      this.delivered(notification);
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
    const notification = this.pending(n);
    this.track(
      CancellationScope.nonCancellable(async () => {
        try {
          await deliverOnce(notification);
          this.delivered(notification);
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

  /** Runs from before the pager: deliveries started near the end (the last page) get up to a minute to go out. */
  async flush(): Promise<void> {
    if (this.deliveries.size === 0) return;
    await CancellationScope.nonCancellable(() => Promise.race([this.settled(), sleep(DELIVERY_FLUSH_MS, { summary: 'last notifications' })]));
  }

  /** Whether no delivery is in flight or retrying. */
  get idle(): boolean {
    return this.deliveries.size === 0;
  }

  /** Settles when every delivery in flight has ended, delivered or not (the caller bounds the wait). */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.deliveries]);
  }

  /**
   * At the run's close: the final pages still undelivered go to the run's pager, which retries them
   * until delivered or acknowledged (`lifeboat ack`); the run waits only for the server to start it.
   */
  async handOff(): Promise<void> {
    const pages = [...this.undeliveredFinal];
    if (pages.length === 0) return;
    const { workflowId, runId } = workflowInfo();
    const id = pagerWorkflowId(workflowId, runId);
    await startChild(pager, {
      workflowId: id,
      args: [{ workflowId, runId, notifications: pages, ...acknowledgers(this.ledger.context) }],
      // The pager must outlive the run: a "finish by hand" page is the last thing a failed run says.
      parentClosePolicy: ParentClosePolicy.ABANDON,
      cancellationType: ChildWorkflowCancellationType.ABANDON,
      staticSummary: `last pages of ${workflowId}: ${pages.map((p) => p.subject).join('; ')}`,
    });
    this.ledger.status.notifications.pager = id;
    this.ledger.record('escalation', `${pages.length} undelivered final page(s) handed to the pager ${id}, which retries until delivered or acknowledged`);
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
      await sleep(retryBackoffMs(attempt), { summary: `retry notification "${notification.subject}"` });
      try {
        await deliverOnce(notification);
        this.delivered(notification);
        this.ledger.record('escalation', `delivered "${notification.subject}" after ${attempt} rounds`);
        this.ledger.publish();
        return;
      } catch (err) {
        this.undelivered(notification, err, attempt);
      }
    }
  }

  /** Counts `n` as pending; a final page is remembered until delivered. */
  private pending(n: Outgoing): Notification {
    const notification = this.notification(n);
    this.ledger.status.notifications.pending++;
    if (FINAL_KINDS.has(notification.kind)) this.undeliveredFinal.add(notification);
    return notification;
  }

  private delivered(notification: Notification): void {
    this.undeliveredFinal.delete(notification);
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

/** Who may acknowledge the run's last pages: its people as admitted, and whether they must sign. */
function acknowledgers(context: RunContext): Pick<PagerInput, 'people' | 'approvalKeys' | 'signatures'> {
  return { people: context.people, ...(context.approvalKeys ? { approvalKeys: context.approvalKeys } : {}), ...(context.signatures ? { signatures: context.signatures } : {}) };
}
