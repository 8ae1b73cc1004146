/**
 * `npm run bench`: Lifeboat's speed, measured against the REAL Temporal dev
 * server (started here on free ports with a temp SQLite file, stopped at the
 * end). Prints a Markdown table (stdout; progress on stderr) and writes
 * bench/results/<timestamp>.json, bench/results/latest.json and latest.md.
 *
 * Speed targets live here, never in timed tests. In benchmarks 1-5 databases
 * are SIMULATED (bench/simulated-database.ts): those figures are Lifeboat's
 * orchestration cost, not a real promotion's RTO. Benchmark 6 (`lab`, only with
 * --only=lab or --full) runs a real evacuation in a private lab (bench/lab.ts).
 */
import { execFileSync, fork, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import { bundleWorkflowCode, DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { decideGate } from '../cli/runs';
import type { LoadedConfig } from '../config/load';
import { approveSignal, decideUpdate, statusQuery } from '../contract/runbook';
import type { DatabaseProvider } from '../activities/database';
import { ensureNamespace, startDevServer, stopDevServer, temporalBinary, type DevServer } from '../lab/temporal-server';
import { freePort } from '../lib/processes';
import { benchActivities, benchOnlyActivities } from './activities';
import { labBenchmark, labPrerequisites, type LabBenchContext, type LabBenchResult } from './lab';
import { sentinelBenchmark } from './sentinel';
import type { ColdStartReport, ColdStartRequest } from './cold-start-child';
import {
  BENCH_WORKFLOWS,
  benchConfig,
  escapeCell,
  LIFEBOAT_WORKFLOWS,
  machine,
  machineLine,
  mib,
  ms,
  planContext,
  ROOT,
  say,
  summarize,
  type Machine,
  type Summary,
} from './lib';
import { databaseName, SimulatedDatabase, simulatedDatabases } from './simulated-database';
import type { ThroughputWorkerMessage, ThroughputWorkerRequest } from './throughput-worker';
import type { benchEvacuation, benchGate, benchRawSteps, benchSteps } from './workflows';

const BENCHMARKS = ['overhead', 'fanout', 'approval', 'coldstart', 'throughput', 'lab', 'sentinel'] as const;
type BenchId = (typeof BENCHMARKS)[number];
/** `lab` and `sentinel` need PostgreSQL and the lab's emulators: only with --only=lab,sentinel or --full. */
const DEFAULT_BENCHMARKS: readonly BenchId[] = BENCHMARKS.filter((b) => b !== 'lab' && b !== 'sentinel');

interface Options {
  only: BenchId[];
  steps: number;
  sleepMs: number;
  runs: number;
  fanout: number[];
  fanoutRuns: number;
  dbLatencyMs: number;
  approvals: number;
  coldRuns: number;
  throughput: number[];
  drillStepMs: number;
  labRuns: number;
  address?: string;
  store: 'file' | 'memory';
  resultsDir: string;
}

const HELP = `npm run bench [-- options]   (or: bash scripts/bench.sh [options])

  --only=LIST           some of ${BENCHMARKS.join(',')} (default: all but lab and sentinel)
  --full                bigger sizes: --fanout=1,10,50,100 --throughput=100,500,1000, and the lab
                        benchmark too (unless --only says otherwise)
  --steps=N             overhead: steps per run (20)
  --sleep-ms=L          overhead: each step's activity sleeps L ms (50)
  --runs=R              overhead: measured runs (10)
  --fanout=K,K,...      fan-out: child db-promotion runs per evacuation (1,10,50)
  --fanout-runs=R       fan-out: measured runs per K (3)
  --db-latency-ms=MS    fan-out: latency of every simulated database call (100)
  --approvals=N         approval latency: measured decisions per path (20)
  --cold-runs=N         cold start: runs per variant (3)
  --throughput=M,M,...  throughput: concurrent drill runs (100)
  --drill-step-ms=MS    throughput: each of the 3 drill steps sleeps MS (10)
  --lab-runs=R          lab: evacuations of each kind, runbook and floor (3); sentinel: killed primaries (3); needs PostgreSQL 15,
                        moto and Mailpit (scripts/toolchain.sh ensure_postgres ensure_moto ensure_mailpit)
  --store=file|memory   the dev server's store: a temp SQLite file (default, as the lab and tests run)
                        or memory (no disk writes: isolates Lifeboat's and the SDK's cost)
  --address=HOST:PORT   use a running Temporal server instead of starting a dev server
  --results=DIR         where to write the results (bench/results)
`;

function parseOptions(argv: readonly string[]): Options {
  const options: Options = {
    only: [...DEFAULT_BENCHMARKS],
    steps: 20,
    sleepMs: 50,
    runs: 10,
    fanout: [1, 10, 50],
    fanoutRuns: 3,
    dbLatencyMs: 100,
    approvals: 20,
    coldRuns: 3,
    throughput: [100],
    drillStepMs: 10,
    labRuns: 3,
    store: 'file',
    resultsDir: path.join(ROOT, 'bench', 'results'),
  };
  const int = (flag: string, value: string, min: number): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min) throw new Error(`${flag} must be an integer >= ${min}, not '${value}'`);
    return n;
  };
  const list = (flag: string, value: string, min: number): number[] => value.split(',').map((v) => int(flag, v.trim(), min));
  let full = false;
  let onlyGiven = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--help' || arg === '-h') {
      process.stdout.write(HELP);
      process.exit(0);
    }
    if (arg === '--full') {
      options.fanout = [1, 10, 50, 100];
      options.throughput = [100, 500, 1000];
      full = true;
      continue;
    }
    const match = /^--([a-z-]+)(?:=(.*))?$/.exec(arg);
    if (!match) throw new Error(`unknown argument '${arg}'\n\n${HELP}`);
    const flag = `--${match[1]}`;
    const value = match[2] ?? argv[++i];
    if (value === undefined) throw new Error(`${flag} needs a value`);
    switch (flag) {
      case '--only': {
        const ids = value.split(',').map((v) => v.trim());
        const unknown = ids.filter((id) => !(BENCHMARKS as readonly string[]).includes(id));
        if (unknown.length > 0) throw new Error(`--only: unknown benchmark ${unknown.join(', ')} (known: ${BENCHMARKS.join(', ')})`);
        options.only = ids as BenchId[];
        onlyGiven = true;
        break;
      }
      case '--steps': options.steps = int(flag, value, 1); break;
      case '--sleep-ms': options.sleepMs = int(flag, value, 0); break;
      case '--runs': options.runs = int(flag, value, 1); break;
      case '--fanout': options.fanout = list(flag, value, 1); break;
      case '--fanout-runs': options.fanoutRuns = int(flag, value, 1); break;
      case '--db-latency-ms': options.dbLatencyMs = int(flag, value, 0); break;
      case '--approvals': options.approvals = int(flag, value, 1); break;
      case '--cold-runs': options.coldRuns = int(flag, value, 1); break;
      case '--throughput': options.throughput = list(flag, value, 1); break;
      case '--drill-step-ms': options.drillStepMs = int(flag, value, 0); break;
      case '--lab-runs': options.labRuns = int(flag, value, 1); break;
      case '--address': options.address = value; break;
      case '--store':
        if (value !== 'file' && value !== 'memory') throw new Error(`--store must be file or memory, not '${value}'`);
        options.store = value;
        break;
      case '--results': options.resultsDir = path.resolve(value); break;
      default: throw new Error(`unknown option ${flag}\n\n${HELP}`);
    }
  }
  if (Math.max(...options.fanout) > 999) throw new Error('--fanout: at most 999 databases');
  if (full && !onlyGiven) options.only = [...BENCHMARKS];
  return options;
}

