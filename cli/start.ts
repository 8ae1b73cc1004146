/**
 * Turns `lifeboat start <runbook> key=value...` into a validated workflow
 * start: who may start, which target, which policy. Pure, so it is tested
 * without Temporal.
 */
import { TypedSearchAttributes } from '@temporalio/common';
import { postgresDatabases, standbyRegion, type LoadedConfig } from '../config/load';
import type { DatabaseConfig, LifeboatConfig } from '../config/schema';
import { FAILBACK_RUNBOOK, FAILBACK_WORKFLOW_TYPE, failbackHolds, failbackWorkflowId, type FailbackInput } from '../contract/failback';
import type { TargetRef } from '../contract/holds';
import {
  REGIONAL_EVACUATION_RUNBOOK,
  REGIONAL_EVACUATION_WORKFLOW_TYPE,
  regionalEvacuationHolds,
  regionalEvacuationWorkflowId,
  type RegionalEvacuationInput,
} from '../contract/regional-evacuation';
import {
  DB_PROMOTION_RUNBOOK,
  DB_PROMOTION_WORKFLOW_TYPE,
  dbPromotionHolds,
  dbPromotionWorkflowId,
  type DbPromotionInput,
  type DbPromotionPolicy,
  type PromotionMode,
} from '../contract/db-promotion';
import {
  BACKUP_RESTORE_TEST_RUNBOOK,
  BACKUP_RESTORE_TEST_WORKFLOW_TYPE,
  backupRestoreTestWorkflowId,
  DATABASE_BACKUP_RUNBOOK,
  DATABASE_BACKUP_WORKFLOW_TYPE,
  databaseBackupWorkflowId,
  type BackupRestoreTestInput,
  type DatabaseBackupInput,
} from '../contract/backup';
import { lookup } from '../contract/records';
import { hasRole, ROLE_SETS, searchAttributes, type Role, type RunContext } from '../contract/runbook';

/** Bad input on the command line: the message says what to fix. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export const RUNBOOKS = [DB_PROMOTION_RUNBOOK, REGIONAL_EVACUATION_RUNBOOK, FAILBACK_RUNBOOK, DATABASE_BACKUP_RUNBOOK, BACKUP_RESTORE_TEST_RUNBOOK] as const;

export interface StartRequest {
  runbook: string;
  as?: string;
  id?: string;
  detectedAt?: string;
  incident?: string;
  drill: boolean;
  params: readonly string[];
  /** Start although the same target ran within its cooldown (admins only). */
  force?: boolean;
  /** Clock, for tests. */
  now?: Date;
  /** Started by a Temporal Schedule: the run's clock starts when each run starts. */
  scheduled?: boolean;
  uiUrl?: string;
}

interface PlannedStartBase {
  workflowId: string;
  /** What the run acts on (databases, a region), kept in the run's memo so audits find runs by target. */
  targets: string[];
  searchAttributes: TypedSearchAttributes;
  staticSummary: string;
  staticDetails: string;
}

export type DbPromotionStart = PlannedStartBase & { workflowType: typeof DB_PROMOTION_WORKFLOW_TYPE; input: DbPromotionInput };
export type EvacuationStart = PlannedStartBase & { workflowType: typeof REGIONAL_EVACUATION_WORKFLOW_TYPE; input: RegionalEvacuationInput };
export type FailbackStart = PlannedStartBase & { workflowType: typeof FAILBACK_WORKFLOW_TYPE; input: FailbackInput };
export type DatabaseBackupStart = PlannedStartBase & { workflowType: typeof DATABASE_BACKUP_WORKFLOW_TYPE; input: DatabaseBackupInput };
export type RestoreTestStart = PlannedStartBase & { workflowType: typeof BACKUP_RESTORE_TEST_WORKFLOW_TYPE; input: BackupRestoreTestInput };
export type PlannedStart = DbPromotionStart | EvacuationStart | FailbackStart | DatabaseBackupStart | RestoreTestStart;

