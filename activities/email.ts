/** Email through SMTP with nodemailer: the incident channel's first choice. */
import type { Transporter } from 'nodemailer';
import type { Notification } from '../contract/database';
import type { NotificationChannel } from './notify';

export interface EmailChannelOptions {
  transport: Transporter;
  from: string;
  to: readonly string[];
}

export function renderNotificationText(n: Notification): string {
  const lines = [n.body, '', `Runbook: ${n.runbook}`, `Run: ${n.workflowId}`];
  if (n.incident) lines.push(`Incident: ${n.incident}`);
  if (n.link) lines.push(`Temporal UI: ${n.link}`);
  return lines.join('\n');
}

export function emailChannel(options: EmailChannelOptions): NotificationChannel {
  return {
    name: 'email',
    async send(n) {
      await options.transport.sendMail({
        from: options.from,
        to: [...options.to],
        subject: n.subject,
        text: renderNotificationText(n),
        headers: { 'X-Lifeboat-Run': n.workflowId, 'X-Lifeboat-Severity': n.severity },
      });
    },
  };
}
