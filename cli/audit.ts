/**
 * `lifeboat audit`: the redundancy audit. For every configured database and
 * every service under `audit.services`, the evidence is the runs themselves,
 * read from Temporal visibility (the LifeboatRunbook search attribute and the
 * `lifeboat` memo every `startRun` writes) and, for the few runs that carry a
 * measurement, their results:
 *
 * - NO_FAILOVER     a service with no failover configured (databases always have a standby or replica);
 * - TEST_OVERDUE    no completed failover drill within audit.drillMaxAgeDays before the audit's date;
 * - RTO_EXCEEDED    the newest completed failover's measured RTO is above the tier's target;
 * - BACKUP_OVERDUE  the newest completed backup is older than its category's RPO (or none, or none configured);
 * - FAILED_TEST     the newest restore test ended failed, timed out, terminated or cancelled.
 *
 * Runs that closed after the audit's date are not evidence "as of" it. Runs
 * started without the memo (not by Lifeboat's `startRun`) are ignored.
 */
import type { Client, WorkflowExecutionInfo } from '@temporalio/client';
import type { LoadedConfig } from '../config/load';
import type { DatabaseConfig, LifeboatConfig } from '../config/schema';
import { BACKUP_RESTORE_TEST_RUNBOOK, DATABASE_BACKUP_RUNBOOK, type DatabaseBackupResult } from '../contract/backup';
import { DB_PROMOTION_RUNBOOK } from '../contract/db-promotion';
import { readOutcome } from '../contract/outcome';
import { REGIONAL_EVACUATION_RUNBOOK, type RegionalEvacuationResult } from '../contract/regional-evacuation';
import { searchAttributes } from '../contract/runbook';
import { readMemo, runMemoSchema } from './memo';

export const FINDING_CODES = ['NO_FAILOVER', 'TEST_OVERDUE', 'RTO_EXCEEDED', 'BACKUP_OVERDUE', 'FAILED_TEST'] as const;
export type FindingCode = (typeof FINDING_CODES)[number];

export interface AuditFinding {
  code: FindingCode;
  /** The database or service. */
  subject: string;
  tier: number;
  /** What was found and what to do about it, in one line. */
  detail: string;
}

export interface AuditRow {
  kind: 'database' | 'service';
  name: string;
  tier: number;
  hasFailover: boolean;
  /** How it fails over, in words ("none" when it does not). */
  failover: string;
  /** The newest completed failover drill covering it (at: when the run closed). */
  lastDrill?: { at: string; workflowId: string; runbook: string };
  /** From the newest completed failover run covering it, drill or not. */
  lastMeasuredRto?: { seconds: number; targetSeconds: number; workflowId: string };
  /** Databases: the newest completed backup (at: manifest.finishedAt). */
  newestBackup?: { at: string; ageSeconds: number; rpoSeconds: number; workflowId: string };
  /** Databases: the newest restore test by close time. */
  lastRestoreTest?: { at: string; passed: boolean; workflowId: string };
  issues: FindingCode[];
}

export interface AuditReport {
  /** ISO time the audit is "as of". */
  asOf: string;
  rows: AuditRow[];
  findings: AuditFinding[];
  tier1Findings: number;
}

export interface AuditOptions {
  /** The audit's date (default now): runs that closed later are not counted. */
  asOf?: Date;
  /** The newest runs read per runbook (default 500). */
  maxRunsPerRunbook?: number;
}

/** The failover runbook a service is drilled and measured by. */
const EVACUATION_FAILOVER = REGIONAL_EVACUATION_RUNBOOK;
const DEFAULT_MAX_RUNS = 500;
const DAY_MS = 86_400_000;

/** A closed run of a Lifeboat runbook, as visibility lists it. */
interface ListedRun {
  runbook: string;
  workflowId: string;
  runId: string;
  /** Temporal's status name: COMPLETED, FAILED, TIMED_OUT, CANCELLED, TERMINATED. */
  status: string;
  closeTime: Date;
  drill: boolean;
  targets: string[];
}