interface Row {
  benchmark: string;
  parameters: string;
  result: string;
  method: string;
}

interface Section {
  id: BenchId;
  title: string;
  method: string;
  rows: Row[];
  data: Record<string, unknown>;
}

interface Env {
  options: Options;
  machine: Machine;
  address: string;
  connection: Connection;
  native: NativeConnection;
  /** The bench workflows (bench/workflows), bundled once at start. */
  benchBundle: string;
  benchBundlePath: string;
  tmpDir: string;
  loaded: LoadedConfig;
  /** Clean-ups run at the end and on SIGINT/SIGTERM, before the dev server stops. */
  cleanups: Array<() => Promise<void>>;
}

const quietBundlerLogger = { log() {}, trace() {}, debug() {}, info() {}, warn: (m: string) => say(`bundler: ${m}`), error: (m: string) => say(`bundler: ${m}`) };

const now = () => performance.timeOrigin + performance.now();

function client(env: Env, namespace: string): Client {
  return new Client({ connection: env.connection, namespace });
}

/** An in-process worker with the bench bundle and activities, for the duration of `fn`. */
async function withWorker<T>(env: Env, namespace: string, taskQueue: string, databases: ReadonlyMap<string, DatabaseProvider>, fn: () => Promise<T>): Promise<T> {
  const worker = await Worker.create({
    connection: env.native,
    namespace,
    taskQueue,
    workflowBundle: { code: env.benchBundle },
    activities: benchActivities(databases, path.join(env.tmpDir, 'evidence'), client(env, namespace)),
  });
  return worker.runUntil(fn);
}

function announce(title: string, method: string): void {
  say(`\n=== ${title} ===\n${method}`);
}

// ---- 1. orchestration overhead ---------------------------------------------

