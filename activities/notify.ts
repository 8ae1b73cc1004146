/**
 * Notification activities: one `notify` that tries each configured channel in
 * order (failover) and reports which one delivered. Channels are injected; the
 * journal channel (JSON lines on disk) is always last so nothing is lost.
 */
import { appendFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { log } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { Notification, NotificationReceipt } from '../contract/database';

export interface NotificationChannel {
  readonly name: string;
  send(notification: Notification): Promise<void>;
}

/** Appends every notification to a JSON-lines file: the lab's pager and the last-resort record. */
export function journalChannel(file: string): NotificationChannel {
  return {
    name: 'journal',
    async send(notification) {
      await mkdir(path.dirname(file), { recursive: true });
      await appendFile(file, `${JSON.stringify({ at: new Date().toISOString(), ...notification })}\n`);
    },
  };
}

export function createNotificationActivities(deps: { channels: readonly NotificationChannel[] }) {
  return {
    /** Delivers through the first channel that works; fails (and is retried) only when all fail. */
    async notify(notification: Notification): Promise<NotificationReceipt> {
      const failures: string[] = [];
      for (const channel of deps.channels) {
        try {
          await channel.send(notification);
          log.info('notification delivered', { channel: channel.name, subject: notification.subject, kind: notification.kind });
          return { channel: channel.name, deliveredAt: new Date().toISOString() };
        } catch (err) {
          failures.push(`${channel.name}: ${(err as Error).message}`);
          log.warn('notification channel failed', { channel: channel.name, error: (err as Error).message });
        }
      }
      throw ApplicationFailure.retryable(`no channel delivered "${notification.subject}" (${failures.join('; ') || 'no channels configured'})`, 'NotificationUndelivered');
    },
  };
}

export type NotificationActivities = ReturnType<typeof createNotificationActivities>;
