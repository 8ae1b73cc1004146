/**
 * `lifeboat report <id>`: the record of a run for the post-mortem and the
 * auditor: a timeline of every step and gate with who and when, measured RTO
 * and RPO against the targets, breaches and escalations, notifications, the
 * evidence chain head, and (in HTML) an SVG Gantt chart of the steps and gates
 * over the RTO budget line. Written to a local file and the evidence bucket.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import type { Client } from '@temporalio/client';
import type { LoadedConfig } from '../config/load';
import type { RunbookStatus } from '../contract/runbook';
import { describeRpo } from '../contract/rpo';
import { objectStoreFor } from '../workers/dependencies';
import { runStatus } from './runs';

export type ReportFormat = 'md' | 'html' | 'json';

export interface TimelineBar {
  kind: 'step' | 'gate';
  id: string;
  label: string;
  state: string;
  /** Seconds from the detection time (the start of the RTO clock). */
  start: number;
  end: number;
  who?: string;
}

export interface RunReport {
  workflowId: string;
  runbook: string;
  target: string;
  drill: boolean;
  initiator: string;
  incident?: string;
  detectedAt: string;
  state: string;
  rto: RunbookStatus['rto'];
  rpo: RunbookStatus['rpo'];
  timeline: TimelineBar[];
  breaches: string[];
  escalations: Array<{ at: string; detail: string }>;
  decisions: Array<{ at: string; kind: string; by?: string; gate?: string; detail: string }>;
  notifications: RunbookStatus['notifications'];
  children: RunbookStatus['children'];
  evidence?: RunbookStatus['evidence'];
  error?: RunbookStatus['error'];
  generatedAt: string;
}

const seconds = (from: string, at: string | undefined, fallback: number) => (at ? (Date.parse(at) - Date.parse(from)) / 1000 : fallback);

export function buildReport(status: RunbookStatus, now = new Date()): RunReport {
  const endOfRun = status.rto.elapsedSeconds;
  const timeline: TimelineBar[] = [];
  for (const step of status.steps) {
    if (!step.startedAt) continue;
    timeline.push({ kind: 'step', id: step.id, label: step.title, state: step.state, start: seconds(status.detectedAt, step.startedAt, 0), end: seconds(status.detectedAt, step.endedAt, endOfRun) });
  }
  for (const gate of status.gates) {
    if (!gate.openedAt) continue;
    timeline.push({ kind: 'gate', id: gate.id, label: gate.title, state: gate.state, start: seconds(status.detectedAt, gate.openedAt, 0), end: seconds(status.detectedAt, gate.decidedAt, endOfRun), who: gate.decidedBy });
  }
  timeline.sort((a, b) => a.start - b.start);
  const breaches = [
    ...(status.rto.breached ? [`RTO budget of ${status.rto.budgetSeconds}s breached at ${status.rto.breachedAt ?? '?'}`] : []),
    ...status.steps.filter((s) => s.budgetBreached).map((s) => `step ${s.id} exceeded its budget of ${s.budgetSeconds ?? '?'}s`),
    ...(status.rpo.met === false ? [`RPO target of ${status.rpo.targetSeconds}s missed${status.rpo.verdict ? `: ${status.rpo.verdict}` : ''}`] : []),
  ];
  return {
    workflowId: status.workflowId,
    runbook: status.runbook,
    target: status.target,
    drill: status.drill,
    initiator: status.initiator,
    incident: status.incident,
    detectedAt: status.detectedAt,
    state: status.state,
    rto: status.rto,
    rpo: status.rpo,
    timeline,
    breaches,
    escalations: status.events.filter((e) => e.kind === 'escalation').map((e) => ({ at: e.at, detail: e.detail })),
    decisions: status.events
      .filter((e) => ['gate-opened', 'gate-approved', 'gate-rejected', 'gate-timed-out', 'decision-refused', 'pre-approval-set-aside', 'cancel-requested', 'resolved'].includes(e.kind))
      .map((e) => ({ at: e.at, kind: e.kind, by: e.by, gate: e.gate, detail: e.detail })),
    notifications: status.notifications,
    children: status.children,
    evidence: status.evidence,
    error: status.error,
    generatedAt: now.toISOString(),
  };
}

