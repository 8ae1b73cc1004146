/**
 * A private lab per test file: real PostgreSQL primary and standby clusters on
 * free loopback ports under a temp dir, a config file written to disk (so the
 * CLI and child-process workers read the same thing), and a task queue of its own.
 */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { inject } from 'vitest';
import { stringify } from 'yaml';
import { loadConfig, type LoadedConfig } from '../../config/load';
import { Lab } from '../../lab/lab';
import { freePort } from '../../lab/processes';

export interface TestLab {
  dir: string;
  configFile: string;
  loaded: LoadedConfig;
  lab: Lab;
  taskQueue: string;
  /** Stops the clusters and removes the temp dir. */
  destroy(): Promise<void>;
}

export interface TestLabOptions {
  databases?: string[];
  /** Replaces parts of runbooks.db-promotion (shallow merge). */
  dbPromotion?: Record<string, unknown>;
}

export const TEST_PEOPLE = {
  alice: { roles: ['commander'] },
  bob: { roles: ['approver'] },
  carol: { roles: ['commander', 'approver'] },
  dave: { roles: ['viewer'] },
  erin: { roles: ['admin'] },
};

/** The config object a test lab writes; exported so other tests can vary it. */
export async function testConfig(name: string, dir: string, options: TestLabOptions = {}): Promise<Record<string, unknown>> {
  const databases: Record<string, unknown> = {};
  for (const db of options.databases ?? ['orders']) {
    databases[db] = {
      provider: 'postgres',
      database: db,
      primary: { region: 'east', host: '127.0.0.1', port: await freePort() },
      standby: { region: 'west', host: '127.0.0.1', port: await freePort() },
      rpoTargetSeconds: 5,
    };
  }
  return {
    temporal: {
      address: inject('temporalAddress'),
      namespace: 'default',
      taskQueue: `lifeboat-test-${name}-${process.pid}-${Date.now().toString(36)}`,
      uiUrl: inject('temporalUiUrl') || 'http://127.0.0.1:8233',
    },
    lab: { stateDir: './state', temporal: { port: 7233, uiPort: 8233 } },
    notifications: { journal: './state/notifications.jsonl' },
    people: TEST_PEOPLE,
    databases,
    runbooks: {
      'db-promotion': {
        rto: { budgetSeconds: 600, onBreach: 'continue' },
        gates: { promote: { escalateAfterSeconds: 120, timeoutSeconds: 300 } },
        catchUpTimeoutSeconds: 30,
        compensationAttempts: 3,
        ...options.dbPromotion,
      },
    },
  };
}

export async function createTestLab(name: string, options: TestLabOptions = {}): Promise<TestLab> {
  const dir = mkdtempSync(path.join(os.tmpdir(), `lifeboat-${name}-`));
  // The clusters run as the postgres user, which must traverse this directory.
  chmodSync(dir, 0o755);
  const configFile = path.join(dir, 'lab.yaml');
  writeFileSync(configFile, stringify(await testConfig(name, dir, options)));
  const loaded = loadConfig(configFile);
  const lab = new Lab(loaded);
  await lab.up({ temporal: false, seedRows: 50 });
  return {
    dir,
    configFile,
    loaded,
    lab,
    taskQueue: loaded.config.temporal.taskQueue,
    async destroy() {
      await lab.down();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