interface RunList {
  /** Newest first (by close time). */
  runs: ListedRun[];
  /** The listing stopped at the bound: older runs were not read. */
  truncated: boolean;
  limit: number;
}

/** The memo's targets, or undefined for a run not started by Lifeboat's startRun. */
function memoTargets(memo: Record<string, unknown> | undefined): string[] | undefined {
  return readMemo(runMemoSchema, memo)?.lifeboat.targets;
}

function toListed(runbook: string, wf: WorkflowExecutionInfo): ListedRun | undefined {
  const targets = memoTargets(wf.memo);
  if (!targets || !wf.closeTime) return undefined;
  return {
    runbook,
    workflowId: wf.workflowId,
    runId: wf.runId,
    status: wf.status.name,
    closeTime: wf.closeTime,
    drill: wf.typedSearchAttributes.get(searchAttributes.drill) === true,
    targets,
  };
}

/**
 * The newest closed runs of one runbook (at most `limit`), closed at or before asOf. Runbook and
 * status come from fixed constants and asOf from a Date, so nothing user-typed enters the query.
 */
async function listClosedRuns(client: Client, runbook: string, statuses: readonly string[], asOf: Date, limit: number): Promise<RunList> {
  const status = statuses.length === 1 ? `ExecutionStatus = '${statuses[0]}'` : `ExecutionStatus IN (${statuses.map((s) => `'${s}'`).join(', ')})`;
  // Close times are stored with sub-millisecond precision: "at or before asOf" to the millisecond.
  const query = `LifeboatRunbook = '${runbook}' AND ${status} AND CloseTime < '${new Date(asOf.getTime() + 1).toISOString()}'`;
  const runs: ListedRun[] = [];
  let seen = 0;
  let truncated = false;
  for await (const wf of client.workflow.list({ query, pageSize: Math.min(limit, 100) })) {
    if (seen >= limit) {
      truncated = true;
      break;
    }
    seen += 1;
    const run = toListed(runbook, wf);
    if (run && run.closeTime.getTime() <= asOf.getTime()) runs.push(run);
  }
  runs.sort((a, b) => b.closeTime.getTime() - a.closeTime.getTime());
  return { runs, truncated, limit };
}

/** Merges newest-first lists into one newest-first list. */
function newestFirst(...lists: RunList[]): ListedRun[] {
  return lists.flatMap((l) => l.runs).sort((a, b) => b.closeTime.getTime() - a.closeTime.getTime());
}

const FAILED_STATUSES = ['FAILED', 'TIMED_OUT', 'TERMINATED', 'CANCELLED'];
const STATUS_WORDS: Record<string, string> = { FAILED: 'failed', TIMED_OUT: 'timed out', TERMINATED: 'terminated', CANCELLED: 'cancelled', COMPLETED: 'completed' };

/** Results are read once per run, and only for runs whose measurement the audit needs. */
class Results {
  private readonly cache = new Map<string, Promise<unknown>>();
  constructor(private readonly client: Client) {}

  get<T>(run: ListedRun): Promise<T | undefined> {
    const key = `${run.workflowId}\u0000${run.runId}`;
    let pending = this.cache.get(key);
    if (!pending) {
      pending = this.client.workflow
        .getHandle(run.workflowId, run.runId, { followRuns: false })
        .result()
        .catch(() => undefined);
      this.cache.set(key, pending);
    }
    return pending as Promise<T | undefined>;
  }
}

const iso = (d: Date) => d.toISOString();
const day = (at: string) => at.slice(0, 10);

function humanSeconds(seconds: number): string {
  if (seconds < 120) return `${Number(seconds.toFixed(1))}s`;
  if (seconds < 7200) return `${Number((seconds / 60).toFixed(1))}m`;
  if (seconds < 172_800) return `${Number((seconds / 3600).toFixed(1))}h`;
  return `${Number((seconds / 86_400).toFixed(1))}d`;
}

