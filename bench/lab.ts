/**
 * Benchmark 6, "the real lab": a planned regional evacuation of every lab
 * database through the real runbook (regional-evacuation, real worker, real
 * PostgreSQL, Route 53 on moto, Mailpit, the Twilio stand-in, the regional
 * services) versus the floor: the same provider operations run directly by a
 * plain script, without Temporal. Run only with --only=lab or --full.
 *
 * The lab is built like the tests build theirs (test/helpers/lab.ts, which
 * needs vitest's `inject`): a temp dir, free ports, three PostgreSQL pairs,
 * the bench's dev server instead of the test run's.
 */
import { isFinalState, ranToEnd } from '../contract/runbook';
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { Client, type Connection, type WorkflowHandle } from '@temporalio/client';
import { bundleWorkflowCode, type NativeConnection } from '@temporalio/worker';
import { stringify } from 'yaml';
import type { ActivityDependencies } from '../activities';
import type { DatabaseProvider } from '../activities/database';
import type { SyntheticCheckResult } from '../activities/service';
import { pgBin } from '../activities/postgres-host';
import { decideGate, startRun } from '../cli/runs';
import { loadConfig, type LoadedConfig } from '../config/load';
import type { PromotionOutcome } from '../contract/database';
import { statusQuery, type RunbookStatus } from '../contract/runbook';
import { mailpitBinary, motoBinary } from '../lab/emulators';
import { Lab, LAB_ENVIRONMENT, LAB_TWILIO_TOKEN_ENV } from '../lab/lab';
import { ensureNamespace } from '../lab/temporal-server';
import { LAB_RECORDS, labDatabase, labDbPromotionPolicy } from '../test/helpers/config';
import { freePort } from '../lib/processes';
import { dataConverter, temporalTarget } from '../lib/temporal';
import { buildActivityDependencies } from '../workers/dependencies';
import { createLifeboatWorker } from '../workers/worker';
import type { regionalEvacuation } from '../workflows';
import { LIFEBOAT_WORKFLOWS, ms, say, summarize } from './lib';

export const LAB_DATABASES = ['orders', 'users', 'billing'] as const;
const REGION = 'east';
const SURVIVING = 'west';
/** The test lab's canary policy (test/helpers/lab.ts): the hold is policy, reported apart. */
const CANARY = { weights: [10, 50, 100], holdSeconds: 1, checkEverySeconds: 1 };
const GATES = ['drain-traffic', 'promote-databases'] as const;
/** The floor polls the standby's replay position this often (the runbook retries its check every 500 ms). */
const FLOOR_REPLAY_POLL_MS = 20;
const SEED_ROWS = 50;

/** bench/.build: the compiled checkout the bench runs from (this file is bench/.build/bench/lab.js). */
const BUILD_ROOT = path.resolve(__dirname, '..');
const CHECKOUT = path.resolve(BUILD_ROOT, '..', '..');

const now = () => performance.timeOrigin + performance.now();
const seconds = (msValue: number) => msValue / 1000;
const s = (value: number, digits = 2) => `${value.toFixed(digits)} s`;

/**
 * What the lab needs on this machine, or why not. The bench's own Temporal CLI
 * is checked by the runner; versitygw is not needed (no backups in this lab).
 */
export function labPrerequisites(): string[] {
  const missing: string[] = [];
  for (const tool of ['initdb', 'pg_ctl', 'postgres', 'pg_basebackup']) {
    try {
      pgBin(tool);
    } catch (err) {
      missing.push((err as Error).message);
    }
  }
  for (const binary of [motoBinary, mailpitBinary]) {
    try {
      binary();
    } catch (err) {
      missing.push((err as Error).message);
    }
  }
  // lab/service.ts is compiled by bench/tsconfig.json (include); the lab starts it as a process.
  if (!existsSync(path.join(BUILD_ROOT, 'lab', 'service.js'))) missing.push(`${path.join(BUILD_ROOT, 'lab', 'service.js')} is missing: compile bench/ with bench/tsconfig.json (scripts/bench.sh does)`);
  return missing;
}

/**
 * The lab's helpers find their programs relative to the project root they were
 * compiled into (lab/emulators.ts: <root>/scripts/lab/twilio-standin.mjs,
 * <root>/dist/lab/service.js; workers/worker.ts: <root>/dist/workflow-bundle.js).
 * Compiled into bench/.build, that root is bench/.build: give it those files,
 * built from this checkout's sources (never a possibly stale dist/).
 */
