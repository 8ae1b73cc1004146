/** Clients and workers against the test run's real Temporal dev server. */
import { spawn, type ChildProcess } from 'node:child_process';
import { openSync } from 'node:fs';
import path from 'node:path';
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import { NativeConnection, Runtime, DefaultLogger, type Worker } from '@temporalio/worker';
import { workerRegions, type LoadedConfig } from '../../config/load';
import { statusQuery, type RunbookStatus } from '../../contract/runbook';
import { waitFor } from '../../lib/processes';
import { buildActivityDependencies } from '../../workers/dependencies';
import { createLifeboatWorker } from '../../workers/worker';
import { dataConverter, temporalTarget } from '../../lib/temporal';

let runtimeInstalled = false;

/** Quiet worker logs: warnings and errors only. */
function installRuntime(): void {
  if (runtimeInstalled) return;
  runtimeInstalled = true;
  Runtime.install({ logger: new DefaultLogger('WARN') });
}

export interface TestTemporal {
  client: Client;
  worker: Worker;
  /** The host workers of the node regions (`<queue>@<region>`), which a test may stop and start again. */
  hosts: HostWorkers;
  /** Stops the worker and closes the connections. */
  close(): Promise<void>;
}

export interface HostWorkers {
  /** Shuts down the host worker of `region` (its region lost, as far as Lifeboat can tell). */
  stop(region: string): Promise<void>;
  /** Starts the host worker of `region` again (idempotent). */
  start(region: string): Promise<void>;
  close(): Promise<void>;
}

/** A worker (workflows from source, real activities) on the lab's own task queue, plus a client. */
export async function startTestTemporal(loaded: LoadedConfig): Promise<TestTemporal> {
  installRuntime();
  const { address, namespace, taskQueue } = loaded.config.temporal;
  const nativeConnection = await NativeConnection.connect({ address });
  const worker = await createLifeboatWorker({
    connection: nativeConnection,
    namespace,
    taskQueue,
    dependencies: buildActivityDependencies(loaded),
    workflows: 'source',
    dataConverter: dataConverter(temporalTarget(loaded)),
  });
  const hosts = await hostWorkers(loaded, nativeConnection);
  const running = worker.run();
  const connection = await Connection.connect({ address });
  const client = new Client({ connection, namespace, dataConverter: dataConverter(temporalTarget(loaded)) });
  return {
    client,
    worker,
    hosts,
    async close() {
      await hosts.close();
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await running;
      await nativeConnection.close();
      await connection.close();
    },
  };
}

/** One host worker per region of the database nodes and the sentinels (activities only, `<queue>@<region>`), as the lab runs them. */
async function hostWorkers(loaded: LoadedConfig, connection: NativeConnection): Promise<HostWorkers> {
  const { namespace, taskQueue } = loaded.config.temporal;
  const running = new Map<string, { worker: Worker; done: Promise<void> }>();
  const start = async (region: string) => {
    if (running.has(region)) return;
    const worker = await createLifeboatWorker({
      connection,
      namespace,
      taskQueue,
      region,
      identity: `lifeboat-test@${region}`,
      dependencies: buildActivityDependencies(loaded),
      dataConverter: dataConverter(temporalTarget(loaded)),
    });
    running.set(region, { worker, done: worker.run() });
  };
  const stop = async (region: string) => {
    const host = running.get(region);
    if (!host) return;
    running.delete(region);
    if (host.worker.getState() === 'RUNNING') host.worker.shutdown();
    await host.done;
  };
  await Promise.all(workerRegions(loaded).map(start));
  return {
    start,
    stop,
    async close() {
      await Promise.all([...running.keys()].map(stop));
    },
  };
}

/** Host workers in this process, for tests whose main worker is a separate process (killed by the test). */
export async function startHostWorkers(loaded: LoadedConfig): Promise<HostWorkers> {
  installRuntime();
  const connection = await NativeConnection.connect({ address: loaded.config.temporal.address });
  const hosts = await hostWorkers(loaded, connection);
  return {
    start: hosts.start,
    stop: hosts.stop,
    async close() {
      await hosts.close();
      await connection.close();
    },
  };
}

/** Polls the status query until `predicate` holds. */
export async function waitForStatus(handle: WorkflowHandle, predicate: (s: RunbookStatus) => boolean, what: string, timeoutMs = 60_000): Promise<RunbookStatus> {
  let last: RunbookStatus | undefined;
  try {
    return await waitFor(what, async () => {
      last = await handle.query(statusQuery);
      return predicate(last) ? last : undefined;
    }, timeoutMs, 200);
  } catch (err) {
    // Say where the run was, so a timeout in CI can be diagnosed from its log alone.
    if (!last) throw err;
    const steps = last.steps.map((s) => `${s.id}=${s.state}`).join(' ');
    const events = last.events.slice(-5).map((e) => `${e.at} ${e.kind} ${e.detail}`).join(' | ');
    const notifications = last.notifications.lastError ? `; notifications: ${last.notifications.lastError}` : '';
    throw new Error(`${(err as Error).message}; the run was ${last.state} in phase "${last.phase}", steps: ${steps}; last events: ${events}${notifications}`, { cause: err });
  }
}

export const gateWaiting = (gate: string) => (s: RunbookStatus) => s.gates.some((g) => g.id === gate && g.state === 'waiting');

/**
 * A real `lifeboat worker` process on the lab's config (pre-built bundle), output in <lab dir>/<name>.log;
 * with `region`, the host worker of that region (`lifeboat worker --region`).
 */
export function startWorkerProcess(configFile: string, logDir: string, name: string, region?: string): ChildProcess {
  const cli = path.join(__dirname, '..', '..', 'dist', 'cli', 'lifeboat.js');
  const log = openSync(path.join(logDir, `${name}.log`), 'a');
  const args = region === undefined ? ['worker', '--workflows', 'bundle'] : ['worker', '--region', region];
  return spawn(process.execPath, [cli, '--config', configFile, ...args], {
    env: { ...process.env, NODE_ENV: 'production' },
    stdio: ['ignore', log, log],
  });
}