async function overhead(env: Env): Promise<Section> {
  const { steps, sleepMs, runs } = env.options;
  const namespace = 'bench-overhead';
  const taskQueue = `bench-overhead-${process.pid}`;
  const warmup = 2;
  const title = '1. Orchestration overhead';
  const method =
    `What: the cost Temporal and the RunbookRun kernel add per step. How: a bench workflow (bench/workflows benchSteps, real kernel) runs N=${steps} ` +
    `sequential run.step()s, each one activity that sleeps L=${sleepMs} ms; its wall time (client start -> result) is compared with the same activity ` +
    `function called N times in a plain await loop in the same process. Overhead per step = (workflow - loop) / N, per run. To split that cost, ` +
    `a plain workflow with the same N activities and no kernel (benchRawSteps) is measured too: its overhead is Temporal's alone (history writes, ` +
    `task dispatch); the difference (kernel - plain, paired per run) is the kernel's (status, search-attribute upserts, timers, the evidence chain's appends to a local mirror store). ` +
    `R=${runs} measured runs of each (after ${warmup} warm-up runs), the three interleaved; one in-process worker, SDK default options, pre-built bundle; ` +
    `p99 is nearest-rank (with R < 100 it is the slowest run). Machine: ${machineLine(env.machine)}.`;
  announce(title, method);
  const { run } = planContext(env.loaded);
  const c = client(env, namespace);
  return withWorker(env, namespace, taskQueue, new Map(), async () => {
    const kernelRun = async (label: string): Promise<number> => {
      const t = performance.now();
      await c.workflow.execute<typeof benchSteps>('benchSteps', { taskQueue, workflowId: `bench-steps-${label}-${Date.now()}`, args: [{ run, steps, sleepMs }] });
      return performance.now() - t;
    };
    const rawRun = async (label: string): Promise<number> => {
      const t = performance.now();
      await c.workflow.execute<typeof benchRawSteps>('benchRawSteps', { taskQueue, workflowId: `bench-raw-steps-${label}-${Date.now()}`, args: [{ steps, sleepMs }] });
      return performance.now() - t;
    };
    const loop = async (): Promise<number> => {
      const t = performance.now();
      for (let i = 0; i < steps; i++) await benchOnlyActivities.benchSleep(sleepMs);
      return performance.now() - t;
    };
    for (let w = 0; w < warmup; w++) {
      await kernelRun(`warmup${w}`);
      await rawRun(`warmup${w}`);
      await loop();
    }
    const workflowMs: number[] = [];
    const rawMs: number[] = [];
    const loopMs: number[] = [];
    const perStep: number[] = [];
    const rawPerStep: number[] = [];
    const kernelShare: number[] = [];
    for (let r = 0; r < runs; r++) {
      const a = await kernelRun(String(r));
      const p = await rawRun(String(r));
      const b = await loop();
      workflowMs.push(a);
      rawMs.push(p);
      loopMs.push(b);
      perStep.push((a - b) / steps);
      rawPerStep.push((p - b) / steps);
      kernelShare.push((a - p) / steps);
      say(`overhead run ${r + 1}/${runs}: kernel workflow ${ms(a, 0)}, plain workflow ${ms(p, 0)}, loop ${ms(b, 0)}: ${ms((a - b) / steps)} per step (plain ${ms((p - b) / steps)})`);
    }
    const wf = summarize(workflowMs);
    const raw = summarize(rawMs);
    const lp = summarize(loopMs);
    const ps = summarize(perStep);
    const rps = summarize(rawPerStep);
    const share = summarize(kernelShare);
    const ratio = wf.median / lp.median;
    const rawRatio = raw.median / lp.median;
    return {
      id: 'overhead',
      title,
      method,
      rows: [
        {
          benchmark: title,
          parameters: `kernel workflow (RunbookRun), N=${steps} steps, L=${sleepMs} ms, R=${runs}`,
          result: `overhead/step median ${ms(ps.median)}, p99 ${ms(ps.p99)}; workflow ${ms(wf.median, 0)} vs loop ${ms(lp.median, 0)} (median), ratio ${ratio.toFixed(2)}×`,
          method: 'kernel workflow vs plain await loop of the same activity function; (wf − loop)/N per run',
        },
        {
          benchmark: title,
          parameters: `plain workflow (no kernel), N=${steps} steps, L=${sleepMs} ms, R=${runs}`,
          result: `overhead/step median ${ms(rps.median)}, p99 ${ms(rps.p99)}; workflow ${ms(raw.median, 0)} (median), ratio ${rawRatio.toFixed(2)}×; kernel's share (paired, kernel − plain) median ${ms(share.median)}/step`,
          method: "same activities without RunbookRun: Temporal's cost alone",
        },
      ],
      data: { steps, sleepMs, runs, warmup, workflowMs, rawWorkflowMs: rawMs, loopMs, perStepOverheadMs: perStep, rawPerStepOverheadMs: rawPerStep, kernelSharePerStepMs: kernelShare, kernelShare: share, workflow: wf, rawWorkflow: raw, loop: lp, perStep: ps, rawPerStep: rps, ratio, rawRatio },
    };
  });
}

// ---- 2. fan-out ------------------------------------------------------------