/** The targets the run will hold (the same functions the workflows use), so `start` can refuse early with the holder named. */
export function plannedHolds(plan: PlannedStart): TargetRef[] {
  switch (plan.workflowType) {
    case DB_PROMOTION_WORKFLOW_TYPE:
      return dbPromotionHolds(plan.input);
    case REGIONAL_EVACUATION_WORKFLOW_TYPE:
      return regionalEvacuationHolds(plan.input);
    case FAILBACK_WORKFLOW_TYPE:
      return failbackHolds(plan.input);
    default:
      return []; // backups and restore tests change no topology
  }
}

/** Resolves the identity (`--as` or LIFEBOAT_USER) and checks it holds one of `roles`. */
export function requirePerson(loaded: LoadedConfig, as: string | undefined, roles: readonly Role[], action: string): string {
  const who = as ?? process.env.LIFEBOAT_USER;
  if (!who) throw new UsageError(`say who you are: --as NAME or LIFEBOAT_USER (people in ${loaded.file}: ${Object.keys(loaded.config.people).join(', ')})`);
  const person = lookup(loaded.config.people, who);
  if (!person) throw new UsageError(`'${who}' is not a configured person: add them under people: in ${loaded.file}`);
  if (!hasRole(person.roles, roles)) {
    throw new UsageError(`'${who}' may not ${action}: needs the ${roles.join(' or ')} role (has ${person.roles.join(', ')})`);
  }
  return who;
}

export function parseParams(params: readonly string[], allowed: readonly string[]): Record<string, string> {
  const result: Record<string, string> = {};
  for (const param of params) {
    const eq = param.indexOf('=');
    if (eq <= 0) throw new UsageError(`expected key=value, got '${param}'`);
    const key = param.slice(0, eq);
    if (!allowed.includes(key)) throw new UsageError(`unknown parameter '${key}': this runbook takes ${allowed.join(', ')}`);
    if (key in result) throw new UsageError(`parameter '${key}' given twice`);
    result[key] = param.slice(eq + 1);
  }
  return result;
}

const ISO_WITH_ZONE = /^(\d{4})-(\d{2})-(\d{2})T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/;

function parseDetectedAt(value: string | undefined, now: Date): string {
  if (value === undefined) return now.toISOString();
  const m = ISO_WITH_ZONE.exec(value);
  const t = Date.parse(value);
  // Date.parse rolls 02-30 over to March; a real calendar date survives the round trip.
  const calendarDay = m ? new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]))) : undefined;
  if (!m || Number.isNaN(t) || calendarDay?.getUTCDate() !== Number(m[3]) || calendarDay.getUTCMonth() !== Number(m[2]) - 1) {
    throw new UsageError(`--detected-at must be an ISO 8601 time such as 2026-11-23T03:12:00Z, not '${value}'`);
  }
  if (t > now.getTime() + 60_000) throw new UsageError(`--detected-at ${value} is in the future`);
  return new Date(t).toISOString();
}

function isPromotionMode(mode: string): mode is PromotionMode {
  return mode === 'planned' || mode === 'unplanned';
}

interface Common {
  initiator: string;
  context: RunContext;
  mode: PromotionMode;
  params: Record<string, string>;
}

