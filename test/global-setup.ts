/**
 * One real Temporal dev server per test run (the Temporal CLI built by set-up),
 * on free loopback ports with its own SQLite file; or an existing server when
 * LIFEBOAT_TEST_TEMPORAL_ADDRESS is set. Never a mock.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { freePort } from '../lib/processes';
import { startDevServer, stopDevServer } from '../lab/temporal-server';

declare module 'vitest' {
  export interface ProvidedContext {
    temporalAddress: string;
    temporalUiUrl: string;
    temporalDbFile: string;
    temporalPid: number;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const existing = process.env.LIFEBOAT_TEST_TEMPORAL_ADDRESS;
  if (existing) {
    project.provide('temporalAddress', existing);
    project.provide('temporalUiUrl', process.env.LIFEBOAT_TEST_TEMPORAL_UI ?? '');
    project.provide('temporalDbFile', '');
    project.provide('temporalPid', 0);
    return async () => undefined;
  }
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lifeboat-temporal-'));
  const port = await freePort();
  const uiPort = await freePort();
  const dbFile = path.join(dir, 'temporal.db');
  const server = await startDevServer({ port, uiPort, dbFile, logFile: path.join(dir, 'temporal.log') });
  project.provide('temporalAddress', server.address);
  project.provide('temporalUiUrl', server.uiUrl);
  project.provide('temporalDbFile', dbFile);
  project.provide('temporalPid', server.pid);
  return async () => {
    await stopDevServer(server.pid);
    rmSync(dir, { recursive: true, force: true });
  };
}