async function fanout(env: Env): Promise<Section> {
  const { fanout: sizes, fanoutRuns: runs, dbLatencyMs } = env.options;
  const namespace = 'bench-fanout';
  const taskQueue = `bench-fanout-${process.pid}`;
  const maxK = Math.max(...sizes);
  // Per database: three inspections (the parent's replication reading before its gate, the child's preflight, its RPO
  // reading), then fence, replay check, promote, write check.
  const callsPerChild = 7;
  // The clock starts at the parent's approval, after its replication reading: the rest is the floor.
  const floorMs = (callsPerChild - 1) * dbLatencyMs;
  const title = '2. Fan-out (evacuation-like)';
  const method =
    `What: wall time of an evacuation-like parent run vs the number K of databases it promotes (ideal: flat). How: a bench workflow ` +
    `(bench/workflows benchEvacuation, real kernel) runs one step that starts K child runs of the REAL dbPromotion workflow through the real ` +
    `promoteInParallel (workflows/procedures.ts), pre-approved by the parent's gate (bob approves it as soon as it opens; each child checks that ` +
    `approval with the parent at admission and skips its own gate), planned mode. ` +
    `The database is SIMULATED: an in-memory DatabaseProvider (bench/simulated-database.ts) behind the real createDatabaseActivities, where every ` +
    `provider call waits ${dbLatencyMs} ms; notifications go to the journal channel (no-op); evidence to a local mirror store in a temp dir. Each database takes ${callsPerChild} sequential provider calls ` +
    `(the parent's replication reading before its gate; in the child: preflight inspection, fence, replay check, RPO reading, promote, write check), so the floor after the approval is ${floorMs} ms whatever K. Wall time = the parent's gate approved -> parent result; ` +
    `R=${runs} runs per K after one warm-up run; median reported. One in-process worker, SDK default options (max 40 concurrent workflow tasks, ` +
    `100 activities). Machine: ${machineLine(env.machine)}.`;
  announce(title, method);
  const { run, policy } = planContext(env.loaded);
  const c = client(env, namespace);
  return withWorker(env, namespace, taskQueue, simulatedDatabases(maxK, dbLatencyMs), async () => {
    const evacuate = async (k: number, label: string): Promise<number> => {
      const databases = Array.from({ length: k }, (_, i) => databaseName(i + 1));
      const callsBefore = SimulatedDatabase.calls;
      const handle = await c.workflow.start<typeof benchEvacuation>('benchEvacuation', {
        taskQueue,
        workflowId: `bench-evacuation-${k}-${label}-${Date.now()}`,
        args: [{ run, databases, mode: 'planned', policy }],
      });
      // The parent's gate, approved by bob as soon as it opens: the clock starts at the approval, as an evacuation's fan-out does.
      const deadline = Date.now() + 30_000;
      while (!(await handle.query(statusQuery)).gates.some((g) => g.id === 'promote-databases' && g.state === 'waiting')) {
        if (Date.now() > deadline) throw new Error(`fan-out K=${k}: the gate of ${handle.workflowId} did not open within 30 s`);
        await delay(10);
      }
      const t = performance.now();
      await handle.executeUpdate(decideUpdate, { args: [{ gate: 'promote-databases', approver: 'bob', decision: 'approve' }] });
      const { outcomes } = await handle.result();
      const elapsed = performance.now() - t;
      const failed = outcomes.filter((o) => o.state !== 'promoted');
      if (failed.length > 0) throw new Error(`fan-out K=${k}: ${failed.length} promotions failed, e.g. ${failed[0]?.database}: ${failed[0]?.error}`);
      const calls = SimulatedDatabase.calls - callsBefore;
      if (calls !== k * callsPerChild) throw new Error(`fan-out K=${k}: expected ${k * callsPerChild} simulated database calls, saw ${calls} (so far, by method: ${JSON.stringify(SimulatedDatabase.byMethod)})`);
      return elapsed;
    };
    await evacuate(Math.min(10, maxK), 'warmup');
    const perK: Record<string, { wallMs: number[]; summary: Summary }> = {};
    for (const k of sizes) {
      const wallMs: number[] = [];
      for (let r = 0; r < runs; r++) {
        wallMs.push(await evacuate(k, String(r)));
        say(`fan-out K=${k} run ${r + 1}/${runs}: ${ms(wallMs[wallMs.length - 1] as number, 0)}`);
      }
      perK[String(k)] = { wallMs, summary: summarize(wallMs) };
    }
    const base = perK[String(sizes[0])]?.summary.median ?? Number.NaN;
    const rows: Row[] = sizes.map((k) => {
      const s = (perK[String(k)] as { summary: Summary }).summary;
      return {
        benchmark: title,
        parameters: `K=${k} child dbPromotion runs, ${dbLatencyMs} ms/simulated call, R=${runs}`,
        result: `wall median ${ms(s.median, 0)} (min ${ms(s.min, 0)}, max ${ms(s.max, 0)}); ${(s.median / base).toFixed(2)}× K=${sizes[0]}; floor ${floorMs} ms`,
        method: 'gate approved → parent result; real dbPromotion children, SIMULATED database',
      };
    });
    return { id: 'fanout', title, method, rows, data: { sizes, runs, dbLatencyMs, floorMs, perK } };
  });
}

// ---- 3. approval latency -----------------------------------------------------

type ApprovalPath = 'update' | 'signal' | 'cli';