/** Checks shared by every runbook: identity, id, incident, mode, detection time. */
function common(loaded: LoadedConfig, request: StartRequest, allowedParams: readonly string[]): Common {
  if (request.id !== undefined && !/^[\w.:@-]{1,200}$/.test(request.id)) {
    throw new UsageError(`--id must be 1-200 letters, digits, ".", ":", "@", "_" or "-", not '${request.id}'`);
  }
  // An admin may start a run only to override a cooldown (--force); commanders start runs.
  const initiator = requirePerson(loaded, request.as, request.force ? ROLE_SETS.forceStart : ROLE_SETS.start, 'start a runbook');
  const params = parseParams(request.params, allowedParams);
  const mode = params.mode ?? 'planned';
  if (!isPromotionMode(mode)) throw new UsageError(`mode must be planned or unplanned, not '${mode}'`);
  if (request.incident !== undefined && !/^[\w.:-]{1,100}$/.test(request.incident)) {
    throw new UsageError('--incident must be 1-100 letters, digits, ".", ":", "_" or "-"');
  }
  const context: RunContext = {
    initiator,
    detectedAt: parseDetectedAt(request.detectedAt, request.now ?? new Date()),
    ...(request.scheduled ? { scheduled: true } : {}),
    incident: request.incident,
    drill: request.drill,
    people: Object.fromEntries(Object.entries(loaded.config.people).map(([name, p]) => [name, [...p.roles]])),
    ...approvalKeys(loaded),
    uiUrl: request.uiUrl,
  };
  return { initiator, context, mode, params };
}

/** The run's memo: which runbook and targets, so audits find the runs of a database without reading results. */
export function runMemo(plan: Pick<PlannedStart, 'targets'>, runbook: string): Record<string, unknown> {
  return { lifeboat: { runbook, targets: plan.targets } };
}

/** Public keys only (never a secret): the run verifies signed decisions with them. */
function approvalKeys(loaded: LoadedConfig): Pick<RunContext, 'approvalKeys' | 'signatures'> {
  const keys = Object.fromEntries(Object.entries(loaded.config.people).flatMap(([name, p]) => (p.publicKey ? [[name, p.publicKey]] : [])));
  const signatures = loaded.config.approvals.signatures;
  if (Object.keys(keys).length === 0 && signatures === 'optional') return {};
  return { approvalKeys: keys, signatures };
}

function startAttributes(runbook: string, request: StartRequest): TypedSearchAttributes {
  return new TypedSearchAttributes([
    { key: searchAttributes.runbook, value: runbook },
    { key: searchAttributes.phase, value: 'starting' },
    { key: searchAttributes.drill, value: request.drill },
    { key: searchAttributes.rtoBreached, value: false },
    ...(request.incident ? [{ key: searchAttributes.incident, value: request.incident }] : []),
  ]);
}

const stepBudgets = (steps: Partial<Record<string, { budgetSeconds: number }>>) =>
  Object.fromEntries(Object.entries(steps).flatMap(([id, s]) => (s ? [[id, s.budgetSeconds]] : [])));

/** The db-promotion policy of one database, from the config. */
export function promotionPolicy(config: LifeboatConfig, database: DatabaseConfig): DbPromotionPolicy {
  const runbook = config.runbooks['db-promotion'];
  return {
    rto: runbook.rto,
    stepBudgets: stepBudgets(runbook.steps),
    gates: runbook.gates,
    rpoTargetSeconds: database.rpoTargetSeconds,
    catchUpTimeoutSeconds: runbook.catchUpTimeoutSeconds,
    compensationAttempts: runbook.compensationAttempts,
    returnWatchProbeSeconds: runbook.returnWatchProbeSeconds,
  };
}

/** The databases whose primary is in `region`, and the one region their standbys are in. */
function regionDatabases(config: LifeboatConfig, region: string | undefined, runbook: string, meaning: string, otherwise: string) {
  // The lab's regional runbooks re-point services at host:port endpoints: self-managed PostgreSQL pairs.
  const pairs = postgresDatabases(config);
  const regions = [...new Set(pairs.map(([, d]) => d.primary.region))];
  if (!region) throw new UsageError(`${runbook} needs region=NAME, ${meaning} (regions with primaries: ${regions.join(', ')})`);
  const databases = pairs.filter(([, d]) => d.primary.region === region);
  if (databases.length === 0) throw new UsageError(`no database has its primary in region '${region}': regions with primaries are ${regions.join(', ')}`);
  const others = [...new Set(databases.map(([, d]) => d.standby.region))];
  const other = others[0];
  if (others.length !== 1 || !other) throw new UsageError(`the databases of ${region} have standbys in several regions (${others.join(', ')}): ${otherwise}`);
  return { region, databases, other };
}

