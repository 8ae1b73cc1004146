/**
 * `lifeboat report <id>`: the record of a run for the post-mortem and the
 * auditor: a timeline of every step and gate with who and when, measured RTO
 * and RPO against the targets, breaches and escalations, notifications, the
 * evidence chain head, the reconciliation reports a failback stored (what a
 * rebuilt former primary held that the current primary did not, checked
 * against the digest sealed in the chain), and (in HTML) an SVG Gantt chart of
 * the steps and gates over the RTO budget line. Written to a local file and
 * the evidence bucket (with the CLI's own credentials, cli/readers.ts).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import type { LoadedConfig } from '../config/load';
import { RECONCILIATION_ARTIFACT_KIND, RECONCILIATION_FORMAT, type ReconciliationReport } from '../contract/divergence';
import { artifactDigest } from '../contract/evidence';
import type { RunArtifact, RunbookStatus } from '../contract/runbook';
import { describeRpo } from '../contract/rpo';
import { CLI_S3_KEY_ENV, evidenceReader, reportArchive, type EvidenceReader, type ReportArchive } from './readers';
import { RunRefusedError, runStatus } from './runs';

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
  /** Documents the run stored with its evidence. */
  artifacts: RunArtifact[];
  /** The reconciliation reports among them, read from the evidence store. */
  reconciliations: ReconciliationEntry[];
  generatedAt: string;
}

/** A reconciliation report as read back: `verified` when its bytes hash to the digest sealed in the chain. */
export interface ReconciliationEntry {
  artifact: RunArtifact;
  verified: boolean;
  problem?: string;
  report?: ReconciliationReport;
}

/** Unknown is not met; bytes lost miss any target even when no seconds were measured for them. */
function rpoVerdict(rpo: RunbookStatus['rpo']): 'met' | 'MISSED' | 'unknown' {
  if (rpo.met === true) return 'met';
  if (rpo.met === false || (rpo.measuredBytes ?? 0) > 0) return 'MISSED';
  return 'unknown';
}

const seconds = (from: string, at: string | undefined, fallback: number) => (at ? (Date.parse(at) - Date.parse(from)) / 1000 : fallback);

export function buildReport(status: RunbookStatus, now = new Date(), reconciliations: ReconciliationEntry[] = []): RunReport {
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
      .filter((e) => ['admitted', 'refused', 'gate-opened', 'gate-approved', 'gate-rejected', 'gate-timed-out', 'decision-refused', 'pre-approval-set-aside', 'cancel-requested', 'resolved'].includes(e.kind))
      .map((e) => ({ at: e.at, kind: e.kind, by: e.by, gate: e.gate, detail: e.detail })),
    notifications: status.notifications,
    children: status.children,
    evidence: status.evidence,
    error: status.error,
    artifacts: status.artifacts ?? [],
    reconciliations,
    generatedAt: now.toISOString(),
  };
}

const KEYS_SHOWN = 50;
const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

