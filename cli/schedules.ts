/**
 * `lifeboat schedules`: drills and backups on Temporal Schedules, from the
 * config. `apply` is idempotent: it creates what is missing, updates what
 * changed (a hash of the desired schedule is kept in the schedule's memo),
 * leaves the rest alone, and deletes schedules no longer in the config only
 * with --prune. Changing schedules is for admins; anyone configured may list.
 */
import { createHash } from 'node:crypto';
import {
  ScheduleNotFoundError,
  ScheduleOverlapPolicy,
  type CalendarSpec,
  type Client,
  type DayOfWeek,
  type Month,
  type ScheduleOptions,
  type ScheduleOptionsStartWorkflowAction,
} from '@temporalio/client';
import type { Workflow } from '@temporalio/common';
import type { LoadedConfig } from '../config/load';
import type { CalendarConfig } from '../config/schema';
import { BACKUP_RESTORE_TEST_RUNBOOK, DATABASE_BACKUP_RUNBOOK } from '../contract/backup';
import { REGIONAL_EVACUATION_RUNBOOK } from '../contract/regional-evacuation';
import { ROLE_SETS } from '../contract/runbook';
import { temporalTarget } from '../lib/temporal';
import { planStart, requirePerson, runMemo, UsageError, type StartRequest } from './start';
import { readMemo, scheduleMemoSchema } from './memo';

/** Every schedule Lifeboat owns has an id with this prefix; others in the namespace are never touched. */
export const SCHEDULE_PREFIX = 'lifeboat:';

const MONTHS: readonly Month[] = ['JANUARY', 'FEBRUARY', 'MARCH', 'APRIL', 'MAY', 'JUNE', 'JULY', 'AUGUST', 'SEPTEMBER', 'OCTOBER', 'NOVEMBER', 'DECEMBER'];

export interface DesiredSchedule {
  scheduleId: string;
  runbook: string;
  target: string;
  drill: boolean;
  options: ScheduleOptions<ScheduleOptionsStartWorkflowAction<Workflow>>;
  /** SHA-256 of what is scheduled; kept in the schedule's memo so `apply` knows when to update. */
  specHash: string;
}

export function calendarSpec(calendar: CalendarConfig): CalendarSpec {
  const spec: CalendarSpec = { hour: calendar.hour, minute: calendar.minute };
  if (calendar.month) spec.month = calendar.month.map((m) => MONTHS[m - 1] as Month);
  if (typeof calendar.dayOfMonth === 'number') spec.dayOfMonth = calendar.dayOfMonth;
  else if (calendar.dayOfMonth) spec.dayOfMonth = { start: calendar.dayOfMonth.start, end: calendar.dayOfMonth.end };
  if (calendar.dayOfWeek) spec.dayOfWeek = calendar.dayOfWeek as DayOfWeek;
  return spec;
}

/** The schedules the config asks for, each with the workflow start a manual `lifeboat start` would make. */
export function desiredSchedules(loaded: LoadedConfig): DesiredSchedule[] {
  const { config } = loaded;
  const schedules = config.schedules;
  if (!schedules) return [];
  const target = temporalTarget(loaded);
  const backedUp = Object.entries(config.databases).filter(([, d]) => d.backup).map(([name]) => name);
  const wanted: Array<{ runbook: string; target: string; params: string[]; drill: boolean; calendar: CalendarConfig }> = [
    ...(schedules.backups ? backedUp.map((db) => ({ runbook: DATABASE_BACKUP_RUNBOOK, target: db, params: [`database=${db}`], drill: false, calendar: schedules.backups!.calendar })) : []),
    ...(schedules.restoreTests ? backedUp.map((db) => ({ runbook: BACKUP_RESTORE_TEST_RUNBOOK, target: db, params: [`database=${db}`], drill: true, calendar: schedules.restoreTests!.calendar })) : []),
    ...schedules.evacuationDrills.map((d) => ({ runbook: REGIONAL_EVACUATION_RUNBOOK, target: d.region, params: [`region=${d.region}`, 'mode=planned'], drill: true, calendar: d.calendar })),
  ];
  return wanted.map((w) => {
    const scheduleId = `${SCHEDULE_PREFIX}${w.runbook}:${w.target}`;
    const request: StartRequest = { runbook: w.runbook, as: schedules.initiator, drill: w.drill, params: w.params, scheduled: true, uiUrl: target.uiUrl, now: new Date(0) };
    const plan = planStart(loaded, { ...request, id: scheduleId });
    const spec = { calendars: [calendarSpec(w.calendar)], timezone: schedules.timeZone };
    const policies = { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: `${schedules.catchupWindowMinutes}m`, pauseOnFailure: schedules.pauseOnFailure };
    // The scheduled input carries no clock: each run's RTO clock starts when it starts (RunContext.scheduled).
    const input = { ...plan.input, run: { ...plan.input.run, detectedAt: new Date(0).toISOString() } };
    const action: ScheduleOptionsStartWorkflowAction<Workflow> = {
      type: 'startWorkflow',
      workflowType: plan.workflowType,
      args: [input],
      taskQueue: target.taskQueue,
      // Temporal appends the scheduled time: one id per run.
      workflowId: plan.workflowId,
      memo: runMemo(plan, w.runbook),
      typedSearchAttributes: plan.searchAttributes,
      staticSummary: `scheduled: ${plan.staticSummary}`,
      staticDetails: plan.staticDetails,
    };
    const specHash = createHash('sha256').update(JSON.stringify({ spec, policies, action: { ...action, typedSearchAttributes: undefined } })).digest('hex').slice(0, 16);
    return {
      scheduleId,
      runbook: w.runbook,
      target: w.target,
      drill: w.drill,
      specHash,
      options: { scheduleId, spec, action, policies, memo: { lifeboat: { specHash, runbook: w.runbook, target: w.target } }, state: { note: `managed by lifeboat schedules apply (${loaded.file})` } },
    };
  });
}