export async function prepareBuildLayout(): Promise<{ bundleMs: number; bundleBytes: number }> {
  const link = (target: string, at: string) => {
    mkdirSync(path.dirname(at), { recursive: true });
    rmSync(at, { force: true });
    symlinkSync(path.relative(path.dirname(at), target), at);
  };
  link(path.join(CHECKOUT, 'scripts', 'lab', 'twilio-standin.mjs'), path.join(BUILD_ROOT, 'scripts', 'lab', 'twilio-standin.mjs'));
  link(path.join(BUILD_ROOT, 'lab', 'service.js'), path.join(BUILD_ROOT, 'dist', 'lab', 'service.js'));
  const t = performance.now();
  const { code } = await bundleWorkflowCode({
    workflowsPath: LIFEBOAT_WORKFLOWS,
    logger: { log() {}, trace() {}, debug() {}, info() {}, warn: (m: string) => say(`bundler: ${m}`), error: (m: string) => say(`bundler: ${m}`) },
  });
  const bundleMs = performance.now() - t;
  writeFileSync(path.join(BUILD_ROOT, 'dist', 'workflow-bundle.js'), code);
  return { bundleMs, bundleBytes: code.length };
}

/** The config a test lab writes with `{ databases: LAB_DATABASES, regions: true }` (test/helpers/lab.ts testConfig), on the bench's server. */
async function labConfig(address: string, namespace: string, taskQueue: string): Promise<Record<string, unknown>> {
  const databases: Record<string, unknown> = {};
  for (const db of LAB_DATABASES) {
    databases[db] = labDatabase(db, { primary: REGION, standby: SURVIVING }, { primary: await freePort(), standby: await freePort() });
  }
  return {
    temporal: { address, namespace, taskQueue },
    lab: { stateDir: './state', temporal: { port: 7233, uiPort: 8233 }, inbox: { port: await freePort() } },
    notifications: {
      journal: LAB_RECORDS.journal,
      email: { smtp: { host: '127.0.0.1', port: await freePort() }, from: 'lifeboat@lab.local', incidentChannel: ['incidents@lab.local'] },
      twilio: { accountSid: 'AC00000000000000000000000000000001', authTokenEnv: LAB_TWILIO_TOKEN_ENV, from: '+15550100000', apiBaseUrl: `http://127.0.0.1:${await freePort()}` },
      onCall: ['carol'],
      statusEveryMinutes: 0,
    },
    evidence: { mirrorDir: LAB_RECORDS.mirrorDir },
    people: {
      alice: { roles: ['commander'] },
      bob: { roles: ['approver'] },
      carol: { roles: ['commander', 'approver'], phone: '+15550100003' },
    },
    databases,
    dns: {
      endpoint: `http://127.0.0.1:${await freePort()}`,
      zone: 'lifeboat.lab',
      app: { record: 'app.lifeboat.lab', ttl: 30, targets: { east: 'east.app.lifeboat.lab', west: 'west.app.lifeboat.lab', maintenance: 'maintenance.lifeboat.lab' } },
      syncPollMs: 100,
      syncTimeoutSeconds: 30,
    },
    services: { east: { url: `http://127.0.0.1:${await freePort()}` }, west: { url: `http://127.0.0.1:${await freePort()}` } },
    runbooks: {
      'db-promotion': labDbPromotionPolicy(),
      'regional-evacuation': {
        rto: { budgetSeconds: 900, onBreach: 'continue' },
        gates: { 'drain-traffic': { escalateAfterSeconds: 120, timeoutSeconds: 300 }, 'promote-databases': { escalateAfterSeconds: 120, timeoutSeconds: 300 } },
        onPromotionFailure: 'abort',
        canary: CANARY,
        compensationAttempts: 3,
      },
    },
  };
}

// ---- the runbook ---------------------------------------------------------------

interface StepTiming {
  id: string;
  seconds: number;
  endedAt: string;
}