export function planStart(loaded: LoadedConfig, request: StartRequest): PlannedStart {
  if (request.runbook === DB_PROMOTION_RUNBOOK) return planDbPromotion(loaded, request);
  if (request.runbook === REGIONAL_EVACUATION_RUNBOOK) return planEvacuation(loaded, request);
  if (request.runbook === FAILBACK_RUNBOOK) return planFailback(loaded, request);
  if (request.runbook === DATABASE_BACKUP_RUNBOOK) return planDatabaseBackup(loaded, request);
  if (request.runbook === BACKUP_RESTORE_TEST_RUNBOOK) return planRestoreTest(loaded, request);
  throw new UsageError(`unknown runbook '${request.runbook}': known runbooks are ${RUNBOOKS.join(', ')}`);
}

export function planDbPromotion(loaded: LoadedConfig, request: StartRequest): DbPromotionStart {
  const { config } = loaded;
  const { initiator, context, mode, params } = common(loaded, request, ['database', 'mode']);
  const database = params.database;
  if (!database) throw new UsageError(`db-promotion needs database=NAME (configured: ${Object.keys(config.databases).join(', ')})`);
  const db = lookup(config.databases, database);
  if (!db) throw new UsageError(`unknown database '${database}': configured databases are ${Object.keys(config.databases).join(', ')}`);
  if (db.provider === 'cloudsql' && mode === 'planned' && db.promotion !== 'switchover') {
    // promoteReplica leaves the old primary writable: a planned move could lose the writes it takes meanwhile.
    throw new UsageError(`a planned promotion of Cloud SQL database '${database}' needs promotion: switchover (zero data loss) in ${loaded.file}; with promote-replica use mode=unplanned`);
  }
  const runbook = config.runbooks['db-promotion'];
  return {
    workflowType: DB_PROMOTION_WORKFLOW_TYPE,
    workflowId: request.id ?? dbPromotionWorkflowId(database),
    input: { database, mode, run: context, policy: promotionPolicy(config, db) },
    searchAttributes: startAttributes(DB_PROMOTION_RUNBOOK, request),
    targets: [database],
    staticSummary: `${request.drill ? 'DRILL: ' : ''}promote ${database} standby (${standbyRegion(db)}) in ${mode} mode`,
    staticDetails: [
      `**Runbook** db-promotion, **database** ${database}, **mode** ${mode}`,
      `**Initiator** ${initiator}${request.incident ? `, **incident** ${request.incident}` : ''}`,
      `**Detected** ${context.detectedAt}, **RTO budget** ${runbook.rto.budgetSeconds}s (${runbook.rto.onBreach} on breach), **RPO target** ${db.rpoTargetSeconds}s`,
      db.provider === 'postgres'
        ? `**Primary** ${db.primary.region} ${db.primary.host}:${db.primary.port} → **standby** ${db.standby.region} ${db.standby.host}:${db.standby.port}`
        : `**Cloud SQL** ${db.project}: **primary** ${db.primary.instance} (${db.primary.region}) → **replica** ${db.replica.instance} (${db.replica.region}), ${db.promotion}`,
    ].join('\n'),
  };
}

