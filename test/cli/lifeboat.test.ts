/** The CLI's answers to bad input: a clear message on stderr and a non-zero exit, nothing changed. */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parse, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestLab, type TestLab } from '../helpers/lab';
import { runCli } from '../helpers/cli';

let lab: TestLab;

beforeAll(async () => {
  lab = await createTestLab('cli');
});

afterAll(async () => {
  await lab?.destroy();
});

const cli = (args: string[], config: string = lab.configFile) => runCli(['--config', config, ...args]);

/** The lab's config with a Temporal address where nothing listens. */
function configWithTemporal(address: string): string {
  const config = parse(readFileSync(lab.configFile, 'utf8')) as { temporal: { address: string } };
  config.temporal.address = address;
  const file = path.join(lab.dir, 'no-temporal.yaml');
  writeFileSync(file, stringify(config));
  return file;
}

describe('lifeboat CLI', () => {
  it('an unknown workflow id is refused with the id and what to check', async () => {
    const r = await cli(['status', 'db-promotion:nope', '--as', 'dave']);
    expect(r.code).toBe(1);
    expect(r.err).toBe(`lifeboat: no run with id 'db-promotion:nope' in namespace '${lab.loaded.config.temporal.namespace}': check the id ('lifeboat status' prints it at start)\n`);
    const approve = await cli(['approve', 'db-promotion:nope', '--gate', 'promote', '--as', 'bob']);
    expect(approve.code).toBe(1);
    expect(approve.err).toContain("no run with id 'db-promotion:nope'");
  });

  it('an unknown runbook, database or person is refused before anything starts', async () => {
    expect((await cli(['start', 'evacuate-moon', '--as', 'alice'])).err).toBe("lifeboat: unknown runbook 'evacuate-moon': known runbooks are db-promotion, regional-evacuation, failback, database-backup, backup-restore-test\n");
    expect((await cli(['start', 'db-promotion', 'database=ledger', '--as', 'alice'])).err).toBe(
      "lifeboat: unknown database 'ledger': configured databases are orders\n",
    );
    const stranger = await cli(['start', 'db-promotion', 'database=orders', '--as', 'mallory']);
    expect(stranger.code).toBe(1);
    expect(stranger.err).toBe(`lifeboat: 'mallory' is not a configured person: add them under people: in ${lab.configFile}\n`);
    const approver = await cli(['start', 'db-promotion', 'database=orders', '--as', 'bob']);
    expect(approver.err).toBe("lifeboat: 'bob' may not start a runbook: needs the commander role (has approver)\n");
  });

  it('a bad config names the file, the path in it and what is wrong', async () => {
    const bad = path.join(lab.dir, 'bad.yaml');
    writeFileSync(bad, 'people:\n  bob: { roles: [janitor] }\ndatabases: {}\nrunbooks: {}\n');
    const r = await cli(['lab', 'status'], bad);
    expect(r.code).toBe(1);
    expect(r.err).toContain(`lifeboat: invalid config ${bad}:`);
    expect(r.err).toContain('people.bob.roles.0:');
    expect(r.err).toContain('runbooks.db-promotion:');
  });

  it('reading a run needs a configured person (any role), like every other command', async () => {
    const saved = process.env.LIFEBOAT_USER;
    delete process.env.LIFEBOAT_USER;
    try {
      const anonymous = await cli(['status', 'db-promotion:orders']);
      expect(anonymous.code).toBe(1);
      expect(anonymous.err).toMatch(/^lifeboat: say who you are: --as NAME or LIFEBOAT_USER \(people in .*: alice, bob, carol, dave, erin\)\n$/);
      const stranger = await cli(['runs', '--as', 'mallory']);
      expect(stranger.err).toBe(`lifeboat: 'mallory' is not a configured person: add them under people: in ${lab.configFile}\n`);
      const viewer = await cli(['runs', '--as', 'dave', '--json']);
      expect(viewer.code).toBe(0);
      expect(JSON.parse(viewer.out)).toEqual([]);
    } finally {
      if (saved !== undefined) process.env.LIFEBOAT_USER = saved;
    }
  });

  it('audit: a tier-1 finding exits 1 with the table; --json is machine-readable; a bad --as-of is refused', async () => {
    // A fresh lab: the database was never drilled and never backed up.
    const table = await cli(['audit', '--as', 'dave']);
    expect(table.code).toBe(1);
    expect(table.out).toMatch(/orders/);
    expect(table.out).toMatch(/TEST_OVERDUE/);
    const json = await cli(['audit', '--json', '--as', 'dave']);
    expect(json.code).toBe(1);
    const report = JSON.parse(json.out) as { tier1Findings: number; findings: Array<{ code: string; subject: string }> };
    expect(report.tier1Findings).toBeGreaterThan(0);
    expect(report.findings).toContainEqual(expect.objectContaining({ code: 'TEST_OVERDUE', subject: 'orders' }));
    const bad = await cli(['audit', '--as-of', 'yesterday', '--as', 'dave']);
    expect(bad).toMatchObject({ code: 1, err: "lifeboat: --as-of must be an ISO 8601 time such as 2026-12-31T23:59:59Z, not 'yesterday'\n" });
  });

  it('start --dry-run: preflight and plan, nothing started; exit 1 when the budgets exceed the RTO target or a check fails', async () => {
    const dry = await cli(['start', 'db-promotion', 'database=orders', 'mode=planned', '--as', 'alice', '--dry-run']);
    expect(dry.err).toBe('');
    expect(dry.code).toBe(0);
    expect(dry.out).toMatch(/^DRY RUN \(nothing started\): promote orders standby \(west\) in planned mode/);
    expect(dry.out).toMatch(/gate promote: an approver decides; escalates after 120s, rejected after 300s\n\s+4\. promote {2}\[POINT OF NO RETURN\]/);
    expect(dry.out).toMatch(/ok {3}orders: replication: target west 127\.0\.0\.1:\d+ in recovery, streaming/);
    expect((await cli(['status', 'db-promotion:orders', '--as', 'dave'])).err).toMatch(/no run|unknown|not found/i);

    const doc = parse(readFileSync(lab.configFile, 'utf8')) as { runbooks: { 'db-promotion': Record<string, unknown> }; databases: { orders: { standby: { port: number } } } };
    doc.runbooks['db-promotion'].steps = Object.fromEntries(['preflight', 'fence-primary', 'catch-up', 'promote', 'verify-write', 'follow-new-primary', 'record-evidence'].map((id) => [id, { budgetSeconds: 200 }]));
    const slow = path.join(lab.dir, 'slow.yaml');
    writeFileSync(slow, stringify(doc));
    const over = await cli(['start', 'db-promotion', 'database=orders', '--as', 'alice', '--dry-run'], slow);
    expect(over.code).toBe(1);
    expect(over.out).toMatch(/RTO target 600s; estimate 1400\.0s \(sum of the per-step budgets/);
    expect(over.out).toMatch(/ESTIMATE EXCEEDS THE RTO TARGET by 800\.0s/);

    doc.databases.orders.standby.port = 1; // nothing listens there
    const broken = path.join(lab.dir, 'broken.yaml');
    writeFileSync(broken, stringify(doc));
    const failed = await cli(['start', 'db-promotion', 'database=orders', '--as', 'alice', '--dry-run'], broken);
    expect(failed.code).toBe(1);
    expect(failed.out).toMatch(/FAIL orders: replication: target west 127\.0\.0\.1:1: standby of orders unreachable/);
  });

  it('missing required options are usage errors (exit 2)', async () => {
    const r = await cli(['approve', 'some-id', '--as', 'bob']);
    expect(r.code).toBe(2);
    expect(r.err).toContain("required option '--gate <gate>' not specified");
    const reject = await cli(['reject', 'some-id', '--gate', 'promote', '--as', 'bob']);
    expect(reject.code).toBe(2);
    expect(reject.err).toContain("required option '--reason <text>' not specified");
  });

  it('Temporal not running: says where it looked and how to start it', async () => {
    const r = await cli(['status', 'x', '--as', 'dave'], configWithTemporal('127.0.0.1:1'));
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^lifeboat: cannot reach Temporal at 127\.0\.0\.1:1 \(.*\): start the lab with 'lifeboat lab up' or set temporal\.address\n$/s);
  });
});