interface RunbookSample {
  workflowId: string;
  /** result.rto.measuredSeconds: detection (the start command's clock) to the verified service. */
  rtoSeconds: number;
  /** Sum over both gates of decidedAt − openedAt (run's clock): the time the run waited for the (automated) approver. */
  gateWaitSeconds: number;
  gateWaits: Record<string, number>;
  rtoMinusGatesSeconds: number;
  /**
   * Notifications on the RTO's critical path: the declare step (incident email and
   * on-call SMS) and the final notification of the child promotion that finished last.
   */
  notificationSeconds: number;
  /** RTO minus the gate waits and those notifications: the operations plus the orchestration. */
  rtoMinusGatesAndNotificationsSeconds: number;
  /** Start command → result (client clock), canary ramp and final evidence included. */
  wallSeconds: number;
  /** Status poll saw the gate waiting → decideGate returned (client clock), per gate. */
  approverSeconds: Record<string, number>;
  steps: StepTiming[];
  /** Per child db-promotion run: its steps. */
  children: Record<string, StepTiming[]>;
  /** Activities that took more than one attempt (from the histories): type → attempts, e.g. the replay check. */
  retries: Array<{ workflowId: string; activity: string; attempt: number }>;
}

const span = (from?: string, to?: string) => (from && to ? (Date.parse(to) - Date.parse(from)) / 1000 : Number.NaN);

function stepTimings(status: RunbookStatus): StepTiming[] {
  return status.steps.filter((st) => st.startedAt && st.endedAt).map((st) => ({ id: st.id, seconds: span(st.startedAt, st.endedAt), endedAt: st.endedAt ?? '' }));
}

/** Activities whose last attempt was not the first, from a run's history. */
async function retriedActivities(client: Client, workflowId: string): Promise<RunbookSample['retries']> {
  const history = await client.workflow.getHandle(workflowId).fetchHistory();
  const types = new Map<string, string>();
  const retries: RunbookSample['retries'] = [];
  for (const event of history.events ?? []) {
    const scheduled = event.activityTaskScheduledEventAttributes;
    if (scheduled) types.set(String(event.eventId), scheduled.activityType?.name ?? '?');
    const started = event.activityTaskStartedEventAttributes;
    if (started && (started.attempt ?? 1) > 1) retries.push({ workflowId, activity: types.get(String(started.scheduledEventId)) ?? '?', attempt: started.attempt ?? 1 });
  }
  return retries;
}

async function runbookEvacuation(client: Client, loaded: LoadedConfig, label: string): Promise<RunbookSample> {
  const t0 = now();
  const started = await startRun(client, loaded, {
    runbook: 'regional-evacuation',
    params: [`region=${REGION}`, 'mode=planned'],
    as: 'alice',
    id: `regional-evacuation:${REGION}:bench-${process.pid}-${label}`,
    incident: `BENCH-${label}`,
    drill: true,
  });
  const handle: WorkflowHandle<typeof regionalEvacuation> = client.workflow.getHandle(started.workflowId);
  const approverSeconds: Record<string, number> = {};
  // The automated approver: bob approves each gate as soon as the status query shows it waiting.
  for (const gate of GATES) {
    const deadline = Date.now() + 120_000;
    for (;;) {
      const status = await handle.query(statusQuery);
      if (status.gates.some((g) => g.id === gate && g.state === 'waiting')) break;
      if (isFinalState(status.state) || status.state === 'needs-attention') throw new Error(`${started.workflowId} ended (${status.state}) before gate ${gate}: ${status.error?.message ?? ''}`);
      if (Date.now() > deadline) throw new Error(`gate ${gate} of ${started.workflowId} did not open within 120 s (phase ${status.phase})`);
      await delay(20);
    }
    const seen = now();
    await decideGate(client, loaded, { workflowId: started.workflowId, gate, as: 'bob', comment: 'bench: automated approver', decision: 'approve' });
    approverSeconds[gate] = seconds(now() - seen);
  }
  const result = ranToEnd(await handle.result());
  const wallSeconds = seconds(now() - t0);
  const failed = result.databases.filter((d) => d.state !== 'promoted');
  if (failed.length > 0 || result.degraded) throw new Error(`${started.workflowId}: promotions failed: ${failed.map((f) => `${f.database} (${f.error ?? '?'})`).join(', ')}`);
  const status = await handle.query(statusQuery);
  const gateWaits = Object.fromEntries(GATES.map((g) => {
    const gate = status.gates.find((x) => x.id === g);
    return [g, span(gate?.openedAt, gate?.decidedAt)];
  }));
  const gateWaitSeconds = Object.values(gateWaits).reduce((a, b) => a + b, 0);
  const children: Record<string, StepTiming[]> = {};
  const retries = await retriedActivities(client, started.workflowId);
  for (const d of result.databases) {
    children[d.database] = stepTimings(await client.workflow.getHandle(d.childWorkflowId).query(statusQuery));
    retries.push(...(await retriedActivities(client, d.childWorkflowId)));
  }
  const steps = stepTimings(status);
  const lastChildEvidence = Object.values(children)
    .map((childSteps) => childSteps.find((st) => st.id === 'record-evidence'))
    .filter((st): st is StepTiming => st !== undefined)
    .sort((a, b) => Date.parse(b.endedAt) - Date.parse(a.endedAt))[0];
  const notificationSeconds = (steps.find((st) => st.id === 'declare')?.seconds ?? 0) + (lastChildEvidence?.seconds ?? 0);
  return {
    workflowId: started.workflowId,
    rtoSeconds: result.rto.measuredSeconds,
    gateWaitSeconds,
    gateWaits,
    rtoMinusGatesSeconds: result.rto.measuredSeconds - gateWaitSeconds,
    notificationSeconds,
    rtoMinusGatesAndNotificationsSeconds: result.rto.measuredSeconds - gateWaitSeconds - notificationSeconds,
    wallSeconds,
    approverSeconds,
    steps,
    children,
    retries,
  };
}