export function planEvacuation(loaded: LoadedConfig, request: StartRequest): EvacuationStart {
  const { config } = loaded;
  const { initiator, context, mode, params } = common(loaded, request, ['region', 'mode']);
  const runbook = config.runbooks['regional-evacuation'];
  if (!runbook) throw new UsageError(`regional-evacuation is not configured: add runbooks.regional-evacuation to ${loaded.file}`);
  const { region, databases: evacuated, other: survivingRegion } = regionDatabases(config, params.region, 'regional-evacuation', 'the region to leave', 'evacuate them with db-promotion one by one');
  const statusEverySeconds = config.notifications.statusEveryMinutes * 60;
  return {
    workflowType: REGIONAL_EVACUATION_WORKFLOW_TYPE,
    workflowId: request.id ?? regionalEvacuationWorkflowId(region),
    input: {
      region,
      survivingRegion,
      mode,
      run: context,
      databases: evacuated.map(([name, d]) => ({ name, standby: { region: d.standby.region, host: d.standby.host, port: d.standby.port }, promotion: { ...promotionPolicy(config, d), rto: runbook.rto } })),
      policy: {
        rto: runbook.rto,
        stepBudgets: stepBudgets(runbook.steps),
        gates: runbook.gates,
        onPromotionFailure: runbook.onPromotionFailure,
        canary: runbook.canary,
        compensationAttempts: runbook.compensationAttempts,
        statusEverySeconds,
      },
    },
    searchAttributes: startAttributes(REGIONAL_EVACUATION_RUNBOOK, request),
    targets: [region, ...evacuated.map(([n]) => n)],
    staticSummary: `${request.drill ? 'DRILL: ' : ''}evacuate ${region} to ${survivingRegion} (${mode}): ${evacuated.map(([n]) => n).join(', ')}`,
    staticDetails: [
      `**Runbook** regional-evacuation, **region** ${region} → **${survivingRegion}**, **mode** ${mode}`,
      `**Databases** ${evacuated.map(([n]) => n).join(', ')}`,
      `**Initiator** ${initiator}${request.incident ? `, **incident** ${request.incident}` : ''}`,
      `**Detected** ${context.detectedAt}, **RTO budget** ${runbook.rto.budgetSeconds}s (${runbook.rto.onBreach} on breach)`,
    ].join('\n'),
  };
}

export function planFailback(loaded: LoadedConfig, request: StartRequest): FailbackStart {
  const { config } = loaded;
  const { initiator, context, params } = common(loaded, request, ['region']);
  const runbook = config.runbooks.failback;
  if (!runbook) throw new UsageError(`failback is not configured: add runbooks.failback to ${loaded.file}`);
  const { region, databases: returning, other: from } = regionDatabases(config, params.region, 'failback', 'the region to return to', 'fail them back one by one');
  return {
    workflowType: FAILBACK_WORKFLOW_TYPE,
    workflowId: request.id ?? failbackWorkflowId(region),
    input: {
      region,
      from,
      run: context,
      databases: returning.map(([name, d]) => ({ name, home: { region: d.primary.region, host: d.primary.host, port: d.primary.port }, promotion: { ...promotionPolicy(config, d), rto: runbook.rto } })),
      policy: {
        rto: runbook.rto,
        stepBudgets: stepBudgets(runbook.steps),
        gates: { switchover: runbook.gates.switchover, 'discard-divergence': runbook.gates['discard-divergence'] ?? runbook.gates.switchover },
        canary: runbook.canary,
        reconciliation: runbook.reconciliation,
        catchUpMaxLagBytes: runbook.catchUpMaxLagBytes,
        catchUpTimeoutSeconds: runbook.catchUpTimeoutSeconds,
        compensationAttempts: runbook.compensationAttempts,
        statusEverySeconds: config.notifications.statusEveryMinutes * 60,
      },
    },
    searchAttributes: startAttributes(FAILBACK_RUNBOOK, request),
    targets: [region, ...returning.map(([n]) => n)],
    staticSummary: `${request.drill ? 'DRILL: ' : ''}fail back ${returning.map(([n]) => n).join(', ')} from ${from} to ${region}`,
    staticDetails: [
      `**Runbook** failback, **from** ${from} → **${region}**`,
      `**Databases** ${returning.map(([n]) => n).join(', ')}`,
      `**Initiator** ${initiator}${request.incident ? `, **incident** ${request.incident}` : ''}`,
    ].join('\n'),
  };
}

