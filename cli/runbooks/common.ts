/**
 * What every runbook's CLI module shares: the start request, the planned start
 * typed by the runbook's definition, the checks every start makes (identity,
 * id, incident, mode, detection time) and the shape of a CLI module. Pure, so
 * planning is tested without Temporal.
 */
import { TypedSearchAttributes } from '@temporalio/common';
import type { LoadedConfig } from '../../config/load';
import type { DatabaseConfig, LifeboatConfig } from '../../config/schema';
import type { AnyRunbookDefinition, InputOf } from '../../contract/definition';
import type { DbPromotionPolicy, PromotionMode } from '../../contract/db-promotion';
import { lookup } from '../../contract/records';
import { hasRole, ROLE_SETS, searchAttributes, type GatePolicy, type Role, type RtoPolicy, type RunContext } from '../../contract/runbook';
import type { CliReaders } from '../readers';
import { UsageError } from '../usage-error';

export { UsageError };

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
  /** The initiator's Ed25519 private key (PEM): the start is signed with it (required when approvals.signatures is required). */
  keyFile?: string;
  /** A sentinel's declared failure (the sentinel's own start): its votes go into the run's input. */
  trigger?: RunContext['trigger'];
}

/** A validated start of the runbook `D`: its workflow type paired with its input type. */
export interface PlannedStartOf<D extends AnyRunbookDefinition> {
  workflowType: D['workflowType'];
  input: InputOf<D>;
  workflowId: string;
  /** What the run acts on (databases, a region), kept in the run's memo so audits find runs by target. */
  targets: string[];
  searchAttributes: TypedSearchAttributes;
  staticSummary: string;
  staticDetails: string;
}

/** A runbook's configured policy as its docs and `--dry-run` show it. */
export interface RunbookPolicy {
  rto: RtoPolicy;
  steps: Partial<Record<string, { budgetSeconds: number }>>;
  gates: Record<string, GatePolicy>;
}

export interface PreflightCheck {
  check: string;
  ok: boolean;
  detail: string;
}

/** The CLI side of one runbook: how its parameters become a start, its `--dry-run` preflight, its docs. */
export interface CliRunbook<D extends AnyRunbookDefinition = AnyRunbookDefinition> {
  readonly definition: D;
  /** Validates `lifeboat start <runbook> key=value...` and builds the start; throws UsageError saying what to fix. */
  plan(loaded: LoadedConfig, request: StartRequest): PlannedStartOf<D>;
  /** The read-only checks a run would start with, made directly against the providers (none: `[]`). */
  preflight(readers: CliReaders, targets: readonly string[], mode: string | undefined): Array<Promise<PreflightCheck>>;
  /** The runbook's policy from the config, for its docs and dry run (undefined: not configured). */
  policy(loaded: LoadedConfig): RunbookPolicy | undefined;
}

/** Declares a runbook's CLI module, its plan typed by its definition. */
export function cliRunbook<D extends AnyRunbookDefinition>(module: CliRunbook<D>): CliRunbook<D> {
  return module;
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

export interface CommonStart {
  initiator: string;
  context: RunContext;
  mode: PromotionMode;
  params: Record<string, string>;
}

/** Checks shared by every runbook: identity, id, incident, mode, detection time. */
export function commonStart(loaded: LoadedConfig, request: StartRequest, allowedParams: readonly string[]): CommonStart {
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
    ...(request.trigger ? { trigger: request.trigger } : {}),
  };
  return { initiator, context, mode, params };
}

/** Public keys only (never a secret): the run verifies signed decisions with them. */
function approvalKeys(loaded: LoadedConfig): Pick<RunContext, 'approvalKeys' | 'signatures'> {
  const keys = Object.fromEntries(Object.entries(loaded.config.people).flatMap(([name, p]) => (p.publicKey ? [[name, p.publicKey]] : [])));
  const signatures = loaded.config.approvals.signatures;
  if (Object.keys(keys).length === 0 && signatures === 'optional') return {};
  return { approvalKeys: keys, signatures };
}

export function startAttributes(runbook: string, request: StartRequest): TypedSearchAttributes {
  return new TypedSearchAttributes([
    { key: searchAttributes.runbook, value: runbook },
    { key: searchAttributes.phase, value: 'starting' },
    { key: searchAttributes.drill, value: request.drill },
    { key: searchAttributes.rtoBreached, value: false },
    ...(request.incident ? [{ key: searchAttributes.incident, value: request.incident }] : []),
  ]);
}

/**
 * What every runbook's start fills alike: the workflow type, the workflow id (`--id`, else the
 * definition's id from the business `key`) and the search attributes the run starts with.
 */
export function startEnvelope<D extends AnyRunbookDefinition>(definition: D, request: StartRequest, ...key: string[]): Pick<PlannedStartOf<D>, 'workflowType' | 'workflowId' | 'searchAttributes'> {
  return { workflowType: definition.workflowType, workflowId: request.id ?? definition.workflowId(...key), searchAttributes: startAttributes(definition.name, request) };
}

/** The per-step budgets of a configured runbook, in seconds. */
export const stepBudgets = (steps: Partial<Record<string, { budgetSeconds: number }>>) =>
  Object.fromEntries(Object.entries(steps).flatMap(([id, s]) => (s ? [[id, s.budgetSeconds]] : [])));

/** The line every start's details carry: who started it, for which incident. */
export const initiatorLine = (initiator: string, request: StartRequest) => `**Initiator** ${initiator}${request.incident ? `, **incident** ${request.incident}` : ''}`;

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