// ---- the floor -------------------------------------------------------------------

interface FloorDatabase {
  database: string;
  /** Seconds per operation: inspect (the preflight's reads), fence, replay (the poll loop), promote, verify-write. */
  inspect: number;
  fence: number;
  replay: number;
  replayChecks: number;
  promote: number;
  verifyWrite: number;
  verifyAttempts: number;
  total: number;
  timeline: number;
}

interface FloorSample {
  /** Start → synthetic checks green: the runbook's RTO span (its gates and notifications aside). */
  recoverySeconds: number;
  /** Start → weights read back after the canary ramp (the runbook's wall time without declare and final evidence). */
  wallSeconds: number;
  /** Seconds per phase, named like the runbook's steps. */
  phases: Record<string, number>;
  databases: FloorDatabase[];
  verifyAttempts: number;
}

/** Retries a call like an activity retry policy with a fixed interval (the runbook's verify policies). */
async function retrying<T>(what: string, attempts: number, intervalMs: number, fn: () => Promise<T>): Promise<{ value: T; attempts: number }> {
  for (let attempt = 1; ; attempt++) {
    try {
      return { value: await fn(), attempts: attempt };
    } catch (err) {
      if (attempt >= attempts) throw new Error(`${what}: ${(err as Error).message}`, { cause: err });
      await delay(intervalMs);
    }
  }
}

/** One database as a db-promotion child run does it (planned mode), minus its notifications and its pre-approved gate. */
async function floorPromotion(provider: DatabaseProvider, runId: string): Promise<{ timing: FloorDatabase; outcome: PromotionOutcome }> {
  const t0 = now();
  let t = t0;
  const lap = () => {
    const n = now();
    const d = seconds(n - t);
    t = n;
    return d;
  };
  // preflight: the same checks as activities/database.ts preflightPromotion, planned mode.
  const inspection = await provider.inspect();
  if (!inspection.standby.reachable || inspection.standby.inRecovery !== true || !inspection.primary.reachable || inspection.standby.streaming !== true) {
    throw new Error(`floor preflight of ${provider.name}: standby not a streaming standby, or primary unreachable (${inspection.standby.error ?? inspection.primary.error ?? ''})`);
  }
  const inspect = lap();
  const fence = await provider.fencePrimary(true);
  if (!fence.fenced) throw new Error(`floor: fence of ${provider.name} not applied: ${fence.reason}`);
  const fenceS = lap();
  let replayChecks = 0;
  for (const deadline = Date.now() + 30_000; ;) {
    replayChecks++;
    if ((await provider.replayedUpTo(fence.finalLsn)).caughtUp) break;
    if (Date.now() > deadline) throw new Error(`floor: ${provider.name} standby did not replay ${fence.finalLsn} within 30 s`);
    await delay(FLOOR_REPLAY_POLL_MS);
  }
  const replay = lap();
  const outcome = await provider.promoteStandby();
  const promote = lap();
  // db-promotion's verify-write policy: every 1 s, up to 10 attempts.
  const verify = await retrying(`floor: verify a write on ${provider.name}`, 10, 1000, () => provider.verifyWrite(runId));
  const verifyWrite = lap();
  return {
    timing: { database: provider.name, inspect, fence: fenceS, replay, replayChecks, promote, verifyWrite, verifyAttempts: verify.attempts, total: seconds(now() - t0), timeline: outcome.timeline },
    outcome,
  };
}

