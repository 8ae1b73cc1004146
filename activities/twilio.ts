/**
 * SMS and voice through the official `twilio` SDK: the on-call pager, and the
 * incident channel's fallback when email is down. `apiBaseUrl` points the SDK at
 * a Twilio-compatible endpoint (the lab's stand-in); production leaves it unset.
 */
import twilio from 'twilio';
import RequestClient from 'twilio/lib/base/RequestClient';
import type { Notification } from '../contract/database';
import type { NotificationChannel } from './notify';

type TwilioClient = ReturnType<typeof twilio>;

export function createTwilioClient(accountSid: string, authToken: string, apiBaseUrl?: string): TwilioClient {
  if (!apiBaseUrl) return twilio(accountSid, authToken);
  const base = apiBaseUrl.replace(/\/$/, '');
  class RedirectingRequestClient extends RequestClient {
    override request<TData>(opts: RequestClient.RequestOptions<TData>) {
      return super.request<TData>({ ...opts, uri: opts.uri.replace(/^https:\/\/api\.twilio\.com/, base) });
    }
  }
  return twilio(accountSid, authToken, { httpClient: new RedirectingRequestClient() });
}

/** SMS text: short, with the run id, since it is read on a phone at 3 a.m. */
export function smsText(n: Notification): string {
  return `${n.subject} | ${n.workflowId}${n.link ? ` | ${n.link}` : ''}`.slice(0, 1500);
}

export function smsChannel(client: TwilioClient, from: string, to: readonly string[]): NotificationChannel {
  return {
    name: 'sms',
    async send(n) {
      if (to.length === 0) throw new Error('no phone numbers to text');
      for (const number of to) await client.messages.create({ from, to: number, body: smsText(n) });
    },
  };
}

export function voiceChannel(client: TwilioClient, from: string, to: readonly string[]): NotificationChannel {
  return {
    name: 'voice',
    async send(n) {
      if (to.length === 0) throw new Error('no phone numbers to call');
      const say = `Lifeboat page. ${n.subject}. Check run ${n.workflowId}.`.replace(/[<>&]/g, ' ');
      for (const number of to) await client.calls.create({ from, to: number, twiml: `<Response><Say>${say}</Say></Response>` });
    },
  };
}