/** A database configured with `backup:`, and its data category. */
function backedUpDatabase(loaded: LoadedConfig, runbook: string, database: string | undefined) {
  const { config } = loaded;
  const candidates = Object.entries(config.databases).filter(([, d]) => d.backup).map(([n]) => n);
  if (!database) throw new UsageError(`${runbook} needs database=NAME (databases with backup: ${candidates.join(', ') || 'none'})`);
  const db = lookup(config.databases, database);
  if (!db) throw new UsageError(`unknown database '${database}': configured databases are ${Object.keys(config.databases).join(', ')}`);
  const category = db.backup ? lookup(config.backups?.categories ?? {}, db.backup.category) : undefined;
  if (!db.backup || !category) throw new UsageError(`database '${database}' has no backup: in ${loaded.file} (databases with backup: ${candidates.join(', ') || 'none'})`);
  return { db, backup: db.backup, category };
}

export function planDatabaseBackup(loaded: LoadedConfig, request: StartRequest): DatabaseBackupStart {
  const { config } = loaded;
  const { initiator, context, params } = common(loaded, request, ['database']);
  const { backup } = backedUpDatabase(loaded, DATABASE_BACKUP_RUNBOOK, params.database);
  const database = params.database ?? '';
  const runbook = config.runbooks['database-backup'];
  return {
    workflowType: DATABASE_BACKUP_WORKFLOW_TYPE,
    workflowId: request.id ?? databaseBackupWorkflowId(database, context.detectedAt),
    input: {
      database,
      run: context,
      policy: { rto: runbook.rto, keepVerified: config.backups?.keepVerified ?? 1, stepBudgets: stepBudgets(runbook.steps), compensationAttempts: runbook.compensationAttempts },
    },
    searchAttributes: startAttributes(DATABASE_BACKUP_RUNBOOK, request),
    targets: [database],
    staticSummary: `${request.drill ? 'DRILL: ' : ''}back up ${database} (category ${backup.category}) to ${Object.values(config.backups?.storage.buckets ?? {}).join(' + ')}`,
    staticDetails: [
      `**Runbook** database-backup, **database** ${database}, **category** ${backup.category}`,
      `**Initiator** ${initiator}, **retention** newest ${config.backups?.keepVerified ?? 1} verified backups`,
    ].join('\n'),
  };
}

export function planRestoreTest(loaded: LoadedConfig, request: StartRequest): RestoreTestStart {
  const { config } = loaded;
  const { initiator, context, params } = common(loaded, request, ['database', 'backup']);
  const { backup, category } = backedUpDatabase(loaded, BACKUP_RESTORE_TEST_RUNBOOK, params.database);
  const database = params.database ?? '';
  if (params.backup !== undefined && !/^[\w.:-]{1,200}$/.test(params.backup)) throw new UsageError(`backup must be a backup id such as ${database}-20261123T030000Z-1a2b3c4d, not '${params.backup}'`);
  const runbook = config.runbooks['backup-restore-test'];
  return {
    workflowType: BACKUP_RESTORE_TEST_WORKFLOW_TYPE,
    workflowId: request.id ?? backupRestoreTestWorkflowId(database, context.detectedAt),
    input: {
      database,
      backupId: params.backup,
      run: context,
      policy: {
        rto: runbook.rto,
        restoreTargetSeconds: category.restoreTargetSeconds,
        sampleQueries: backup.sampleQueries,
        stepBudgets: stepBudgets(runbook.steps),
        compensationAttempts: runbook.compensationAttempts,
      },
    },
    searchAttributes: startAttributes(BACKUP_RESTORE_TEST_RUNBOOK, request),
    targets: [database],
    staticSummary: `${request.drill ? 'DRILL: ' : ''}restore test of ${database}: ${params.backup ?? 'newest verified backup'}`,
    staticDetails: [
      `**Runbook** backup-restore-test, **database** ${database}, **backup** ${params.backup ?? 'newest verified'}`,
      `**Restore target** ${category.restoreTargetSeconds}s (category ${backup.category}), **sample queries** ${backup.sampleQueries.length}`,
      `**Initiator** ${initiator}`,
    ].join('\n'),
  };
}