function tierTarget(config: LifeboatConfig, tier: number): number {
  const tiers = config.audit.tiers;
  return tier === 1 ? tiers[1].rtoSeconds : tier === 2 ? tiers[2].rtoSeconds : tiers[3].rtoSeconds;
}

function databaseFailover(spec: DatabaseConfig): string {
  return spec.provider === 'postgres'
    ? `standby ${spec.standby.region} ${spec.standby.host}:${spec.standby.port} (db-promotion)`
    : `replica ${spec.replica.instance} ${spec.replica.region} (db-promotion, ${spec.promotion})`;
}

/** " (only the newest N ... runs were read)" when a listing hit its bound. */
function boundNote(...lists: RunList[]): string {
  const cut = lists.filter((l) => l.truncated);
  return cut.length > 0 ? ` among the newest ${cut[0]?.limit ?? DEFAULT_MAX_RUNS} runs read per runbook` : '';
}

export async function runAudit(client: Client, loaded: LoadedConfig, options: AuditOptions = {}): Promise<AuditReport> {
  const { config } = loaded;
  const asOf = options.asOf ?? new Date();
  const limit = options.maxRunsPerRunbook ?? DEFAULT_MAX_RUNS;
  const audit = config.audit;
  const maxAgeMs = audit.drillMaxAgeDays * DAY_MS;

  const [promotions, evacuations, backups, restoreTests] = await Promise.all([
    listClosedRuns(client, DB_PROMOTION_RUNBOOK, ['Completed'], asOf, limit),
    listClosedRuns(client, REGIONAL_EVACUATION_RUNBOOK, ['Completed'], asOf, limit),
    listClosedRuns(client, DATABASE_BACKUP_RUNBOOK, ['Completed'], asOf, limit),
    listClosedRuns(client, BACKUP_RESTORE_TEST_RUNBOOK, ['Completed', 'Failed', 'TimedOut', 'Terminated', 'Canceled'], asOf, limit),
  ]);
  const failovers = newestFirst(promotions, evacuations);
  const results = new Results(client);

  /** Whether a completed failover run recovered `database` (a degraded evacuation may have left it behind). */
  async function recovered(run: ListedRun, database: string): Promise<{ ok: boolean; rtoSeconds?: number }> {
    if (run.runbook === DB_PROMOTION_RUNBOOK) {
      return { ok: true };
    }
    const result = await results.get<RegionalEvacuationResult>(run);
    const outcome = result?.databases.find((d) => d.database === database);
    if (outcome && outcome.state !== 'promoted') return { ok: false };
    return { ok: true, rtoSeconds: outcome?.result?.rto.measuredSeconds ?? result?.rto.measuredSeconds };
  }

  async function measuredRto(run: ListedRun, database?: string): Promise<number | undefined> {
    if (run.runbook !== DB_PROMOTION_RUNBOOK && database !== undefined) return (await recovered(run, database)).rtoSeconds;
    return readOutcome(await results.get<unknown>(run)).rto?.measuredSeconds;
  }

  const rows: AuditRow[] = [];
  const findings: AuditFinding[] = [];
  const flag = (row: AuditRow, code: FindingCode, detail: string) => {
    row.issues.push(code);
    findings.push({ code, subject: row.name, tier: row.tier, detail });
  };

  /** TEST_OVERDUE and RTO_EXCEEDED from the failover runs covering a subject. */
  async function failoverEvidence(row: AuditRow, runs: ListedRun[], database: string | undefined, drillHow: string, lists: RunList[]): Promise<void> {
    let newestDrill: ListedRun | undefined;
    let newestRun: ListedRun | undefined;
    for (const run of runs) {
      if (newestDrill && newestRun) break;
      if (database !== undefined && !(await recovered(run, database)).ok) continue;
      newestRun ??= run;
      if (run.drill) newestDrill ??= run;
    }
    if (newestDrill) row.lastDrill = { at: iso(newestDrill.closeTime), workflowId: newestDrill.workflowId, runbook: newestDrill.runbook };
    const drillAgeMs = newestDrill ? asOf.getTime() - newestDrill.closeTime.getTime() : undefined;
    if (!newestDrill) {
      flag(row, 'TEST_OVERDUE', `never drilled: no completed failover drill on record${boundNote(...lists)} as of ${day(iso(asOf))}: ${drillHow}`);
    } else if (drillAgeMs !== undefined && drillAgeMs > maxAgeMs) {
      flag(
        row,
        'TEST_OVERDUE',
        `last drill ${newestDrill.workflowId} completed ${day(iso(newestDrill.closeTime))}, ${Math.floor(drillAgeMs / DAY_MS)} days before ${day(iso(asOf))} (limit ${audit.drillMaxAgeDays} days): ${drillHow}`,
      );
    }
    if (newestRun) {
      const seconds = await measuredRto(newestRun, database);
      const target = tierTarget(config, row.tier);
      if (seconds !== undefined) {
        row.lastMeasuredRto = { seconds, targetSeconds: target, workflowId: newestRun.workflowId };
        if (seconds > target) {
          flag(
            row,
            'RTO_EXCEEDED',
            `measured RTO ${humanSeconds(seconds)} (${newestRun.workflowId}) exceeds the tier-${row.tier} target of ${humanSeconds(target)}: find the slow step in 'lifeboat status ${newestRun.workflowId}' (gate wait, catch-up, checks), shorten it and drill again, or review the tier`,
          );
        }
      }
    }
  }

  for (const [name, spec] of Object.entries(config.databases)) {
    const row: AuditRow = { kind: 'database', name, tier: spec.tier, hasFailover: true, failover: databaseFailover(spec), issues: [] };
    rows.push(row);
    const covering = failovers.filter((r) => r.targets.includes(name));
    await failoverEvidence(row, covering, name, `run a drill: lifeboat start db-promotion database=${name} --drill`, [promotions, evacuations]);

    if (!spec.backup) {
      flag(row, 'BACKUP_OVERDUE', `no backup configured: add databases.${name}.backup (category, sampleQueries) and back it up with 'lifeboat start database-backup database=${name}' on a schedule`);
    } else {
      const category = spec.backup.category;
      const rpoSeconds = config.backups?.categories[category]?.rpoSeconds;
      const newest = backups.runs.find((r) => r.targets.includes(name));
      const result = newest ? await results.get<DatabaseBackupResult>(newest) : undefined;
      const finishedAt = result?.manifest.finishedAt;
      if (newest && finishedAt) {
        const ageSeconds = (asOf.getTime() - Date.parse(finishedAt)) / 1000;
        row.newestBackup = { at: finishedAt, ageSeconds, rpoSeconds: rpoSeconds ?? 0, workflowId: newest.workflowId };
        if (rpoSeconds !== undefined && ageSeconds > rpoSeconds) {
          flag(
            row,
            'BACKUP_OVERDUE',
            `newest backup (${newest.workflowId}) finished ${finishedAt}, ${humanSeconds(ageSeconds)} before ${iso(asOf)}, beyond the ${humanSeconds(rpoSeconds)} RPO of category ${category}: run 'lifeboat start database-backup database=${name}' and check the backup schedule`,
          );
        }
      } else {
        flag(row, 'BACKUP_OVERDUE', `no completed backup on record${boundNote(backups)} as of ${day(iso(asOf))}: run 'lifeboat start database-backup database=${name}' and schedule it (schedules.backups)`);
      }
    }

    const test = restoreTests.runs.find((r) => r.targets.includes(name));
    if (test) {
      const passed = test.status === 'COMPLETED';
      row.lastRestoreTest = { at: iso(test.closeTime), passed, workflowId: test.workflowId };
      if (!passed && FAILED_STATUSES.includes(test.status)) {
        flag(
          row,
          'FAILED_TEST',
          `newest restore test ${test.workflowId} ${STATUS_WORDS[test.status] ?? test.status.toLowerCase()} at ${iso(test.closeTime)}: read why with 'lifeboat status ${test.workflowId}', fix it and run 'lifeboat start backup-restore-test database=${name}'`,
        );
      }
    }
  }

  for (const [name, service] of Object.entries(audit.services)) {
    const failover = service.failover;
    const row: AuditRow = { kind: 'service', name, tier: service.tier, hasFailover: failover !== undefined, failover: failover ?? 'none', issues: [] };
    rows.push(row);
    if (failover === undefined) {
      flag(row, 'NO_FAILOVER', `no failover configured: a single point of failure; set up a failover and record it as audit.services.${name}.failover (regional-evacuation, or how it fails over)`);
    } else if (failover === EVACUATION_FAILOVER) {
      const drills = evacuations.runs;
      await failoverEvidence(row, drills, undefined, 'run a drill: lifeboat start regional-evacuation region=REGION --drill', [evacuations]);
    } else {
      // Lifeboat does not run this failover, so it holds no evidence that it was ever tested.
      flag(row, 'TEST_OVERDUE', `failover '${failover}' is not run by Lifeboat: no drill on record; drill it, or run it as a Lifeboat runbook so its drills become evidence`);
    }
  }

  return { asOf: iso(asOf), rows, findings, tier1Findings: findings.filter((f) => f.tier === 1).length };
}