async function approval(env: Env): Promise<Section> {
  const n = env.options.approvals;
  const namespace = 'bench-approval';
  const taskQueue = `bench-approval-${process.pid}`;
  const title = '3. Approval latency';
  const method =
    `What: how long after an approver's decision the next step starts. How: a bench workflow (bench/workflows benchGate, real kernel) opens a gate ` +
    `(run.gate) and then runs one step whose activity returns the time it started (performance.timeOrigin + performance.now(), same process as the client). ` +
    `Once the status query shows the gate waiting, bob approves by (a) the decide Update (handle.executeUpdate), (b) the approve signal (handle.signal), ` +
    `(c) the CLI's decideGate (cli/runs.ts: describe, then the Update). Measured: call returned -> activity started (the brief's figure; it can be ` +
    `negative for an Update, whose answer and the activity task leave the server at the same time), and call made -> activity started. ` +
    `N=${n} decisions per path after one warm-up each, median and nearest-rank p99. Machine: ${machineLine(env.machine)}.`;
  announce(title, method);
  const { run } = planContext(env.loaded);
  const c = client(env, namespace);
  return withWorker(env, namespace, taskQueue, new Map(), async () => {
    const waitForGate = async (handle: WorkflowHandle): Promise<void> => {
      const deadline = Date.now() + 30_000;
      while (Date.now() < deadline) {
        const status = await handle.query(statusQuery);
        if (status.gates.some((g) => g.id === 'approve' && g.state === 'waiting')) return;
        await delay(10);
      }
      throw new Error(`gate of ${handle.workflowId} did not open within 30 s`);
    };
    const decide = async (how: ApprovalPath, label: string): Promise<{ afterReturn: number; fromCall: number }> => {
      const workflowId = `bench-gate-${how}-${label}-${Date.now()}`;
      const handle = await c.workflow.start<typeof benchGate>('benchGate', { taskQueue, workflowId, args: [{ run }] });
      await waitForGate(handle);
      const called = now();
      if (how === 'update') await handle.executeUpdate(decideUpdate, { args: [{ gate: 'approve', approver: 'bob', decision: 'approve' }] });
      else if (how === 'signal') await handle.signal(approveSignal, { gate: 'approve', approver: 'bob' });
      else await decideGate(c, env.loaded, { workflowId, gate: 'approve', as: 'bob', decision: 'approve' });
      const returned = now();
      const { activityStartedAt } = await handle.result();
      return { afterReturn: activityStartedAt - returned, fromCall: activityStartedAt - called };
    };
    const labels: Record<ApprovalPath, string> = {
      update: 'decide Update',
      signal: 'approve signal',
      cli: 'CLI decideGate (describe + Update)',
    };
    const data: Record<string, unknown> = { n };
    const rows: Row[] = [];
    for (const how of ['update', 'signal', 'cli'] as const) {
      await decide(how, 'warmup');
      const afterReturn: number[] = [];
      const fromCall: number[] = [];
      for (let i = 0; i < n; i++) {
        const r = await decide(how, String(i));
        afterReturn.push(r.afterReturn);
        fromCall.push(r.fromCall);
      }
      const a = summarize(afterReturn);
      const f = summarize(fromCall);
      say(`approval via ${labels[how]}: return -> activity median ${ms(a.median)}, p99 ${ms(a.p99)}; call -> activity median ${ms(f.median)}, p99 ${ms(f.p99)}`);
      data[how] = { afterReturnMs: afterReturn, fromCallMs: fromCall, afterReturn: a, fromCall: f };
      rows.push({
        benchmark: title,
        parameters: `${labels[how]}, N=${n}`,
        result: `return→activity start median ${ms(a.median)}, p99 ${ms(a.p99)}; call→activity start median ${ms(f.median)}, p99 ${ms(f.p99)}`,
        method: 'gate then one step; activity records its start time (same process clock as the client)',
      });
    }
    return { id: 'approval', title, method, rows, data };
  });
}

// ---- 4. worker cold start ------------------------------------------------------

function forkChild(script: string, argument: unknown): ChildProcess {
  // The children's stdout goes to our stderr: stdout carries only the table.
  return fork(path.join(__dirname, script), [JSON.stringify(argument)], { stdio: ['ignore', 2, 2, 'ipc'] });
}