/**
 * The evacuation without Temporal: the operations workflows/regional-evacuation.ts
 * (and its db-promotion children, workflows/procedures.ts) run, in the same order,
 * the promotions in parallel, on the provider objects a worker gets.
 */
async function floorEvacuation(deps: ActivityDependencies, label: string): Promise<FloorSample> {
  const { traffic, services } = deps;
  if (!traffic || !services) throw new Error('floor: the lab config has no dns: or services:');
  const runId = `bench-floor-${process.pid}-${label}`;
  const phases: Record<string, number> = {};
  const t0 = now();
  let t = t0;
  const lap = (phase: string) => {
    const n = now();
    phases[phase] = seconds(n - t);
    t = n;
  };
  await services.setWriteFreeze(REGION, true, `evacuation ${runId}`, false);
  lap('freeze-writes');
  const before = await traffic.readWeights();
  lap('read-weights');
  await traffic.setWeights({ ...before, [REGION]: 0, maintenance: 100 }, `lifeboat ${runId}: drain ${REGION}`);
  lap('drain-traffic');
  const promoted = await Promise.all(LAB_DATABASES.map((name) => {
    const provider = deps.databases.get(name);
    if (!provider) throw new Error(`floor: no provider for ${name}`);
    return floorPromotion(provider, runId);
  }));
  lap('promote-databases');
  await services.repointDatabases(SURVIVING, Object.fromEntries(promoted.map((p) => [p.timing.database, p.outcome.newPrimary])));
  for (const { timing } of promoted) await traffic.pointDatabase(timing.database, SURVIVING, REGION, `lifeboat: ${timing.database} primary in ${SURVIVING}`);
  lap('repoint-service');
  // verify-service's policy: every 1 s, up to 30 attempts.
  const verify = await retrying<SyntheticCheckResult>('floor: synthetic check', 30, 1000, () => services.syntheticCheck(SURVIVING, [...LAB_DATABASES], runId));
  lap('verify-service');
  const recoverySeconds = seconds(t - t0);
  // resume-traffic: rampTraffic (workflows/procedures.ts) with the same canary policy; one red check stops it.
  for (const weight of CANARY.weights) {
    await traffic.setWeights({ [REGION]: 0, maintenance: 100 - weight, [SURVIVING]: weight }, `lifeboat ${runId}: canary ${weight}%`);
    for (let held = 0; ; held += CANARY.checkEverySeconds) {
      await services.syntheticCheck(SURVIVING, [...LAB_DATABASES], runId);
      if (held >= CANARY.holdSeconds) break;
      await delay(CANARY.checkEverySeconds * 1000);
    }
  }
  lap('resume-traffic');
  const after = await traffic.readWeights();
  lap('read-weights-after');
  if (after[SURVIVING] !== 100 || after[REGION] !== 0) throw new Error(`floor: traffic ended at ${JSON.stringify(after)}`);
  return { recoverySeconds, wallSeconds: seconds(t - t0), phases, databases: promoted.map((p) => p.timing), verifyAttempts: verify.attempts };
}

// ---- the benchmark ----------------------------------------------------------------

export interface LabBenchContext {
  address: string;
  connection: Connection;
  native: NativeConnection;
  namespace: string;
  runs: number;
  machineLine: string;
  /** Registers a clean-up that also runs on SIGINT/SIGTERM. */
  onCleanup(fn: () => Promise<void>): void;
}

export interface LabBenchResult {
  title: string;
  method: string;
  rows: Array<{ benchmark: string; parameters: string; result: string; method: string }>;
  data: Record<string, unknown>;
}

const medianOf = (values: number[]) => summarize(values).median;

/**
 * A private lab for a benchmark: a temp dir the postgres user can traverse, `config` written there and
 * loaded, the lab's environment, the namespace; `destroy` (also run on SIGINT/SIGTERM) takes it all down.
 */
