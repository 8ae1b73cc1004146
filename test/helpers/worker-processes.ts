/**
 * What the worker tests kill and restart: real `lifeboat worker` processes
 * (the pre-built bundle), beside the host workers of the node regions in this
 * process (fencing by shutdown runs on the node's host; the tests kill only
 * the main worker processes), and the client the test drives them through.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import type { TestLab } from './lab';
import { startHostWorkers, startWorkerProcess, type HostWorkers } from './temporal';

export class WorkerProcesses {
  private readonly started: { name: string; child: ChildProcess }[] = [];

  private constructor(
    private readonly lab: TestLab,
    readonly client: Client,
    /** The host workers in this process: a test may stop a region's and start it again. */
    readonly hostWorkers: HostWorkers,
  ) {}

  /** Connects to `address` (the lab's server by default) and starts the lab's host workers. */
  static async start(lab: TestLab, address = lab.loaded.config.temporal.address): Promise<WorkerProcesses> {
    const connection = await Connection.connect({ address });
    const client = new Client({ connection, namespace: lab.loaded.config.temporal.namespace });
    return new WorkerProcesses(lab, client, await startHostWorkers(lab.loaded));
  }

  /** Starts a `lifeboat worker` process logging to <lab dir>/<name>.log (a host worker of `region` when given). */
  startWorker(name: string, region?: string): ChildProcess {
    const child = startWorkerProcess(this.lab.configFile, this.lab.dir, name, region);
    this.started.push({ name, child });
    return child;
  }

  /** SIGKILLs every worker process still running. */
  killAll(): void {
    for (const { child } of this.started) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }

  /** The last lines of every worker process's log, for a failure message. */
  logTails(): string {
    return this.started.map(({ name }) => {
      const file = path.join(this.lab.dir, `${name}.log`);
      const lines = existsSync(file) ? readFileSync(file, 'utf8').trimEnd().split('\n').slice(-15) : ['(no log)'];
      return `--- ${name}.log ---\n${lines.join('\n')}`;
    }).join('\n');
  }

  /** Stops the host workers, kills the worker processes and closes the client's connection. */
  async close(): Promise<void> {
    await this.hostWorkers.close();
    this.killAll();
    await this.client.connection.close();
  }
}