/** The reconciliation section: per database the diverged bytes, the copy, and per table the rows the current primary lacks. */
function reconciliationLines(entries: readonly ReconciliationEntry[]): string[] {
  if (entries.length === 0) return [];
  const lines = ['', '## Reconciliation: what rebuilt former primaries held that the current primaries did not', ''];
  for (const { artifact, verified, problem, report } of entries) {
    const s = artifact.summary;
    lines.push(`### ${String(s.database ?? artifact.name)} in ${String(s.node ?? '?')} (\`${artifact.name}\`)`, '');
    lines.push(
      `- Diverged: ${String(s.divergedBytes ?? 'unknown')} bytes past the fork ${String(s.forkLsn ?? '?')} (end of WAL ${String(s.endLsn ?? '?')}, ${String(s.walBytes ?? '?')} bytes of WAL, ${String(s.commits ?? '?')} commits); state ${String(s.state ?? '?')}`,
      `- Data directory kept at \`${String(s.copy ?? '?')}\``,
      `- Report sha256 ${artifact.digest} ${verified ? '(matches the evidence chain)' : `(NOT VERIFIED: ${problem ?? '?'})`}; stored at ${artifact.locations.join(', ')}`,
    );
    if (!report) {
      lines.push('');
      continue;
    }
    lines.push(
      `- Read ${report.readAt} from the copy of ${report.diverged.region} against ${report.current.region} (${report.current.host}:${report.current.port}): ${report.totals.missing} rows missing and ${report.totals.different} different in ${report.totals.tables} tables`,
      `- Method: ${report.method}`,
      ...(report.otherDatabases.length ? [`- Not compared (other databases of the cluster): ${report.otherDatabases.join(', ')}`] : []),
      '',
      '| table | primary key | rows on the diverged node | missing on current | different on current |',
      '|---|---|---|---|---|',
      ...report.tables.map((t) => `| \`${t.schema}.${t.table}\`${t.absentOnCurrent ? ' (absent on current)' : ''} | ${t.primaryKey.join(', ')} | ${t.rows} | ${t.missing} | ${t.different} |`),
      ...report.unreconciled.map((u) => `| \`${u.schema}.${u.table}\` | — | ${u.rowsOnDiverged ?? '?'} | not reconciled: ${cell(u.reason)} | ${u.rowsOnCurrent !== undefined ? `${u.rowsOnCurrent} rows on current` : ''} |`),
    );
    for (const t of report.tables.filter((x) => x.missing + x.different > 0)) {
      const keys = (k: string[][]) => k.slice(0, KEYS_SHOWN).map((x) => x.join(',')).join(' ');
      lines.push('', `#### \`${t.schema}.${t.table}\``, '');
      if (t.missing) lines.push(`- Missing on current (${t.missing}), keys: ${keys(t.missingKeys)}${t.missingKeys.length > KEYS_SHOWN || t.keysTruncated ? ' … (more in the JSON report)' : ''}`);
      if (t.different) lines.push(`- Different on current (${t.different}), keys: ${keys(t.differentKeys)}${t.differentKeys.length > KEYS_SHOWN || t.keysTruncated ? ' … (more in the JSON report)' : ''}`);
      if (t.columnsOnlyOnDiverged?.length || t.columnsOnlyOnCurrent?.length) {
        lines.push(`- Compared on the common columns; only on the diverged node: ${t.columnsOnlyOnDiverged?.join(', ') || 'none'}; only on current: ${t.columnsOnlyOnCurrent?.join(', ') || 'none'}`);
      }
      lines.push(
        '',
        `| key | status | row on the diverged node | row on current |`,
        '|---|---|---|---|',
        ...t.sample.map((r) => `| ${r.key.join(',')} | ${r.status} | \`${cell(JSON.stringify(r.diverged))}\` | ${r.current ? `\`${cell(JSON.stringify(r.current))}\`` : ''} |`),
      );
      if (t.sampleTruncated) lines.push('', `(${t.sample.length} of ${t.missing + t.different} rows shown: the report's row limit is ${report.limits.rows})`);
    }
    lines.push('');
  }
  return lines;
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
  const others = r.artifacts.filter((a) => a.kind !== RECONCILIATION_ARTIFACT_KIND);
  if (others.length > 0) lines.push('', '## Artifacts', '', ...others.map((a) => `- ${a.title} (\`${a.name}\`, sha256 ${a.digest}) at ${a.locations.join(', ')}`));
  lines.push(...reconciliationLines(r.reconciliations));
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

export interface ReportOptions {
  /** Keep a copy under reports/ in the evidence bucket, when there is one (default true; `--no-store`: false). */
  store?: boolean;
  /** Where the run's artifacts are read; default: the CLI's evidence reader. */
  evidence?: EvidenceReader;
  /** Where the copy goes; default: reports/ in the evidence bucket. */
  archive?: ReportArchive;
}

export async function writeReport(client: Client, loaded: LoadedConfig, workflowId: string, format: ReportFormat, out?: string, options: ReportOptions = {}): Promise<{ file: string; stored?: string; report: RunReport }> {
  const status = await runStatus(client, workflowId);
  const reconciliations = await readReconciliations(client, options.evidence ?? evidenceReader(loaded), workflowId, status.artifacts ?? []);
  const report = buildReport(status, new Date(), reconciliations);
  const text = format === 'json' ? `${JSON.stringify(report, null, 2)}\n` : format === 'html' ? renderHtml(report) : renderMarkdown(report);
  const file = out ?? path.join(loaded.stateDir, 'reports', `${encodeURIComponent(workflowId)}.${format}`);
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, text);
  const archive = options.store === false ? undefined : (options.archive ?? reportArchive(loaded));
  let stored: string | undefined;
  try {
    stored = await archive?.store(`${workflowId}.${format}`, text);
  } catch (err) {
    throw new RunRefusedError(
      `the report is written to ${file} but could not be stored in ${archive?.location ?? 'the evidence bucket'}: ${(err as Error).message}; ` +
        `the CLI stores it with its own S3 key (${CLI_S3_KEY_ENV.accessKeyId}): give that key s3:PutObject on reports/, or pass --no-store`,
      { cause: err },
    );
  }
  return { file, stored, report };
}

/** Reads each reconciliation report the run stored and checks its bytes against the digest in the status (and chain). */
async function readReconciliations(client: Client, store: EvidenceReader, workflowId: string, artifacts: readonly RunArtifact[]): Promise<ReconciliationEntry[]> {
  const wanted = artifacts.filter((a) => a.kind === RECONCILIATION_ARTIFACT_KIND);
  if (wanted.length === 0) return [];
  const { runId } = await client.workflow.getHandle(workflowId).describe();
  const entries: ReconciliationEntry[] = [];
  for (const artifact of wanted) {
    let text: string | undefined;
    try {
      text = await store.readArtifact(workflowId, runId, artifact.name);
    } catch (err) {
      entries.push({ artifact, verified: false, problem: `could not read it from ${store.location}: ${(err as Error).message}` });
      continue;
    }
    if (text === undefined) {
      entries.push({ artifact, verified: false, problem: `not in ${store.location}` });
      continue;
    }
    const parsed = JSON.parse(text) as unknown;
    const verified = artifactDigest(parsed).digest === artifact.digest;
    const report = isReconciliation(parsed) ? parsed : undefined;
    entries.push({
      artifact,
      verified,
      ...(verified ? {} : { problem: `its bytes in ${store.location} hash to ${artifactDigest(parsed).digest}, not to the digest sealed in the evidence chain: treat it as altered` }),
      ...(report ? { report } : { problem: `not a ${RECONCILIATION_FORMAT} document` }),
    });
  }
  return entries;
}

function isReconciliation(value: unknown): value is ReconciliationReport {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return v.format === RECONCILIATION_FORMAT && Array.isArray(v.tables) && Array.isArray(v.unreconciled) && typeof v.totals === 'object';
}