export async function privateLab(ctx: LabBenchContext, name: string, config: Record<string, unknown>): Promise<{ dir: string; loaded: LoadedConfig; lab: Lab; destroy: () => Promise<void> }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), `lifeboat-bench-${name}-`));
  // The clusters run as the postgres user, which must traverse this directory.
  chmodSync(dir, 0o755);
  const configFile = path.join(dir, 'lab.yaml');
  writeFileSync(configFile, stringify(config));
  const loaded = loadConfig(configFile);
  Object.assign(process.env, LAB_ENVIRONMENT);
  await ensureNamespace(ctx.address, ctx.namespace);
  const lab = new Lab(loaded);
  let destroyed = false;
  const destroy = async () => {
    if (destroyed) return;
    destroyed = true;
    await lab.down().catch((err: unknown) => say(`lab down failed: ${(err as Error).message}`));
    rmSync(dir, { recursive: true, force: true });
  };
  ctx.onCleanup(destroy);
  return { dir, loaded, lab, destroy };
}

export async function labBenchmark(ctx: LabBenchContext): Promise<LabBenchResult> {
  const { runs } = ctx;
  const title = '6. The real lab (regional evacuation)';
  const holdPolicySeconds = CANARY.weights.length * CANARY.holdSeconds;
  const method =
    `What: the measured RTO of a planned regional evacuation of all ${LAB_DATABASES.length} lab databases (${LAB_DATABASES.join(', ')}) in a REAL lab, ` +
    `against the floor: the same raw operations run directly by a plain script, without Temporal. The lab is the tests' two-region lab ` +
    `(test/helpers/lab.ts, databases ${LAB_DATABASES.join('/')} with regions): PostgreSQL 15 primary (east) and hot standby (west) per database on loopback ` +
    `(${SEED_ROWS} seeded rows), Route 53 on the moto server, Mailpit (SMTP), the Twilio stand-in and one regional service process per region, in a temp dir on free ports, ` +
    `against the bench's dev server. Runbook: the real worker (createLifeboatWorker, buildActivityDependencies, the workflow bundle built from workflows/index.ts) ` +
    `runs regional-evacuation region=east mode=planned, started as alice with the CLI's startRun (the RTO clock starts there); an automated approver (bob, ` +
    `decideGate) approves drain-traffic and promote-databases as soon as the status query (polled every 20 ms) shows each waiting. Reported: result.rto.measuredSeconds ` +
    `(detection -> verified service; the canary ramp comes after it), and that RTO minus the time the gates waited for the approver (decidedAt - openedAt in the run's status, ` +
    `both gates), and that minus the notifications on the critical path (the declare step: incident email and on-call SMS through Mailpit and the Twilio stand-in; ` +
    `the final notice of the child promotion that finished last), and the start command -> result wall time (with the canary ramp, whose hold, ${CANARY.weights.length} weights x ${CANARY.holdSeconds} s = ${holdPolicySeconds} s, is policy). ` +
    `Floor: lab.reset() to the initial topology, then, on the provider objects buildActivityDependencies gives the worker and in the runbook's order: freeze writes in east; ` +
    `read the DNS weights; drain east to the maintenance page (waits INSYNC); per database IN PARALLEL: inspect (the preflight's checks), fence the old primary, poll the ` +
    `standby's replay position every ${FLOOR_REPLAY_POLL_MS} ms until it passes the fenced LSN (the runbook retries every 500 ms), pg_promote, verify a write; then re-point the west service, ` +
    `point each database's DNS failover record at west (one by one), synthetic checks in west (retried every 1 s like the runbook) = the floor's RTO; then the same canary ramp. ` +
    `No notifications, gates, status or evidence in the floor. R=${runs} runs of each, interleaved (runbook first), lab.reset() (not timed, about 25 s) before every run but the first; ` +
    `no warm-up: the first runbook run is the worker's first workflow (the median damps it). Median, and runbook/floor ratios. ` +
    `Machine: ${ctx.machineLine}.`;
  say(`\n=== ${title} ===\n${method}`);

  const missing = labPrerequisites();
  if (missing.length > 0) throw new Error(`the lab benchmark cannot run:\n  ${missing.join('\n  ')}`);

  say('lab: building the Lifeboat workflow bundle and the lab programs into bench/.build');
  const build = await prepareBuildLayout();
  const taskQueue = `bench-lab-${process.pid}`;
  const { dir, loaded, lab, destroy } = await privateLab(ctx, 'lab', await labConfig(ctx.address, ctx.namespace, taskQueue));
  try {
    say(`lab: starting in ${dir} (3 PostgreSQL pairs, moto, Mailpit, the Twilio stand-in, 2 regional services)`);
    const tUp = performance.now();
    await lab.up({ temporal: false, seedRows: SEED_ROWS });
    const upMs = performance.now() - tUp;
    say(`lab: up in ${ms(upMs, 0)}`);

    const target = temporalTarget(loaded);
    const converter = dataConverter(target);
    const deps = buildActivityDependencies(loaded);
    const worker = await createLifeboatWorker({ connection: ctx.native, namespace: ctx.namespace, taskQueue, dependencies: deps, workflows: 'bundle', dataConverter: converter });
    const client = new Client({ connection: ctx.connection, namespace: ctx.namespace, dataConverter: converter });
    // The floor gets its own provider objects, built the same way.
    const floorDeps = buildActivityDependencies(loaded);

    const runbook: RunbookSample[] = [];
    const floor: FloorSample[] = [];
    const resetMs: number[] = [];
    let fresh = true;
    const reset = async () => {
      if (fresh) {
        fresh = false;
        return;
      }
      const t = performance.now();
      await lab.reset({ seedRows: SEED_ROWS });
      resetMs.push(performance.now() - t);
    };
    await worker.runUntil(async () => {
      for (let r = 0; r < runs; r++) {
        await reset();
        const rb = await runbookEvacuation(client, loaded, `${Date.now().toString(36)}-${r}`);
        runbook.push(rb);
        say(`lab run ${r + 1}/${runs} runbook: RTO ${s(rb.rtoSeconds)} (gates waited ${s(rb.gateWaitSeconds)}: ${s(rb.rtoMinusGatesSeconds)} without), wall ${s(rb.wallSeconds)}` +
          (rb.retries.length > 0 ? `; retried: ${rb.retries.map((x) => `${x.activity}×${x.attempt}`).join(', ')}` : ''));
        await reset();
        const fl = await floorEvacuation(floorDeps, `${r}`);
        floor.push(fl);
        say(`lab run ${r + 1}/${runs} floor: to verified service ${s(fl.recoverySeconds)}, with the canary ramp ${s(fl.wallSeconds)}; promotions ${fl.databases.map((d) => `${d.database} ${s(d.total)} (${d.replayChecks} replay checks)`).join(', ')}`);
      }
    });
    const labStatus = await lab.status();

    const rto = summarize(runbook.map((x) => x.rtoSeconds));
    const rtoNoGates = summarize(runbook.map((x) => x.rtoMinusGatesSeconds));
    const gateWait = summarize(runbook.map((x) => x.gateWaitSeconds));
    const rbWall = summarize(runbook.map((x) => x.wallSeconds));
    const flRecovery = summarize(floor.map((x) => x.recoverySeconds));
    const flWall = summarize(floor.map((x) => x.wallSeconds));
    const ratio = rtoNoGates.median / flRecovery.median;
    const ratioWithGates = rto.median / flRecovery.median;
    const wallRatio = rbWall.median / flWall.median;
    const stepMedian = (id: string) => medianOf(runbook.map((x) => x.steps.find((st) => st.id === id)?.seconds ?? Number.NaN));
    const phaseMedian = (id: string) => medianOf(floor.map((x) => x.phases[id] ?? Number.NaN));
    const compare = ['freeze-writes', 'drain-traffic', 'promote-databases', 'repoint-service', 'verify-service', 'resume-traffic'].map((id) => ({
      phase: id,
      runbookStepSeconds: stepMedian(id),
      floorSeconds: phaseMedian(id),
    }));
    const declare = stepMedian('declare');
    const notifications = summarize(runbook.map((x) => x.notificationSeconds));
    const rtoOps = summarize(runbook.map((x) => x.rtoMinusGatesAndNotificationsSeconds));
    const opsRatio = rtoOps.median / flRecovery.median;
    const fmtCompare = compare.map((c) => `${c.phase} ${s(c.runbookStepSeconds)} vs ${s(c.floorSeconds)}`).join('; ');
    // One database's promotion: the child run's steps vs the floor's operations, median over databases and runs.
    const childStep = (id: string) => medianOf(runbook.flatMap((x) => Object.values(x.children).map((steps) => steps.find((st) => st.id === id)?.seconds ?? Number.NaN)));
    const floorOp = (key: 'inspect' | 'fence' | 'replay' | 'promote' | 'verifyWrite') => medianOf(floor.flatMap((x) => x.databases.map((d) => d[key])));
    const perPromotionStep = ([
      ['preflight', 'inspect'],
      ['fence-primary', 'fence'],
      ['catch-up', 'replay'],
      ['promote', 'promote'],
      ['verify-write', 'verifyWrite'],
    ] as const).map(([step, op]) => ({ step, runbookSeconds: childStep(step), floorSeconds: floorOp(op) }));
    const childEvidence = childStep('record-evidence');
    const replayChecks = floor.flatMap((x) => x.databases.map((d) => d.replayChecks));
    const retried = runbook.flatMap((x) => x.retries);
    const rows = [
      {
        benchmark: title,
        parameters: `regional-evacuation east→west, planned, ${LAB_DATABASES.length} real PostgreSQL pairs, R=${runs}`,
        result:
          `runbook RTO median ${s(rto.median)} (${s(rto.min)}–${s(rto.max)}); minus gate waits (median ${s(gateWait.median)}): ${s(rtoNoGates.median)}; ` +
          `floor (plain script, same operations) ${s(flRecovery.median)} (${s(flRecovery.min)}–${s(flRecovery.max)}); ratio runbook/floor ${ratio.toFixed(2)}× without gate waits (${ratioWithGates.toFixed(2)}× with), ` +
          `+${s(rtoNoGates.median - flRecovery.median)}; of it, notifications on the critical path ${s(notifications.median)} (declare, last child's final notice): without them too ${s(rtoOps.median)}, ${opsRatio.toFixed(2)}× the floor`,
        method: 'result.rto.measuredSeconds (start command → verified service), minus decidedAt − openedAt of both gates, minus those notification steps; floor: lab.reset(), then the same provider calls directly',
      },
      {
        benchmark: title,
        parameters: `with the canary ramp (${CANARY.weights.join('/')}%, hold ${CANARY.holdSeconds} s each = ${holdPolicySeconds} s of policy)`,
        result:
          `runbook start → result median ${s(rbWall.median)} (gates included); floor ${s(flWall.median)}; ratio ${wallRatio.toFixed(2)}×. ` +
          `Per step, runbook step vs floor (median): ${fmtCompare}; runbook-only: declare (notifications) ${s(declare)}`,
        method: "step times from the run's status (startedAt → endedAt); floor phases timed in the script",
      },
      {
        benchmark: title,
        parameters: 'one database promotion: child db-promotion step vs the same provider call(s)',
        result:
          `${perPromotionStep.map((p) => `${p.step} ${s(p.runbookSeconds)} vs ${s(p.floorSeconds)}`).join('; ')}; child-only: record-evidence (final notice) ${s(childEvidence)}. ` +
          `Replay checks in the floor: ${Math.min(...replayChecks)}–${Math.max(...replayChecks)}; retried activities in the runbook: ${retried.length === 0 ? 'none' : retried.map((x) => `${x.activity}×${x.attempt}`).join(', ')}`,
        method: "median over databases and runs; child steps from the children's status",
      },
    ];
    return {
      title,
      method,
      rows,
      data: {
        runs,
        databases: LAB_DATABASES,
        canary: CANARY,
        holdPolicySeconds,
        floorReplayPollMs: FLOOR_REPLAY_POLL_MS,
        seedRows: SEED_ROWS,
        labUpMs: upMs,
        resetMs,
        workflowBundleMs: build.bundleMs,
        workflowBundleBytes: build.bundleBytes,
        postgresVersion: postgresVersion(),
        summary: { rto, rtoMinusGates: rtoNoGates, gateWait, notifications, rtoMinusGatesAndNotifications: rtoOps, runbookWall: rbWall, floorRecovery: flRecovery, floorWall: flWall, ratio, ratioWithGates, opsRatio, wallRatio, perStep: compare, perPromotionStep, declareSeconds: declare, childFinalNotificationSeconds: childEvidence },
        runbook,
        floor,
        labAtEnd: { dns: labStatus.dns, services: labStatus.services },
      },
    };
  } finally {
    await destroy();
  }
}

function postgresVersion(): string {
  try {
    return execFileSync(pgBin('postgres'), ['--version'], { encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
}