const escapeXml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** Steps and gates as bars over time from detection, with the RTO budget as a vertical line. */
export function ganttSvg(report: RunReport): string {
  const rowHeight = 24;
  const labelWidth = 220;
  const chartWidth = 640;
  const horizon = Math.max(report.rto.budgetSeconds, ...report.timeline.map((b) => b.end), 1) * 1.05;
  const x = (t: number) => labelWidth + (Math.max(0, t) / horizon) * chartWidth;
  const height = (report.timeline.length + 2) * rowHeight;
  const color = (b: TimelineBar) => (b.kind === 'gate' ? '#d08c00' : b.state === 'failed' ? '#c62828' : b.state === 'compensated' ? '#6a1b9a' : '#2e7d32');
  const bars = report.timeline.map((b, i) => {
    const y = (i + 1) * rowHeight;
    const w = Math.max(2, x(b.end) - x(b.start));
    return [
      `<text x="4" y="${y + 16}" font-size="12">${escapeXml(`${b.kind === 'gate' ? 'gate ' : ''}${b.id}`)}</text>`,
      `<rect x="${x(b.start).toFixed(1)}" y="${y + 4}" width="${w.toFixed(1)}" height="${rowHeight - 8}" fill="${color(b)}"><title>${escapeXml(`${b.label}: ${b.state}, ${b.start.toFixed(1)}s to ${b.end.toFixed(1)}s${b.who ? `, by ${b.who}` : ''}`)}</title></rect>`,
    ].join('');
  });
  const budget = x(report.rto.budgetSeconds);
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${labelWidth + chartWidth + 20}" height="${height}" role="img" aria-label="timeline of ${escapeXml(report.workflowId)}">`,
    `<text x="4" y="14" font-size="12" font-weight="bold">seconds since detection (0 to ${horizon.toFixed(0)}s)</text>`,
    ...bars,
    `<line x1="${budget.toFixed(1)}" y1="${rowHeight}" x2="${budget.toFixed(1)}" y2="${height - 4}" stroke="#c62828" stroke-width="2" stroke-dasharray="6 3"/>`,
    `<text x="${(budget + 4).toFixed(1)}" y="${height - 6}" font-size="11" fill="#c62828">RTO budget ${report.rto.budgetSeconds}s</text>`,
    '</svg>',
  ].join('\n');
}

export function renderMarkdown(r: RunReport): string {
  const lines = [
    `# Run report: ${r.workflowId}`,
    '',
    `- Runbook **${r.runbook}** on **${r.target}**${r.drill ? ' (drill)' : ''}, outcome **${r.state}**`,
    `- Initiator ${r.initiator}${r.incident ? `, incident ${r.incident}` : ''}; detected ${r.detectedAt}`,
    `- RTO: budget ${r.rto.budgetSeconds}s, measured ${(r.rto.measuredSeconds ?? r.rto.elapsedSeconds).toFixed(1)}s (${r.rto.breached ? 'BREACHED' : 'met'})`,
    `- RPO: ${describeRpo(r.rpo)}${r.rpo.verdict ? `: ${r.rpo.verdict}` : ''}`,
    `- Evidence chain head: ${r.evidence ? `${r.evidence.head} (${r.evidence.records} records)` : 'none'}`,
    `- Notifications: ${r.notifications.delivered} delivered, ${r.notifications.pending} pending, ${r.notifications.failedRounds} failed rounds`,
    ...(r.error ? [`- Error (${r.error.type}): ${r.error.message}`] : []),
    '',
    '## Timeline (seconds since detection)',
    '',
    '| | what | state | from | to | who |',
    '|---|---|---|---|---|---|',
    ...r.timeline.map((b) => `| ${b.kind} | \`${b.id}\` ${b.label} | ${b.state} | ${b.start.toFixed(1)} | ${b.end.toFixed(1)} | ${b.who ?? ''} |`),
    '',
    '## Decisions',
    '',
    ...(r.decisions.length ? r.decisions.map((d) => `- ${d.at} ${d.kind}${d.by ? ` by ${d.by}` : ''}: ${d.detail}`) : ['- none']),
    '',
    '## Breaches and escalations',
    '',
    ...(r.breaches.length || r.escalations.length ? [...r.breaches.map((b) => `- ${b}`), ...r.escalations.map((e) => `- ${e.at} ${e.detail}`)] : ['- none']),
  ];
  if (r.children.length > 0) lines.push('', '## Child runs', '', ...r.children.map((c) => `- ${c.workflowId} (${c.runbook} on ${c.target}): ${c.state}${c.detail ? `: ${c.detail}` : ''}`));
  return `${lines.join('\n')}\n`;
}

export function renderHtml(r: RunReport): string {
  const md = renderMarkdown(r);
  const body = md
    .split('\n')
    .map((l) => escapeXml(l))
    .join('\n');
  return [
    '<!doctype html>',
    `<html lang="en"><head><meta charset="utf-8"><title>${escapeXml(`Run report ${r.workflowId}`)}</title>`,
    '<style>body{font-family:system-ui,sans-serif;max-width:960px;margin:2em auto}pre{white-space:pre-wrap}</style></head><body>',
    `<h1>${escapeXml(r.workflowId)}</h1>`,
    ganttSvg(r),
    `<pre>${body}</pre>`,
    `<script type="application/json" id="report">${escapeXml(JSON.stringify(r))}</script>`,
    '</body></html>',
  ].join('\n');
}

export async function writeReport(client: Client, loaded: LoadedConfig, workflowId: string, format: ReportFormat, out?: string): Promise<{ file: string; stored?: string; report: RunReport }> {
  const status = await runStatus(client, workflowId);
  const report = buildReport(status);
  const text = format === 'json' ? `${JSON.stringify(report, null, 2)}\n` : format === 'html' ? renderHtml(report) : renderMarkdown(report);
  const file = out ?? path.join(loaded.stateDir, 'reports', `${encodeURIComponent(workflowId)}.${format}`);
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, text);
  const { evidence, backups } = loaded.config;
  let stored: string | undefined;
  if (evidence.bucket && backups) {
    const key = `reports/${workflowId}.${format}`;
    const bucket = objectStoreFor(backups, evidence.bucket);
    await bucket.putStream(key, Readable.from([Buffer.from(text)]));
    stored = `${bucket.location}/${key}`;
  }
  return { file, stored, report };
}