export interface ApplyOutcome {
  created: string[];
  updated: string[];
  unchanged: string[];
  /** In Temporal, not in the config: deleted with --prune, else listed. */
  removed: string[];
  notInConfig: string[];
}

async function lifeboatScheduleIds(client: Client): Promise<string[]> {
  const ids: string[] = [];
  for await (const s of client.schedule.list()) if (s.scheduleId.startsWith(SCHEDULE_PREFIX)) ids.push(s.scheduleId);
  return ids.sort();
}

export async function applySchedules(client: Client, loaded: LoadedConfig, options: { as?: string; prune: boolean }): Promise<ApplyOutcome> {
  requirePerson(loaded, options.as, ROLE_SETS.schedules, 'change schedules');
  const desired = desiredSchedules(loaded);
  const outcome: ApplyOutcome = { created: [], updated: [], unchanged: [], removed: [], notInConfig: [] };
  for (const d of desired) {
    const handle = client.schedule.getHandle(d.scheduleId);
    let current: Awaited<ReturnType<typeof handle.describe>> | undefined;
    try {
      current = await handle.describe();
    } catch (err) {
      if (!(err instanceof ScheduleNotFoundError)) throw err;
    }
    if (!current) {
      await client.schedule.create(d.options);
      outcome.created.push(d.scheduleId);
      continue;
    }
    const memo = readMemo(scheduleMemoSchema, current.memo);
    if (memo?.lifeboat.specHash === d.specHash) {
      outcome.unchanged.push(d.scheduleId);
      continue;
    }
    // The memo cannot be updated in place: delete and recreate keeps the hash honest (the runs' history stays).
    await handle.delete();
    await client.schedule.create(d.options);
    outcome.updated.push(d.scheduleId);
  }
  const wanted = new Set(desired.map((d) => d.scheduleId));
  for (const id of await lifeboatScheduleIds(client)) {
    if (wanted.has(id)) continue;
    if (options.prune) {
      await client.schedule.getHandle(id).delete();
      outcome.removed.push(id);
    } else {
      outcome.notInConfig.push(id);
    }
  }
  return outcome;
}

export interface ScheduleRow {
  scheduleId: string;
  workflowType?: string;
  paused: boolean;
  note?: string;
  nextRuns: string[];
  recentRuns: Array<{ workflowId: string; scheduledAt: string }>;
  inConfig: boolean;
}

export async function listSchedules(client: Client, loaded: LoadedConfig, as: string | undefined): Promise<ScheduleRow[]> {
  requirePerson(loaded, as, ROLE_SETS.read, 'list schedules');
  const wanted = new Set(desiredSchedules(loaded).map((d) => d.scheduleId));
  const rows: ScheduleRow[] = [];
  for (const id of await lifeboatScheduleIds(client)) {
    let d;
    try {
      d = await client.schedule.getHandle(id).describe();
    } catch (err) {
      // The list is eventually consistent: a schedule deleted a moment ago may still be listed.
      if (err instanceof ScheduleNotFoundError) continue;
      throw err;
    }
    rows.push({
      scheduleId: id,
      workflowType: d.action.type === 'startWorkflow' ? d.action.workflowType : undefined,
      paused: d.state.paused,
      note: d.state.note,
      nextRuns: d.info.nextActionTimes.slice(0, 3).map((t) => t.toISOString()),
      recentRuns: d.info.recentActions.slice(-3).map((a) => ({ workflowId: a.action.workflow.workflowId, scheduledAt: a.scheduledAt.toISOString() })),
      inConfig: wanted.has(id),
    });
  }
  return rows;
}

export function formatSchedules(rows: readonly ScheduleRow[]): string {
  if (rows.length === 0) return 'no Lifeboat schedules: run `lifeboat schedules apply --as <admin>`';
  return rows
    .map((r) => [
      `${r.scheduleId}  ${r.paused ? 'PAUSED' : 'active'}${r.inConfig ? '' : '  (not in the config: `apply --prune` deletes it)'}`,
      `  next: ${r.nextRuns.join(', ') || '-'}`,
      `  recent: ${r.recentRuns.map((a) => `${a.workflowId} (${a.scheduledAt})`).join(', ') || '-'}`,
      ...(r.paused && r.note ? [`  note: ${r.note}`] : []),
    ].join('\n'))
    .join('\n');
}

/** pause | unpause | trigger | delete one Lifeboat schedule (admins). */
export async function changeSchedule(client: Client, loaded: LoadedConfig, action: 'pause' | 'unpause' | 'trigger' | 'delete', scheduleId: string, options: { as?: string; note?: string }): Promise<void> {
  const who = requirePerson(loaded, options.as, ROLE_SETS.schedules, `${action} schedules`);
  if (!scheduleId.startsWith(SCHEDULE_PREFIX)) throw new UsageError(`'${scheduleId}' is not a Lifeboat schedule (ids start with ${SCHEDULE_PREFIX}); see 'lifeboat schedules list'`);
  const handle = client.schedule.getHandle(scheduleId);
  try {
    await handle.describe();
  } catch (err) {
    if (err instanceof ScheduleNotFoundError) throw new UsageError(`no schedule '${scheduleId}': see 'lifeboat schedules list'`);
    throw err;
  }
  const note = `${action} by ${who}${options.note ? `: ${options.note}` : ''}`;
  if (action === 'pause') await handle.pause(note);
  else if (action === 'unpause') await handle.unpause(note);
  // A manual trigger follows the overlap policy too (skip): never a second run while one runs.
  else if (action === 'trigger') await handle.trigger(ScheduleOverlapPolicy.SKIP);
  else await handle.delete();
}