function childResult<T>(child: ChildProcess, what: string, timeoutMs: number): Promise<T> {
  return new Promise((resolve, reject) => {
    let result: T | undefined;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${what} did not finish within ${timeoutMs / 1000} s`));
    }, timeoutMs);
    child.on('message', (message) => (result = message as T));
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(timer);
      if (code === 0 && result !== undefined) resolve(result);
      else reject(new Error(`${what} exited with code ${code}${result === undefined ? ' without a report' : ''}`));
    });
  });
}

async function coldStart(env: Env): Promise<Section> {
  const runs = env.options.coldRuns;
  const namespace = 'bench-coldstart';
  const title = '4. Worker cold start';
  const variants = ['workflowsPath', 'prebuilt-bundle'] as const;
  say('\ncold start: pre-building the Lifeboat workflow bundle (bundleWorkflowCode of workflows/index.ts)');
  const tBundle = performance.now();
  const { code } = await bundleWorkflowCode({ workflowsPath: LIFEBOAT_WORKFLOWS, logger: quietBundlerLogger });
  const bundleMs = performance.now() - tBundle;
  const bundlePath = path.join(env.tmpDir, 'lifeboat-workflow-bundle.js');
  writeFileSync(bundlePath, code);
  const method =
    `What: how long a fresh Lifeboat worker takes to serve its first workflow task, with workflowsPath (webpack bundles workflows/index.ts inside ` +
    `Worker.create) vs a bundle pre-built by bundleWorkflowCode (what npm run build does; building it took ${ms(bundleMs, 0)} here, ` +
    `${(code.length / 1024).toFixed(0)} KiB, paid at build time). How: a db-promotion run is started on an empty task queue; then a fresh Node process ` +
    `(bench/cold-start-child.ts: no warm module cache, JIT or webpack) connects, and the clock starts just before Worker.create; it stops at the run's ` +
    `first WorkflowTaskCompleted event (server event time, same machine clock). Also shown: Worker.create alone. ${runs} runs per variant, interleaved; ` +
    `median (min-max). Real Lifeboat workflows, SIMULATED database (0 ms). Machine: ${machineLine(env.machine)}.`;
  announce(title, method);
  const { run, policy } = planContext(env.loaded);
  const c = client(env, namespace);
  const reports: Record<string, ColdStartReport[]> = { workflowsPath: [], 'prebuilt-bundle': [] };
  for (let i = 0; i < runs; i++) {
    for (const variant of variants) {
      const taskQueue = `bench-cold-${variant}-${i}-${process.pid}`;
      const workflowId = `bench-cold-${variant}-${i}-${Date.now()}`;
      const handle = await c.workflow.start('dbPromotion', { taskQueue, workflowId, args: [{ database: databaseName(1), mode: 'planned', run, policy }] });
      const request: ColdStartRequest = { address: env.address, namespace, taskQueue, workflowId, variant, workflowsPath: LIFEBOAT_WORKFLOWS, bundlePath, evidenceDir: path.join(env.tmpDir, 'evidence') };
      try {
        const report = await childResult<ColdStartReport>(forkChild('cold-start-child.js', request), `cold start (${variant})`, 180_000);
        reports[variant]?.push(report);
        say(`cold start ${variant} run ${i + 1}/${runs}: Worker.create ${ms(report.createMs, 0)}, first workflow task completed at ${ms(report.firstTaskMs, 0)}`);
      } finally {
        await handle.terminate('bench: cold start measured').catch(() => undefined);
      }
    }
  }
  const rows: Row[] = variants.map((variant) => {
    const list = reports[variant] as ColdStartReport[];
    const first = summarize(list.map((r) => r.firstTaskMs));
    const create = summarize(list.map((r) => r.createMs));
    return {
      benchmark: title,
      parameters: `${variant === 'workflowsPath' ? 'workflowsPath (bundle at start)' : 'pre-built bundle (workflowBundle)'}, ${runs} runs`,
      result: `to first workflow task: median ${ms(first.median, 0)} (${ms(first.min, 0)}–${ms(first.max, 0)}); Worker.create ${ms(create.median, 0)}`,
      method: 'fresh Node process; Worker.create → first WorkflowTaskCompleted event',
    };
  });
  return { id: 'coldstart', title, method, rows, data: { runs, bundleMs, bundleBytes: code.length, reports } };
}

// ---- 5. throughput -----------------------------------------------------------

async function pool<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const lanes = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i] as T);
    }
  });
  await Promise.all(lanes);
  return results;
}

async function throughput(env: Env): Promise<Section> {
  const { throughput: sizes, drillStepMs } = env.options;
  const namespace = 'bench-throughput';
  const taskQueue = `bench-throughput-${process.pid}`;
  const steps = 3;
  const startConcurrency = 100;
  const warmupRuns = 20;
  const title = '5. Throughput';
  const method =
    `What: how many concurrent drill runs one worker completes, and its memory. How: M bench drill runs (bench/workflows benchSteps with drill=true, ` +
    `real kernel, ${steps} steps each sleeping ${drillStepMs} ms) are started at once (at most ${startConcurrency} start calls in flight) on one worker ` +
    `in its own Node process (bench/throughput-worker.ts, pre-built bundle, SDK default options); completion time = first start call -> last result; ` +
    `runs/s = M / completion time; per-run latency = its start returned -> its result. Worker RSS = process.memoryUsage().rss sampled every 100 ms in ` +
    `the worker process (start of the window and peak). ${warmupRuns} warm-up runs first. Machine: ${machineLine(env.machine)}.`;
  announce(title, method);
  const { run } = planContext(env.loaded);
  const c = client(env, namespace);
  const request: ThroughputWorkerRequest = { address: env.address, namespace, taskQueue, bundlePath: env.benchBundlePath, sampleEveryMs: 100, evidenceDir: path.join(env.tmpDir, 'evidence') };
  const child = forkChild('throughput-worker.js', request);
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  const nextMessage = <T extends ThroughputWorkerMessage['type']>(type: T): Promise<Extract<ThroughputWorkerMessage, { type: T }>> =>
    new Promise((resolve, reject) => {
      const onMessage = (message: ThroughputWorkerMessage) => {
        if (message.type !== type) return;
        child.off('message', onMessage);
        resolve(message as Extract<ThroughputWorkerMessage, { type: T }>);
      };
      child.on('message', onMessage);
      void exited.then((code) => reject(new Error(`the throughput worker exited (code ${code}) while waiting for '${type}'`)));
    });
  try {
    const ready = await nextMessage('ready');
    const batch = async (m: number, label: string) => {
      const t0 = performance.now();
      const runs = await pool(Array.from({ length: m }, (_, i) => i), startConcurrency, async (i) => {
        const handle = await c.workflow.start<typeof benchSteps>('benchSteps', {
          taskQueue,
          workflowId: `bench-drill-${label}-${i}-${Date.now()}`,
          args: [{ run, steps, sleepMs: drillStepMs }],
        });
        const started = performance.now();
        return { started, done: handle.result().then(() => performance.now()) };
      });
      const startedAll = performance.now();
      const done = await Promise.all(runs.map((r) => r.done));
      const end = performance.now();
      return { completionMs: end - t0, startMs: startedAll - t0, latencies: runs.map((r, i) => (done[i] as number) - r.started) };
    };
    await batch(warmupRuns, 'warmup');
    const perM: Record<string, unknown> = {};
    const rows: Row[] = [];
    for (const m of sizes) {
      child.send({ type: 'begin' });
      const windowDone = nextMessage('window');
      const r = await batch(m, `m${m}`);
      child.send({ type: 'end' });
      const window = await windowDone;
      const latency = summarize(r.latencies);
      const rate = m / (r.completionMs / 1000);
      say(`throughput M=${m}: ${ms(r.completionMs, 0)}, ${rate.toFixed(1)} runs/s, worker RSS ${mib(window.startRss)} -> peak ${mib(window.peakRss)}`);
      perM[String(m)] = { ...r, latency, runsPerSecond: rate, rss: window };
      rows.push({
        benchmark: title,
        parameters: `M=${m} concurrent drill runs × ${steps} steps (${drillStepMs} ms), 1 worker`,
        result: `${(r.completionMs / 1000).toFixed(2)} s, ${rate.toFixed(1)} runs/s; run latency median ${ms(latency.median, 0)}, p99 ${ms(latency.p99, 0)}; worker RSS ${mib(window.startRss)} → peak ${mib(window.peakRss)}`,
        method: 'all started at once; first start → last result; RSS sampled every 100 ms in the worker process',
      });
    }
    return { id: 'throughput', title, method, rows, data: { sizes, steps, drillStepMs, startConcurrency, warmupRuns, idleRss: ready.rss, perM } };
  } finally {
    if (child.exitCode === null) {
      try {
        child.send({ type: 'stop' });
      } catch {
        child.kill('SIGTERM');
      }
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      await exited;
      clearTimeout(timer);
    }
  }
}

