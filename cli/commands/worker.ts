/**
 * `lifeboat worker`: runs a worker. The one command that uses the worker's
 * composition root (workers/dependencies.ts) and so the worker's secrets;
 * every other command builds read-only clients (cli/readers.ts).
 */
import { Option, type Command } from 'commander';
import { workerRegions } from '../../config/load';
import { hostTaskQueue } from '../../contract/queues';
import { LAB_ENVIRONMENT } from '../../lab/lab';
import { connectWorker, dataConverter, temporalTarget } from '../../lib/temporal';
import { buildActivityDependencies } from '../../workers/dependencies';
import { createLifeboatWorker, type WorkflowSource } from '../../workers/worker';
import { examples } from '../help';
import { UsageError } from '../start';
import { commandConfig, say } from './context';

export function register(program: Command): void {
  examples(
    program
      .command('worker')
      .description('run a worker: the runbook workflows and provider activities, or (--region) the host-bound work of one region')
      .addOption(new Option('--workflows <source>', 'pre-built bundle or sources').choices(['bundle', 'source']))
      .option('--region <name>', "serve only the host-bound work (fence by shutdown, rewind, rebuild) of this region's database nodes, on its own task queue; run it on those nodes' host"),
    ['lifeboat worker', 'NODE_ENV=production lifeboat worker --workflows bundle', 'lifeboat worker --region east'],
  ).action(async (o: { workflows?: WorkflowSource; region?: string }, cmd: Command) => {
    const loaded = commandConfig(cmd);
    const target = temporalTarget(loaded);
    if (o.region !== undefined && !workerRegions(loaded).includes(o.region)) {
      throw new UsageError(`--region ${o.region}: neither a database node nor a sentinel of ${loaded.file} is in that region (regions: ${workerRegions(loaded).join(', ')})`);
    }
    const connection = await connectWorker(target);
    // A lab's own stand-in credentials (never in a production config) fill in what the environment leaves unset.
    const env = loaded.isLab ? { ...LAB_ENVIRONMENT, ...process.env } : process.env;
    const worker = await createLifeboatWorker({
      connection,
      namespace: target.namespace,
      taskQueue: target.taskQueue,
      region: o.region,
      dependencies: buildActivityDependencies(loaded, env),
      workflows: o.workflows,
      dataConverter: dataConverter(target),
    });
    say(`worker polling task queue '${o.region ? hostTaskQueue(target.taskQueue, o.region) : target.taskQueue}' at ${target.address} (namespace ${target.namespace})`);
    await worker.run();
    await connection.close();
  });
}