/** 1 when any tier-1 finding exists (for CI and schedules), else 0. */
export function auditExitCode(report: AuditReport): number {
  return report.tier1Findings > 0 ? 1 : 0;
}

/** A fixed-width table of every database and service, then one line per finding saying what to do. */
export function renderAuditTable(report: AuditReport): string {
  const header = ['kind', 'name', 'tier', 'failover', 'last drill', 'rto (target)', 'newest backup (rpo)', 'restore test', 'issues'];
  const cells = report.rows.map((r) => [
    r.kind,
    r.name,
    String(r.tier),
    r.hasFailover ? r.failover : 'NONE',
    r.lastDrill ? `${day(r.lastDrill.at)} ${r.lastDrill.runbook}` : 'never',
    r.lastMeasuredRto ? `${humanSeconds(r.lastMeasuredRto.seconds)} (${humanSeconds(r.lastMeasuredRto.targetSeconds)})` : '-',
    r.newestBackup ? `${humanSeconds(r.newestBackup.ageSeconds)} old (${humanSeconds(r.newestBackup.rpoSeconds)})` : r.kind === 'database' ? 'none' : '-',
    r.lastRestoreTest ? `${day(r.lastRestoreTest.at)} ${r.lastRestoreTest.passed ? 'passed' : 'FAILED'}` : r.kind === 'database' ? 'never' : '-',
    r.issues.length > 0 ? r.issues.join(',') : 'ok',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((row) => (row[i] ?? '').length)));
  const line = (row: readonly string[]) => row.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
  const byTier = [...report.findings].sort((a, b) => a.tier - b.tier);
  const tiers = new Set(report.findings.map((f) => f.tier));
  const summary = `${report.rows.length} audited as of ${report.asOf}: ${report.findings.length} finding${report.findings.length === 1 ? '' : 's'}` +
    (report.findings.length > 0 ? ` (${[...tiers].sort().map((t) => `tier ${t}: ${report.findings.filter((f) => f.tier === t).length}`).join(', ')})` : '');
  const lines = [`Redundancy audit, ${summary}`, '', line(header), line(widths.map((w) => '-'.repeat(w))), ...cells.map(line), ''];
  if (byTier.length === 0) lines.push('No findings.');
  else {
    lines.push('Findings:');
    for (const f of byTier) lines.push(`  [tier ${f.tier}] ${f.code.padEnd(14)} ${f.subject}: ${f.detail}`);
  }
  return lines.join('\n');
}
