/**
 * Notification activities: one `notify` that tries the channels of the
 * notification's audience in order (failover: email, then SMS, for the incident
 * channel; SMS, then a voice call, to page the on-call) and reports which one
 * delivered. Every attempt is appended to the journal (JSON lines), the record
 * of what was sent and the lab's readable pager.
 */
import { appendFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { log } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { Notification, NotificationAudience, NotificationReceipt } from '../contract/database';

export interface NotificationChannel {
  readonly name: string;
  send(notification: Notification): Promise<void>;
}

export type NotificationRoutes = Readonly<Record<NotificationAudience, readonly NotificationChannel[]>>;

/** Appends every delivery attempt to a JSON-lines file. */
export function journal(file: string) {
  return async (entry: Record<string, unknown>): Promise<void> => {
    await mkdir(path.dirname(file), { recursive: true });
    await appendFile(file, `${JSON.stringify({ at: new Date().toISOString(), ...entry })}\n`);
  };
}

/** The journal as a delivery channel, for configs with no email or SMS (the lab's pager). */
export function journalChannel(): NotificationChannel {
  return { name: 'journal', send: async () => undefined };
}

export function createNotificationActivities(deps: { routes: NotificationRoutes; record: (entry: Record<string, unknown>) => Promise<void> }) {
  // The journal is a record, not a channel: a full disk must neither fail a delivery nor page twice.
  const record = (entry: Record<string, unknown>) =>
    deps.record(entry).catch((err: unknown) => log.error('could not write the notification journal', { error: (err as Error).message }));
  return {
    /** Delivers through the first channel that works; fails (and is retried) only when all fail. */
    async notify(notification: Notification): Promise<NotificationReceipt> {
      const channels = deps.routes[notification.audience];
      const failures: string[] = [];
      for (const channel of channels) {
        try {
          await channel.send(notification);
          await record({ channel: channel.name, delivered: true, ...notification });
          log.info('notification delivered', { channel: channel.name, subject: notification.subject, audience: notification.audience });
          return { channel: channel.name, deliveredAt: new Date().toISOString() };
        } catch (err) {
          const message = (err as Error).message;
          failures.push(`${channel.name}: ${message}`);
          await record({ channel: channel.name, delivered: false, error: message, ...notification });
          log.warn('notification channel failed, trying the next', { channel: channel.name, error: message });
        }
      }
      throw ApplicationFailure.retryable(
        `no channel delivered "${notification.subject}" to ${notification.audience} (${failures.join('; ') || 'no channels configured'})`,
        'NotificationUndelivered',
      );
    },
  };
}

export type NotificationActivities = ReturnType<typeof createNotificationActivities>;
