/**
 * Benchmark 4, one measurement in a fresh Node process (no warm module cache,
 * JIT or webpack): from `Worker.create` to the first workflow task completed,
 * for a db-promotion run started before the worker existed. Forked by run.ts;
 * reports over IPC.
 */
import { Client, Connection } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { tsToMs } from '@temporalio/common/lib/time';
import { DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { benchActivities } from './activities';
import { simulatedDatabases } from './simulated-database';

export interface ColdStartRequest {
  address: string;
  namespace: string;
  taskQueue: string;
  workflowId: string;
  variant: 'workflowsPath' | 'prebuilt-bundle';
  workflowsPath: string;
  bundlePath: string;
  evidenceDir: string;
}

export interface ColdStartReport {
  /** Worker.create (bundling included for workflowsPath). */
  createMs: number;
  /** Worker.create called -> first WorkflowTaskCompleted event (server event time). */
  firstTaskMs: number;
  /** Worker.create called -> first activity of the run started in this worker. */
  firstActivityMs: number;
  rssAfterCreate: number;
}

async function main(): Promise<void> {
  const request = JSON.parse(process.argv[2] ?? '{}') as ColdStartRequest;
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const nativeConnection = await NativeConnection.connect({ address: request.address });
  const connection = await Connection.connect({ address: request.address });
  const client = new Client({ connection, namespace: request.namespace });
  let firstActivityAt = 0;
  let firstActivity!: () => void;
  const started = new Promise<void>((resolve) => (firstActivity = resolve));
  const activities = benchActivities(simulatedDatabases(1, 0), request.evidenceDir);
  const preflight = activities.preflightPromotion;
  activities.preflightPromotion = async (...args: Parameters<typeof preflight>) => {
    if (firstActivityAt === 0) firstActivityAt = Date.now();
    firstActivity();
    return preflight(...args);
  };

  const t0 = Date.now();
  const worker = await Worker.create({
    connection: nativeConnection,
    namespace: request.namespace,
    taskQueue: request.taskQueue,
    activities,
    ...(request.variant === 'workflowsPath' ? { workflowsPath: request.workflowsPath } : { workflowBundle: { codePath: request.bundlePath } }),
  });
  const createMs = Date.now() - t0;
  const rssAfterCreate = process.memoryUsage.rss();
  const running = worker.run();
  await Promise.race([started, running.then(() => Promise.reject(new Error('the worker stopped before the first activity')))]);
  const history = await client.workflow.getHandle(request.workflowId).fetchHistory();
  const completed = history.events?.find((e) => e.eventType === temporal.api.enums.v1.EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED);
  if (!completed?.eventTime) throw new Error(`no WorkflowTaskCompleted event in ${request.workflowId}`);
  const firstTaskMs = tsToMs(completed.eventTime) - t0;
  worker.shutdown();
  await running;
  await nativeConnection.close();
  await connection.close();
  const report: ColdStartReport = { createMs, firstTaskMs, firstActivityMs: firstActivityAt - t0, rssAfterCreate };
  await new Promise<void>((resolve, reject) => process.send?.(report, (err: Error | null) => (err ? reject(err) : resolve())) ?? resolve());
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`cold-start child: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
