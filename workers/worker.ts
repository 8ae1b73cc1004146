/**
 * A Lifeboat worker: the runbook workflows and the provider activities on one
 * task queue. Production loads the workflow bundle pre-built by `npm run build`;
 * development bundles from source (`workflowsPath`).
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import type { DataConverter } from '@temporalio/common';
import { Client } from '@temporalio/client';
import { getDataConverter } from '../lib/codec';
import { hostTaskQueue } from '../contract/queues';
import { createActivities, type ActivityDependencies } from '../activities';

export type WorkflowSource = 'bundle' | 'source';

/** Where `npm run build` writes the pre-built workflow bundle. */
export const WORKFLOW_BUNDLE_PATH = bundlePath();

function bundlePath(): string {
  // Compiled, this file is dist/workers/worker.js; from source it is workers/worker.ts.
  const parent = path.resolve(__dirname, '..');
  return path.basename(parent) === 'dist' ? path.join(parent, 'workflow-bundle.js') : path.join(parent, 'dist', 'workflow-bundle.js');
}

export interface LifeboatWorkerOptions {
  connection: NativeConnection;
  namespace: string;
  taskQueue: string;
  dependencies: ActivityDependencies;
  /** Default: the bundle in production (NODE_ENV=production), the sources otherwise. */
  workflows?: WorkflowSource;
  identity?: string;
  /** Serve only the host-bound activities of this region, on its own queue (no workflows). */
  region?: string;
  /** lib/codec.ts's converter, encrypting when payloads are encrypted; the same one the clients use. Default: unencrypted, failures still encoded as the pre-built bundle encodes them. */
  dataConverter?: DataConverter;
  overrides?: Partial<WorkerOptions>;
}

export function defaultWorkflowSource(): WorkflowSource {
  return process.env.NODE_ENV === 'production' ? 'bundle' : 'source';
}

export async function createLifeboatWorker(options: LifeboatWorkerOptions): Promise<Worker> {
  const source = options.workflows ?? defaultWorkflowSource();
  const workflows: Pick<WorkerOptions, 'workflowBundle' | 'workflowsPath'> =
    options.region !== undefined
      ? {}
      : source === 'bundle'
      ? { workflowBundle: { codePath: requireBundle() } }
      : { workflowsPath: workflowsSourcePath() };
  for (const check of options.dependencies.startupChecks ?? []) await check();
  const dataConverter = options.dataConverter ?? getDataConverter(undefined);
  return Worker.create({
    connection: options.connection,
    namespace: options.namespace,
    taskQueue: options.region !== undefined ? hostTaskQueue(options.taskQueue, options.region) : options.taskQueue,
    // Target holds read the server through the worker's own connection and converter.
    activities: createActivities({ temporal: new Client({ connection: options.connection, namespace: options.namespace, dataConverter }), ...options.dependencies, ...(options.region !== undefined ? { region: options.region } : {}) }),
    ...(options.identity ? { identity: options.identity } : {}),
    dataConverter,
    ...workflows,
    ...options.overrides,
  });
}

/** The workflows entry next to this file: TypeScript in a checkout, JavaScript in dist/. */
export function workflowsSourcePath(): string {
  const dir = path.join(__dirname, '..', 'workflows');
  const entry = ['index.ts', 'index.js'].map((f) => path.join(dir, f)).find((f) => existsSync(f));
  if (!entry) throw new Error(`no workflows entry (index.ts or index.js) in ${dir}`);
  return entry;
}

function requireBundle(): string {
  if (!existsSync(WORKFLOW_BUNDLE_PATH)) {
    throw new Error(`no pre-built workflow bundle at ${WORKFLOW_BUNDLE_PATH}: run 'npm run build' (or use --workflows source)`);
  }
  return WORKFLOW_BUNDLE_PATH;
}
