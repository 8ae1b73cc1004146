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
import { Lab, LAB_ENVIRONMENT, LAB_S3_KEY_ENV, LAB_TWILIO_TOKEN_ENV } from '../../lab/lab';
import { ensureNamespace } from '../../lab/temporal-server';
import { newKeyRing } from '../../lib/codec';
import { freePort } from '../../lib/processes';
import { LAB_RECORDS, labDatabase, labDbPromotionPolicy } from './config';

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
  /** These regions reach every database node of another region through a link (`via`: a port of the lab's link proxy, lab/links.ts). */
  links?: string[];
  /** Further standbys of every database, by region (e.g. `['central']`): each on its own port and slot `lifeboat_<region>`; the primary then gets `lifeboat_<region>` too. */
  standbys?: string[];
  /** With `standbys`: only these databases get them (default: every database). */
  standbysFor?: string[];
  /** Fields merged into a database's entry, by database (e.g. `{ orders: { tier: 2 } }`). */
  databaseFields?: Record<string, Record<string, unknown>>;
  /** Replaces parts of runbooks.db-promotion (shallow merge). */
  dbPromotion?: Record<string, unknown>;
  /** The two-region lab's shared parts too: Route 53 (moto), SMTP (Mailpit), the Twilio stand-in, regional services, and the evacuation runbook. */
  regions?: boolean;
  /** Replaces parts of runbooks.regional-evacuation (shallow merge). */
  evacuation?: Record<string, unknown>;
  /** A Temporal server of the file's own (e.g. one the test restarts), instead of the run's shared one. */
  temporalAddress?: string;
  /** Encrypt payloads with a fresh key ring written to the lab dir. */
  encryption?: boolean;
  /** Databases name this environment variable as their password source (passwordEnv). */
  passwordEnv?: string;
  /** Backups: an S3 server (versitygw) with two regional buckets, a scratch server, and `backup:` on every database. */
  backups?: boolean;
  /** With backups: the evidence ledger too (lifeboat-ledger, created with Object Lock, 1 day retention). */
  ledger?: boolean;
  /** Top-level sections that replace the generated ones (e.g. schedules, audit, people). */
  extra?: Record<string, unknown>;
}

export const TEST_PEOPLE = {
  alice: { roles: ['commander'] },
  bob: { roles: ['approver'] },
  carol: { roles: ['commander', 'approver'], phone: '+15550100003' },
  dave: { roles: ['viewer'] },
  erin: { roles: ['admin'] },
};

/**
 * `extra` for a lab watched by sentinels from three regions (central a witness): fast rounds (1 s, a 4 s
 * threshold, a 0.8 s probe deadline), no minimum interval, the given policy per tier, and the sentinel's identity.
 */
export function sentinelExtra(databases: string[], tiers: Record<string, unknown>, timing = { interval: 1, threshold: 4 }): Record<string, unknown> {
  return {
    people: { ...TEST_PEOPLE, sentinel: { roles: ['commander'] } },
    sentinels: {
      identity: 'sentinel',
      regions: ['east', 'west', 'central'],
      healthCheckIntervalSeconds: timing.interval,
      failoverThresholdSeconds: timing.threshold,
      probeTimeoutSeconds: 0.8,
      minIntervalMinutes: 0,
      tiers,
      databases,
    },
  };
}

