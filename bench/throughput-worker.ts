/**
 * Benchmark 5's worker, in its own process so its RSS is the worker's alone:
 * the bench workflows (pre-built bundle) and activities on one task queue,
 * RSS sampled every 100 ms. Forked by run.ts; driven over IPC:
 * `begin` opens a sampling window, `end` reports it, `stop` shuts down.
 */
import { DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { benchActivities } from './activities';
import { simulatedDatabases } from './simulated-database';

export interface ThroughputWorkerRequest {
  address: string;
  namespace: string;
  taskQueue: string;
  bundlePath: string;
  sampleEveryMs: number;
  evidenceDir: string;
}

export type ThroughputWorkerMessage =
  | { type: 'ready'; rss: number }
  | { type: 'window'; startRss: number; peakRss: number; endRss: number; samples: number };

async function main(): Promise<void> {
  const request = JSON.parse(process.argv[2] ?? '{}') as ThroughputWorkerRequest;
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const connection = await NativeConnection.connect({ address: request.address });
  const worker = await Worker.create({
    connection,
    namespace: request.namespace,
    taskQueue: request.taskQueue,
    activities: benchActivities(simulatedDatabases(0, 0), request.evidenceDir),
    workflowBundle: { codePath: request.bundlePath },
  });
  let window = { startRss: 0, peakRss: 0, samples: 0 };
  const sampler = setInterval(() => {
    const rss = process.memoryUsage.rss();
    window.peakRss = Math.max(window.peakRss, rss);
    window.samples++;
  }, request.sampleEveryMs);
  const send = (message: ThroughputWorkerMessage) => process.send?.(message);
  process.on('message', (message: { type: string }) => {
    if (message.type === 'begin') {
      const rss = process.memoryUsage.rss();
      window = { startRss: rss, peakRss: rss, samples: 1 };
    } else if (message.type === 'end') {
      const rss = process.memoryUsage.rss();
      send({ type: 'window', startRss: window.startRss, peakRss: Math.max(window.peakRss, rss), endRss: rss, samples: window.samples + 1 });
    } else if (message.type === 'stop') {
      worker.shutdown();
    }
  });
  const running = worker.run();
  send({ type: 'ready', rss: process.memoryUsage.rss() });
  await running;
  clearInterval(sampler);
  await connection.close();
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`throughput worker: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
