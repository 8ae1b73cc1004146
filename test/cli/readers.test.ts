/**
 * The CLI's composition root (cli/readers.ts) needs none of the worker's
 * secrets. On a production config (no lab:) that names a Twilio token, an SMTP
 * login, S3 keys and a database password, none of them set, `start --dry-run`,
 * `evidence verify|export` and `report` work: the evidence bucket is read with
 * the CLI's own S3 key (LIFEBOAT_CLI_S3_*). The lab's S3 server knows only its
 * root key, so here the CLI's key has the same bytes as the worker's; what
 * makes it read-only in production is the policy on it, not tested here.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parse, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, type LoadedConfig } from '../../config/load';
import { LAB_ENVIRONMENT, LAB_S3_KEY_ENV, LAB_TWILIO_TOKEN_ENV } from '../../lab/lab';
import { buildActivityDependencies } from '../../workers/dependencies';
import { CLI_S3_KEY_ENV } from '../../cli/readers';
import { decideGate, startRun } from '../../cli/runs';
import { createTestLab, type TestLab } from '../helpers/lab';
import { runCli } from '../helpers/cli';
import { gateWaiting, startTestTemporal, waitForStatus, type TestTemporal } from '../helpers/temporal';

const SMTP_USER_ENV = 'LIFEBOAT_TEST_SMTP_USER';
const SMTP_PASSWORD_ENV = 'LIFEBOAT_TEST_SMTP_PASSWORD';
const DB_PASSWORD_ENV = 'LIFEBOAT_TEST_ORDERS_PASSWORD';
/** Every secret the worker's root reads for the production config, and the AWS ones the SDK would find. */
const WORKER_SECRETS = [LAB_TWILIO_TOKEN_ENV, LAB_S3_KEY_ENV.accessKeyId, LAB_S3_KEY_ENV.secretAccessKey, SMTP_USER_ENV, SMTP_PASSWORD_ENV, DB_PASSWORD_ENV, 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_PROFILE'];
/** The CLI's own key: in the lab, the one key its S3 server has. */
const CLI_KEY = { [CLI_S3_KEY_ENV.accessKeyId]: LAB_ENVIRONMENT[LAB_S3_KEY_ENV.accessKeyId], [CLI_S3_KEY_ENV.secretAccessKey]: LAB_ENVIRONMENT[LAB_S3_KEY_ENV.secretAccessKey] };
/** No AWS credentials anywhere the SDK's default chain looks. */
const NO_AWS = { AWS_EC2_METADATA_DISABLED: 'true', AWS_SHARED_CREDENTIALS_FILE: '/nonexistent/credentials', AWS_CONFIG_FILE: '/nonexistent/config' };

let lab: TestLab;
let temporal: TestTemporal;
let production: string;
let loaded: LoadedConfig;

/** Runs `fn` with the worker's secrets unset and `set` set, then restores the environment. */
async function withoutWorkerSecrets<T>(set: Record<string, string | undefined>, fn: () => Promise<T>): Promise<T> {
  const names = [...WORKER_SECRETS, ...Object.keys(set), CLI_S3_KEY_ENV.accessKeyId, CLI_S3_KEY_ENV.secretAccessKey, ...Object.keys(NO_AWS)];
  const saved = Object.fromEntries(names.map((n) => [n, process.env[n]]));
  for (const n of names) delete process.env[n];
  Object.assign(process.env, NO_AWS, set);
  try {
    return await fn();
  } finally {
    for (const [n, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[n];
      else process.env[n] = v;
    }
  }
}

const cli = (args: string[], set: Record<string, string | undefined> = CLI_KEY) => withoutWorkerSecrets(set, () => runCli(['--config', production, ...args]));

beforeAll(async () => {
  lab = await createTestLab('cli-readers', { backups: true });
  temporal = await startTestTemporal(lab.loaded);
  // The lab's config made a production one: no lab: section, and every secret the worker needs named.
  const doc = parse(readFileSync(lab.configFile, 'utf8')) as Record<string, Record<string, unknown>> & { databases: Record<string, Record<string, unknown>> };
  delete doc.lab;
  for (const db of Object.values(doc.databases)) db.passwordEnv = DB_PASSWORD_ENV;
  doc.notifications = {
    ...doc.notifications,
    email: { smtp: { host: '127.0.0.1', port: 1, userEnv: SMTP_USER_ENV, passwordEnv: SMTP_PASSWORD_ENV }, from: 'lifeboat@example.com', incidentChannel: ['incidents@example.com'] },
    twilio: { accountSid: 'AC00000000000000000000000000000001', authTokenEnv: LAB_TWILIO_TOKEN_ENV, from: '+15550100000' },
    onCall: ['carol'],
  };
  production = path.join(lab.dir, 'production.yaml');
  writeFileSync(production, stringify(doc));
  loaded = loadConfig(production);
});

afterAll(async () => {
  await temporal?.close();
  await lab?.destroy();
});

describe("the CLI's composition root", () => {
  it('the config is a production one: the worker\'s root refuses to build without each of its secrets', () => {
    expect(loaded.isLab).toBe(false);
    const secrets = [LAB_TWILIO_TOKEN_ENV, LAB_S3_KEY_ENV.accessKeyId, LAB_S3_KEY_ENV.secretAccessKey, SMTP_USER_ENV, SMTP_PASSWORD_ENV, DB_PASSWORD_ENV];
    for (const missing of secrets) {
      const env = Object.fromEntries(secrets.filter((s) => s !== missing).map((s) => [s, 'set']));
      expect(() => buildActivityDependencies(loaded, env), missing).toThrow(`names the environment variable ${missing}, which is not set for the worker`);
    }
  });

  it('start --dry-run: replication read, plan and estimate, with none of the secrets and no S3 key at all', async () => {
    const dry = await cli(['start', 'db-promotion', 'database=orders', 'mode=planned', '--as', 'alice', '--dry-run'], {});
    expect(dry.err).toBe('');
    expect(dry.out).toMatch(/^DRY RUN \(nothing started\): promote orders standby \(west\) in planned mode/);
    expect(dry.out).toMatch(/ok {3}orders: replication: target west 127\.0\.0\.1:\d+ in recovery, streaming/);
    expect(dry.code).toBe(0);
  });

  it('nothing under cli/ but the worker command imports the worker\'s composition root', () => {
    const dir = path.join(__dirname, '../../cli');
    const importers = readdirSync(dir, { recursive: true, encoding: 'utf8' })
      .filter((file) => file.endsWith('.ts') && /from '(\.\.\/)+workers\/dependencies'/.test(readFileSync(path.join(dir, file), 'utf8')));
    expect(importers).toEqual(['commands/worker.ts']);
  });
});

describe('after a run: evidence and reports read from the bucket with the CLI\'s own key', () => {
  let workflowId: string;

  beforeAll(async () => {
    const started = await startRun(temporal.client, lab.loaded, { runbook: 'db-promotion', params: ['database=orders'], as: 'alice', drill: true, id: `cli-readers-${process.pid}` });
    workflowId = started.workflowId;
    const handle = temporal.client.workflow.getHandle(workflowId);
    await waitForStatus(handle, gateWaiting('promote'), 'gate promote');
    await decideGate(temporal.client, lab.loaded, { workflowId, gate: 'promote', as: 'bob', decision: 'approve', comment: 'go' });
    await handle.result();
  });

  it('evidence verify and export read the chain from s3://lifeboat-evidence', async () => {
    const verify = await cli(['evidence', 'verify', workflowId, '--as', 'dave']);
    expect(verify.err).toBe('');
    expect(verify.out).toMatch(new RegExp(`^evidence of ${workflowId} \\(run [\\w-]+\\) in s3://lifeboat-evidence: \\d+ records, chain verifies; head \\w+ matches the run's result`));
    expect(verify.code).toBe(0);
    const bundle = path.join(lab.dir, 'bundle.json');
    const exported = await cli(['evidence', 'export', workflowId, '--out', bundle, '--as', 'dave']);
    expect(exported).toMatchObject({ code: 0, err: '' });
    expect((await cli(['evidence', 'verify', '--bundle', bundle], {})).code).toBe(0);
  });

  it('report: written locally and stored under reports/ with the CLI\'s key; --no-store writes only the file', async () => {
    const out = path.join(lab.dir, 'report.md');
    const report = await cli(['report', workflowId, '--out', out, '--as', 'dave']);
    expect(report).toMatchObject({ code: 0, err: '' });
    expect(report.out).toBe(`report written to ${out} and s3://lifeboat-evidence/reports/${workflowId}.md\n`);
    const local = await cli(['report', workflowId, '--format', 'json', '--out', path.join(lab.dir, 'report.json'), '--no-store', '--as', 'dave'], {});
    expect(local).toMatchObject({ code: 0, err: '', out: `report written to ${path.join(lab.dir, 'report.json')}\n` });
  });

  it('start --dry-run measures the past run\'s steps from its evidence in the bucket', async () => {
    const request = ['start', 'db-promotion', 'database=orders', '--as', 'alice', '--dry-run'];
    await expect.poll(async () => (await cli(request)).out, { timeout: 20_000 }).toMatch(/promote {2}\[POINT OF NO RETURN\] {2}measured median [\d.]+s, worst [\d.]+s \(1 runs\)/);
  });

  it('without the CLI\'s key or any AWS credentials, reading the bucket fails naming the key to set', async () => {
    const r = await cli(['evidence', 'verify', workflowId, '--as', 'dave'], {});
    expect(r.code).toBe(1);
    expect(r.err).toMatch(new RegExp(`^lifeboat: no S3 credentials to read s3://lifeboat-evidence: set ${CLI_S3_KEY_ENV.accessKeyId} and ${CLI_S3_KEY_ENV.secretAccessKey}`));
    expect(r.err).toContain("never uses the worker's backups.storage keys");
  });
});