// ---- 6. the real lab, 7. the sentinel ------------------------------------------

/** A benchmark in a private lab of its own (bench/lab.ts, bench/sentinel.ts), in its own namespace. */
function inPrivateLab(id: 'lab' | 'sentinel', bench: (ctx: LabBenchContext) => Promise<LabBenchResult>): (env: Env) => Promise<Section> {
  return async (env) => ({
    id,
    ...(await bench({
      address: env.address,
      connection: env.connection,
      native: env.native,
      namespace: `bench-${id}`,
      runs: env.options.labRuns,
      machineLine: machineLine(env.machine),
      onCleanup: (fn) => env.cleanups.push(fn),
    })),
  });
}
const lab = inPrivateLab('lab', labBenchmark);
const sentinel = inPrivateLab('sentinel', sentinelBenchmark);

// ---- main ----------------------------------------------------------------------

/** The checkout measured: commit and whether files differ from it (best effort: 'unknown' outside a git checkout). */
function gitState(): { commit: string; dirty: string[] } {
  try {
    const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const status = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    return { commit, dirty: status.split('\n').filter((l) => l.trim() !== '').map((l) => l.slice(3)) };
  } catch {
    return { commit: 'unknown', dirty: [] };
  }
}

function versions(): Record<string, string> {
  let temporalCli = 'unknown';
  try {
    temporalCli = execFileSync(temporalBinary(), ['--version'], { encoding: 'utf8' }).trim();
  } catch {
    // reported as unknown
  }
  const sdk = (require('@temporalio/worker/package.json') as { version: string }).version;
  return { temporalCli, temporalSdk: sdk, node: process.version };
}