/** The config object a test lab writes; exported so other tests can vary it. */
export async function testConfig(name: string, dir: string, options: TestLabOptions = {}): Promise<Record<string, unknown>> {
  const databases: Record<string, unknown> = {};
  for (const db of options.databases ?? ['orders']) {
    databases[db] = {
      ...labDatabase(db, { primary: 'east', standby: 'west' }, { primary: await freePort(), standby: await freePort() }),
      ...(options.passwordEnv ? { passwordEnv: options.passwordEnv } : {}),
      ...options.databaseFields?.[db],
    };
    const spec = databases[db] as Record<string, unknown> & { primary: Record<string, unknown> };
    if (options.standbys?.length && (options.standbysFor ?? [db]).includes(db)) {
      // Several standbys: every node streams through its own slot (the primary too, once failed back).
      spec.primary.slot = `lifeboat_${String(spec.primary.region)}`;
      spec.standbys = await Promise.all(options.standbys.map(async (region) => ({ region, host: '127.0.0.1', port: await freePort(), slot: `lifeboat_${region}` })));
    }
    for (const entry of [spec.primary, spec.standby, ...((spec.standbys ?? []) as unknown[])] as Array<Record<string, unknown>>) {
      const via: Record<string, { host: string; port: number }> = {};
      for (const from of options.links ?? []) if (from !== entry.region) via[from] = { host: '127.0.0.1', port: await freePort() };
      if (Object.keys(via).length > 0) entry.via = via;
    }
  }
  const config: Record<string, unknown> = {
    temporal: {
      address: options.temporalAddress ?? inject('temporalAddress'),
      // A namespace per test file: business-key workflow ids (db-promotion:orders) never collide across files.
      namespace: `lifeboat-test-${name}`,
      taskQueue: `lifeboat-test-${name}-${process.pid}-${Date.now().toString(36)}`,
      uiUrl: inject('temporalUiUrl') || 'http://127.0.0.1:8233',
    },
    lab: { stateDir: './state', temporal: { port: 7233, uiPort: 8233 }, inbox: { port: await freePort() } },
    notifications: { journal: LAB_RECORDS.journal },
    evidence: { mirrorDir: LAB_RECORDS.mirrorDir },
    people: TEST_PEOPLE,
    databases,
    runbooks: {
      'db-promotion': { ...labDbPromotionPolicy(), ...options.dbPromotion },
    },
  };
  if (options.backups) {
    for (const db of Object.values(databases) as Array<Record<string, unknown>>) {
      db.backup = { category: 'transactional', sampleQueries: [{ name: 'seeded rows', sql: "SELECT id FROM lab_records WHERE payload LIKE 'seed %'", minRows: 1 }] };
    }
    config.backups = {
      storage: {
        endpoint: `http://127.0.0.1:${await freePort()}`,
        accessKeyIdEnv: LAB_S3_KEY_ENV.accessKeyId,
        secretAccessKeyEnv: LAB_S3_KEY_ENV.secretAccessKey,
        buckets: { east: 'backups-east', west: 'backups-west' },
        partSizeMiB: 5,
      },
      scratch: { host: '127.0.0.1', port: await freePort() },
      keepVerified: 2,
      categories: { transactional: { rpoSeconds: 86400, restoreTargetSeconds: 300 } },
    };
    config.evidence = { bucket: 'lifeboat-evidence', mirrorDir: LAB_RECORDS.mirrorDir, ...(options.ledger ? { ledger: { bucket: 'lifeboat-ledger', retentionDays: 1 } } : {}) };
  }
  if (options.encryption) {
    writeFileSync(path.join(dir, 'keys.json'), JSON.stringify(newKeyRing('test-k1')));
    (config.temporal as Record<string, unknown>).encryption = { keyFile: './keys.json' };
  }
  if (options.regions) {
    config.notifications = {
      journal: LAB_RECORDS.journal,
      email: { smtp: { host: '127.0.0.1', port: await freePort() }, from: 'lifeboat@lab.local', incidentChannel: ['incidents@lab.local'] },
      twilio: { accountSid: 'AC00000000000000000000000000000001', authTokenEnv: LAB_TWILIO_TOKEN_ENV, from: '+15550100000', apiBaseUrl: `http://127.0.0.1:${await freePort()}` },
      onCall: ['carol'],
      statusEveryMinutes: 0,
    };
    config.dns = {
      endpoint: `http://127.0.0.1:${await freePort()}`,
      zone: 'lifeboat.lab',
      app: { record: 'app.lifeboat.lab', ttl: 30, targets: { east: 'east.app.lifeboat.lab', west: 'west.app.lifeboat.lab', maintenance: 'maintenance.lifeboat.lab' } },
      syncPollMs: 100,
      syncTimeoutSeconds: 30,
    };
    config.services = { east: { url: `http://127.0.0.1:${await freePort()}` }, west: { url: `http://127.0.0.1:${await freePort()}` } };
    (config.runbooks as Record<string, unknown>)['regional-evacuation'] = {
      rto: { budgetSeconds: 900, onBreach: 'continue' },
      gates: { 'drain-traffic': { escalateAfterSeconds: 120, timeoutSeconds: 300 }, 'promote-databases': { escalateAfterSeconds: 120, timeoutSeconds: 300 } },
      onPromotionFailure: 'abort',
      canary: { weights: [10, 50, 100], holdSeconds: 1, checkEverySeconds: 1 },
      compensationAttempts: 3,
      ...options.evacuation,
    };
    (config.runbooks as Record<string, unknown>).failback = {
      rto: { budgetSeconds: 900, onBreach: 'continue' },
      gates: { switchover: { escalateAfterSeconds: 120, timeoutSeconds: 300 } },
      canary: { weights: [50, 100], holdSeconds: 1, checkEverySeconds: 1 },
      catchUpTimeoutSeconds: 120,
      compensationAttempts: 3,
    };
  }
  Object.assign(config, options.extra);
  return config;
}

export async function createTestLab(name: string, options: TestLabOptions = {}): Promise<TestLab> {
  const dir = mkdtempSync(path.join(os.tmpdir(), `lifeboat-${name}-`));
  // The clusters run as the postgres user, which must traverse this directory.
  chmodSync(dir, 0o755);
  const configFile = path.join(dir, 'lab.yaml');
  writeFileSync(configFile, stringify(await testConfig(name, dir, options)));
  const loaded = loadConfig(configFile);
  Object.assign(process.env, LAB_ENVIRONMENT);
  await ensureNamespace(loaded.config.temporal.address, loaded.config.temporal.namespace);
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
