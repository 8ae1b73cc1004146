/**
 * `lifeboat runs`: recent runs from Temporal visibility, filtered through the
 * Lifeboat search attributes, as a table.
 */
import type { Client } from '@temporalio/client';
import { UsageError } from './start';

export interface RunsFilter {
  runbook?: string;
  /** Temporal execution status: running, completed, failed, canceled, terminated, timed-out. */
  state?: string;
  drill?: boolean;
  /** e.g. 7d, 12h, 30m */
  since?: string;
  limit?: number;
}

const STATUSES: Record<string, string> = {
  running: 'Running',
  completed: 'Completed',
  failed: 'Failed',
  canceled: 'Canceled',
  cancelled: 'Canceled',
  terminated: 'Terminated',
  'timed-out': 'TimedOut',
};

/** The visibility query for a filter; values are validated, so nothing is injected into the query. */
export function runsQuery(filter: RunsFilter, now = new Date()): string {
  const clauses = ["LifeboatRunbook IS NOT NULL"];
  if (filter.runbook !== undefined) {
    if (!/^[a-z][a-z0-9-]{0,62}$/.test(filter.runbook)) throw new UsageError(`--runbook must be a runbook name such as db-promotion, not '${filter.runbook}'`);
    clauses.push(`LifeboatRunbook = '${filter.runbook}'`);
  }
  if (filter.state !== undefined) {
    const status = STATUSES[filter.state];
    if (!status) throw new UsageError(`--state must be one of ${Object.keys(STATUSES).join(', ')}, not '${filter.state}'`);
    clauses.push(`ExecutionStatus = '${status}'`);
  }
  if (filter.drill !== undefined) clauses.push(`LifeboatDrill = ${filter.drill}`);
  if (filter.since !== undefined) {
    const m = /^(\d+)([dhm])$/.exec(filter.since);
    if (!m) throw new UsageError(`--since must look like 7d, 12h or 30m, not '${filter.since}'`);
    const ms = Number(m[1]) * { d: 86_400_000, h: 3_600_000, m: 60_000 }[m[2] as 'd' | 'h' | 'm'];
    clauses.push(`StartTime > '${new Date(now.getTime() - ms).toISOString()}'`);
  }
  return clauses.join(' AND ');
}

export interface RunRow {
  workflowId: string;
  runbook: string;
  status: string;
  phase: string;
  drill: boolean;
  rtoBreached: boolean;
  incident: string;
  startTime: string;
  closeTime: string;
}

export async function listRuns(client: Client, filter: RunsFilter): Promise<RunRow[]> {
  const rows: RunRow[] = [];
  const first = (v: unknown): string => (Array.isArray(v) && v.length > 0 ? String(v[0]) : '');
  for await (const wf of client.workflow.list({ query: runsQuery(filter) })) {
    const sa = wf.searchAttributes;
    rows.push({
      workflowId: wf.workflowId,
      runbook: first(sa.LifeboatRunbook),
      status: wf.status.name.toLowerCase(),
      phase: first(sa.LifeboatPhase),
      drill: first(sa.LifeboatDrill) === 'true',
      rtoBreached: first(sa.LifeboatRtoBreached) === 'true',
      incident: first(sa.LifeboatIncident),
      startTime: wf.startTime.toISOString(),
      closeTime: wf.closeTime?.toISOString() ?? '',
    });
    if (rows.length >= (filter.limit ?? 50)) break;
  }
  return rows;
}

export function formatRuns(rows: readonly RunRow[]): string {
  if (rows.length === 0) return 'no runs match';
  const header = ['started', 'runbook', 'status', 'phase', 'drill', 'rto', 'incident', 'workflow id'];
  const table = rows.map((r) => [r.startTime.replace('T', ' ').slice(0, 19), r.runbook, r.status, r.phase, r.drill ? 'drill' : '', r.rtoBreached ? 'BREACHED' : 'ok', r.incident, r.workflowId]);
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((row) => (row[i] ?? '').length)));
  const line = (cells: readonly string[]) => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
  return [line(header), ...table.map(line)].join('\n');
}