function markdown(report: { startedAt: string; durationSeconds: number; machine: Machine; loadAverageAtEnd: number[]; git: { commit: string; dirty: string[] }; versions: Record<string, string>; server: string; sections: Section[] }): string {
  const dirty = report.git.dirty.length > 0 ? ` plus uncommitted changes to ${report.git.dirty.join(', ')}` : '';
  const lines = [
    `# Lifeboat benchmarks (${report.startedAt})`,
    '',
    `Machine: ${machineLine(report.machine)}; load average (1, 5, 15 min) ${report.machine.loadAverage.join(' ')} at start, ${report.loadAverageAtEnd.join(' ')} at the end (other work on the machine skews the figures).`,
    `Temporal: ${report.versions.temporalCli}, ${report.server}; TypeScript SDK ${report.versions.temporalSdk}. Run took ${report.durationSeconds.toFixed(0)} s.`,
    `Code: commit ${report.git.commit}${dirty}.`,
    report.sections.some((s) => s.id !== 'lab' && s.id !== 'sentinel')
      ? `Benchmarks 1–5: databases are SIMULATED (in-memory provider, fixed latency): these are orchestration costs, not real RTOs.${report.sections.some((s) => s.id === 'lab') ? ' Benchmark 6 runs a real evacuation in a private lab (real PostgreSQL, emulated Route 53, SMTP and SMS).' : ''}${report.sections.some((s) => s.id === 'sentinel') ? ' Benchmark 7 kills a real primary and lets the sentinel recover it.' : ''}`
      : 'Benchmarks 6 and 7 run in a private lab: a real evacuation (real PostgreSQL, emulated Route 53, SMTP and SMS), and a real primary killed and recovered by the sentinel.',
    '',
    '| benchmark | parameters | result | method |',
    '|---|---|---|---|',
    ...report.sections.flatMap((s) => s.rows.map((r) => `| ${[r.benchmark, r.parameters, r.result, r.method].map(escapeCell).join(' | ')} |`)),
    '',
    '## Methods',
    '',
    ...report.sections.flatMap((s) => [`### ${s.title}`, '', s.method, '']),
  ];
  return `${lines.join('\n')}\n`;
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  if (options.only.includes('lab') || options.only.includes('sentinel')) {
    const missing = labPrerequisites();
    if (missing.length > 0) {
      say(
        `the lab benchmark needs PostgreSQL 15, moto and Mailpit; missing:\n  ${missing.join('\n  ')}\n` +
          "Install them with scripts/toolchain.sh: bash -c 'source scripts/toolchain.sh && ensure_postgres && ensure_moto && ensure_mailpit', " +
          'or leave lab out (--only=overhead,fanout,approval,coldstart,throughput).',
      );
      process.exit(2);
    }
  }
  const startedAt = new Date();
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const m = machine();
  const v = versions();
  say(`machine: ${machineLine(m)}; ${v.temporalCli}; SDK ${v.temporalSdk}`);
  const tmpDir = mkdtempSync(path.join(os.tmpdir(), 'lifeboat-bench-'));
  let server: DevServer | undefined;
  const cleanups: Array<() => Promise<void>> = [];
  const stop = async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch((err: unknown) => say(`clean-up failed: ${(err as Error).message}`));
    if (server) {
      const pid = server.pid;
      server = undefined;
      await stopDevServer(pid).catch((err: unknown) => say(`could not stop the dev server ${pid}: ${(err as Error).message}`));
    }
    rmSync(tmpDir, { recursive: true, force: true });
  };
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      say(`${signal}: stopping the dev server`);
      void stop().finally(() => process.exit(130));
    });
  }
  try {
    let address = options.address;
    let serverText = `the server at ${address ?? ''}`;
    if (!address) {
      const port = await freePort();
      const uiPort = await freePort();
      const dbFile = options.store === 'file' ? path.join(tmpDir, 'temporal.db') : undefined;
      say(`starting the Temporal dev server on 127.0.0.1:${port} (${dbFile ? `SQLite file ${dbFile}` : 'in-memory store'})`);
      server = await startDevServer({ port, uiPort, dbFile, logFile: path.join(tmpDir, 'temporal.log') });
      address = server.address;
      serverText = `dev server (\`temporal server start-dev\`, ${dbFile ? 'temp SQLite file' : 'in-memory store'}, loopback)`;
    }
    const namespaces = options.only.map((id) => `bench-${id}`);
    await Promise.all(namespaces.map((ns) => ensureNamespace(address, ns)));
    const connection = await Connection.connect({ address });
    const native = await NativeConnection.connect({ address });
    say('bundling the bench workflows (bench/workflows/index.ts)');
    const { code: benchBundle } = await bundleWorkflowCode({ workflowsPath: BENCH_WORKFLOWS, logger: quietBundlerLogger });
    const benchBundlePath = path.join(tmpDir, 'bench-workflow-bundle.js');
    writeFileSync(benchBundlePath, benchBundle);
    const env: Env = {
      options,
      machine: m,
      address,
      connection,
      native,
      benchBundle,
      benchBundlePath,
      tmpDir,
      loaded: benchConfig(address, Math.max(...options.fanout, 1)),
      cleanups,
    };
    const runners: Record<BenchId, (env: Env) => Promise<Section>> = { overhead, fanout, approval, coldstart: coldStart, throughput, lab, sentinel };
    const sections: Section[] = [];
    for (const id of BENCHMARKS.filter((b) => options.only.includes(b))) sections.push(await runners[id](env));
    await native.close();
    await connection.close();

    const durationSeconds = (Date.now() - startedAt.getTime()) / 1000;
    const loadAverageAtEnd = os.loadavg().map((l) => Math.round(l * 100) / 100);
    const report = { startedAt: startedAt.toISOString(), durationSeconds, machine: m, loadAverageAtEnd, git: gitState(), versions: v, server: serverText, options, sections };
    const md = markdown(report);
    mkdirSync(options.resultsDir, { recursive: true });
    const stamp = startedAt.toISOString().replace(/[:.]/g, '-');
    const json = `${JSON.stringify(report, null, 2)}\n`;
    writeFileSync(path.join(options.resultsDir, `${stamp}.json`), json);
    writeFileSync(path.join(options.resultsDir, 'latest.json'), json);
    writeFileSync(path.join(options.resultsDir, 'latest.md'), md);
    process.stdout.write(`\n${md}`);
    say(`results: ${path.relative(process.cwd(), path.join(options.resultsDir, `${stamp}.json`))}, latest.json, latest.md`);
  } finally {
    await stop();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    say(`FAILED: ${(err as Error).stack ?? String(err)}`);
    process.exit(1);
  },
);
