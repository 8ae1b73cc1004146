/**
 * The config loader: lab.yaml loads with paths resolved against the file, and a
 * bad config is refused with the file, the path inside it and what is wrong.
 * Each bad config is lab.yaml with exactly one thing changed.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { ConfigError, loadConfig, parseConfig, postgresDatabase } from '../../config/load';

const LAB_FILE = path.join(__dirname, '../../runbooks/lab.yaml');
const LAB_TEXT = readFileSync(LAB_FILE, 'utf8');
const FILE = '/some/file.yaml';

/** lab.yaml as a plain object (yaml's `parse` is untyped), edited by `change`. */
type LabDoc = ReturnType<typeof parse>;
function labWith(change: (doc: LabDoc) => void): string {
  const doc: LabDoc = parse(LAB_TEXT);
  change(doc);
  return stringify(doc);
}

/** lab.yaml's text with one literal edit, for errors only raw YAML can carry. */
function labTextWith(search: string, replacement: string): string {
  expect(LAB_TEXT).toContain(search);
  return LAB_TEXT.replace(search, replacement);
}

/** 1-based line of the first occurrence of `needle` in `text`. */
function lineOf(text: string, needle: string): number {
  const index = text.indexOf(needle);
  expect(index).toBeGreaterThanOrEqual(0);
  return text.slice(0, index).split('\n').length;
}

function refusal(text: string): ConfigError {
  try {
    parseConfig(text, FILE);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('expected the config to be refused');
}

/** Asserts the exact problems, and that the message names the file and lists each of them. */
function expectRefused(text: string, problems: string[]): void {
  const err = refusal(text);
  expect(err.name).toBe('ConfigError');
  expect(err.file).toBe(FILE);
  expect(err.problems).toEqual(problems);
  expect(err.message).toBe(`invalid config ${FILE}:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
}

describe('loadConfig', () => {
  it('loads runbooks/lab.yaml and resolves stateDir and the journal against the file', () => {
    const loaded = loadConfig(LAB_FILE);
    const repo = path.resolve(__dirname, '../..');
    expect(loaded.file).toBe(path.join(repo, 'runbooks/lab.yaml'));
    expect(loaded.stateDir).toBe(path.join(repo, '.lifeboat/lab'));
    expect(loaded.journalPath).toBe(path.join(repo, '.lifeboat/lab/notifications.jsonl'));
  });

  it('returns the validated config with its defaults filled in', () => {
    const { config } = loadConfig(LAB_FILE);
    expect(Object.keys(config.people)).toEqual(['alice', 'bob', 'carol', 'dave', 'erin', 'scheduler', 'sentinel']);
    expect(config.people.carol?.roles).toEqual(['commander', 'approver']);
    const orders = postgresDatabase(config, 'orders');
    expect(orders?.primary).toEqual({ region: 'east', host: '127.0.0.1', port: 55432, slot: 'lifeboat_east' });
    expect(orders?.standby).toEqual({ region: 'west', host: '127.0.0.1', port: 55433 });
    expect(orders?.standbys).toEqual([{ region: 'central', host: '127.0.0.1', port: 55439, slot: 'lifeboat_central' }]);
    expect(postgresDatabase(config, 'users').standbys).toEqual([]); // not in lab.yaml: the default
    expect(orders?.slot).toBe('lifeboat_standby'); // not in lab.yaml: the default
    expect(config.runbooks['db-promotion'].gates.promote).toEqual({ escalateAfterSeconds: 300, timeoutSeconds: 1800, twoPerson: false });
    expect(config.lab.temporal).toEqual({ port: 7233, uiPort: 8233 });
  });

  it('resolves relative paths against whichever file the text came from', () => {
    const loaded = parseConfig(LAB_TEXT, '/etc/lifeboat/prod.yaml');
    expect(loaded.file).toBe('/etc/lifeboat/prod.yaml');
    expect(loaded.stateDir).toBe('/etc/.lifeboat/lab');
    expect(loaded.journalPath).toBe('/etc/.lifeboat/lab/notifications.jsonl');
  });

  it('keeps an absolute stateDir as it is', () => {
    const loaded = parseConfig(labWith((doc) => { doc.lab.stateDir = '/var/lib/lifeboat'; }), FILE);
    expect(loaded.stateDir).toBe('/var/lib/lifeboat');
  });

  it('refuses a file it cannot read, naming it', () => {
    const missing = path.join(__dirname, 'no-such-config.yaml');
    let err: unknown;
    try {
      loadConfig(missing);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).file).toBe(missing);
    expect((err as ConfigError).problems).toEqual([expect.stringMatching(/^cannot read the file: ENOENT/)]);
    expect((err as ConfigError).message).toContain(`invalid config ${missing}:`);
  });
});

describe('parseConfig refuses a bad config', () => {
  it('accepts lab.yaml round-tripped through the yaml package (the base of every case below)', () => {
    expect(parseConfig(labWith(() => undefined), FILE).config.databases.orders?.rpoTargetSeconds).toBe(5);
  });

  it('a YAML syntax error, with its line', () => {
    const text = labTextWith('rto: { budgetSeconds: 900, onBreach: continue }', 'rto: { budgetSeconds: 900, onBreach: continue');
    const err = refusal(text);
    expect(err.file).toBe(FILE);
    expect(err.problems).toHaveLength(1);
    expect(err.problems[0]).toMatch(/^YAML: .*Flow map.* at line \d+, column \d+/);
    expect(err.message).toContain(`invalid config ${FILE}:\n  - YAML: `);
  });

  it('a duplicated key, with the line and column of the duplicate', () => {
    const text = labTextWith('  dave:  {', '  bob:   { roles: [admin] }\n  dave:  {');
    const err = refusal(text);
    expect(err.file).toBe(FILE);
    expect(err.problems).toEqual([
      expect.stringMatching(new RegExp(`^YAML: Map keys must be unique at line ${lineOf(text, '  bob:   { roles: [admin] }')}, column 3\\b`)),
    ]);
    expect(err.message).toContain(`invalid config ${FILE}:`);
  });

  it('a negative RTO budget', () => {
    expectRefused(labWith((doc) => { doc.runbooks['db-promotion'].rto.budgetSeconds = -5; }), [
      'runbooks.db-promotion.rto.budgetSeconds: must be a positive number of seconds',
    ]);
  });

  it('backups, schedules and Cloud SQL: each inconsistency names its path', () => {
    expectRefused(labWith((doc) => { doc.databases.orders.backup.category = 'archival'; }), [
      "databases.orders.backup.category: 'archival' is not under backups.categories (transactional, financial)",
    ]);
    expectRefused(labWith((doc) => { doc.schedules.initiator = 'erin'; }), ["schedules.initiator: 'erin' needs the commander role: scheduled runs start as them"]);
    expectRefused(labWith((doc) => { doc.schedules.timeZone = 'Mars/Olympus'; }), ['schedules.timeZone: an IANA time zone such as UTC or Europe/Berlin']);
    expectRefused(labWith((doc) => { doc.backups.storage.buckets = { east: 'backups-east' }; }), ['backups.storage.buckets: give a bucket in at least two regions (two locations)']);
    expectRefused(labWith((doc) => { doc.databases.orders.backup.sampleQueries = [{ name: 'wipe', sql: 'DELETE FROM lab_records' }]; }), [
      'databases.orders.backup.sampleQueries.0.sql: a sample query must be a read-only SELECT (or WITH ... SELECT)',
    ]);
    expectRefused(labWith((doc) => {
      doc.databases.ledger = { provider: 'cloudsql', project: 'acme-prod-db', primary: { instance: 'ledger', region: 'east' }, replica: { instance: 'ledger-dr', region: 'west' }, stagingInstance: 'ledger', auth: 'none', rpoTargetSeconds: 60 };
    }), [
      "databases.ledger.auth: auth: none is only for a local stand-in: give apiEndpoint, or use auth: google",
      'databases.ledger.stagingInstance: a restore overwrites the staging instance: it must be neither the primary nor the replica',
    ]);
  });

  it('several standbys: one node per region, its own server and its own slot; residency names regions with a node', () => {
    const central = { region: 'central', host: '127.0.0.1', port: 55441, slot: 'lifeboat_central' };
    const ok = parseConfig(labWith((doc) => { doc.databases.users.primary.slot = 'lifeboat_east'; doc.databases.users.standbys = [central]; doc.databases.users.residency = { deny: ['central'] }; }), FILE);
    expect(postgresDatabase(ok.config, 'users').standbys).toEqual([central]);
    expectRefused(labWith((doc) => { doc.databases.users.primary.slot = 'lifeboat_east'; doc.databases.users.standbys = [{ ...central, region: 'west' }]; }), [
      "databases.users.standbys.0.region: region west already has users's node standby: one node of a database per region",
    ]);
    expectRefused(labWith((doc) => { doc.databases.users.primary.slot = 'lifeboat_east'; doc.databases.users.standbys = [{ ...central, port: 55435 }]; }), [
      "databases.users.standbys.0.port: 127.0.0.1:55435 is already users's node standby: every node is its own server",
    ]);
    // Another database's server is refused as before (pg_promote promotes the whole server).
    expect(refusal(labWith((doc) => { doc.databases.users.primary.slot = 'lifeboat_east'; doc.databases.users.standbys = [{ ...central, port: 55432 }]; })).problems).toEqual([
      'databases.users.standbys.0: 127.0.0.1:55432 is the same PostgreSQL server as databases.orders.primary: pg_promote promotes a whole server, so both would be promoted together; give each database entry its own server (one entry per server)',
    ]);
    // Two standbys of one primary cannot share a slot; the primary, once failed back, streams through its own.
    expectRefused(labWith((doc) => { doc.databases.users.standbys = [central]; }), [
      "databases.users.standby.slot: slot lifeboat_standby is already the slot of users's node primary: give each node its own slot (a node's slot:)",
    ]);
    expectRefused(labWith((doc) => { doc.databases.users.primary.slot = 'lifeboat_east'; doc.databases.users.standbys = [central]; doc.databases.users.residency = { allow: ['south'] }; }), [
      "databases.users.residency.allow.0: no node of users is in region 'south' (its nodes are in east, west, central)",
    ]);
  });

  it('an unknown role', () => {
    expectRefused(labWith((doc) => { doc.people.bob.roles = ['approver', 'boss']; }), [
      'people.bob.roles.1: Invalid option: expected one of "commander"|"approver"|"viewer"|"admin"',
    ]);
  });

  it('an unknown top-level key', () => {
    expectRefused(labWith((doc) => { doc.runbook = doc.runbooks; }), ['(top level): Unrecognized key: "runbook"']);
  });

  it('an unknown key in a nested object', () => {
    expectRefused(labWith((doc) => { doc.databases.orders.primary.hostname = 'db1'; }), [
      'databases.orders.primary: Unrecognized key: "hostname"',
    ]);
  });

  it('a standby in the same region as its primary', () => {
    expectRefused(labWith((doc) => { doc.databases.orders.standby.region = 'east'; }), [
      'databases.orders.standby.region: the standby must be in another region than the primary',
    ]);
  });

  it('a standby on the same host and port as its primary', () => {
    expectRefused(labWith((doc) => { doc.databases.orders.standby.port = 55432; }), [
      'databases.orders.standby.port: primary and standby must be different servers',
    ]);
  });

  it('no person with the approver role', () => {
    expectRefused(labWith((doc) => {
      doc.people.bob.roles = ['viewer'];
      doc.people.carol.roles = ['commander'];
    }), ['people: no person has the approver role: no gate could ever be approved']);
  });

  it('escalateAfterSeconds greater than timeoutSeconds', () => {
    expectRefused(labWith((doc) => { doc.runbooks['db-promotion'].gates.promote.escalateAfterSeconds = 1801; }), [
      'runbooks.db-promotion.gates.promote: escalateAfterSeconds must not exceed timeoutSeconds',
    ]);
  });

  it('accepts escalateAfterSeconds equal to timeoutSeconds', () => {
    const loaded = parseConfig(labWith((doc) => { doc.runbooks['db-promotion'].gates.promote.escalateAfterSeconds = 1800; }), FILE);
    expect(loaded.config.runbooks['db-promotion'].gates.promote.escalateAfterSeconds).toBe(1800);
  });

  it('an unknown step id under runbooks.db-promotion.steps', () => {
    expectRefused(labWith((doc) => { doc.runbooks['db-promotion'].steps['fence-standby'] = { budgetSeconds: 30 }; }), [
      'runbooks.db-promotion.steps: Unrecognized key: "fence-standby"',
    ]);
  });

  it('no notification journal or evidence mirror: the schema has no lab path to fall back on', () => {
    expectRefused(labWith((doc) => { delete doc.notifications.journal; }), [
      'notifications.journal: give notifications.journal: where the record of every notification attempt is written (JSON lines, relative to this file; the lab uses ../.lifeboat/lab/notifications.jsonl)',
    ]);
    expectRefused(labWith((doc) => { delete doc.notifications; }), [
      'notifications: give notifications: with at least journal: (where every notification attempt is recorded, relative to this file)',
    ]);
    expectRefused(labWith((doc) => { delete doc.evidence; }), [
      "evidence: give evidence: with at least mirrorDir: (the local directory that mirrors every run's evidence chain, relative to this file)",
    ]);
  });

  it('missing databases', () => {
    expectRefused(labWith((doc) => { delete doc.databases; }), ['databases: Invalid input: expected record, received undefined']);
  });

  it('a port out of range', () => {
    expectRefused(labWith((doc) => { doc.databases.orders.primary.port = 65536; }), [
      'databases.orders.primary.port: Too big: expected number to be <=65535',
    ]);
  });

  it('a port that is not an integer', () => {
    expectRefused(labWith((doc) => { doc.lab.temporal.uiPort = 8233.5; }), [
      'lab.temporal.uiPort: Invalid input: expected int, received number',
    ]);
  });

  it('a duration given as a string', () => {
    expectRefused(labWith((doc) => { doc.runbooks['db-promotion'].rto.budgetSeconds = '900'; }), [
      'runbooks.db-promotion.rto.budgetSeconds: Invalid input: expected number, received string',
    ]);
  });

  it('a negative RPO target (0 is allowed)', () => {
    expectRefused(labWith((doc) => { doc.databases.orders.rpoTargetSeconds = -1; }), [
      'databases.orders.rpoTargetSeconds: must be 0 or a positive number of seconds',
    ]);
    expect(parseConfig(labWith((doc) => { doc.databases.orders.rpoTargetSeconds = 0; }), FILE).config.databases.orders?.rpoTargetSeconds).toBe(0);
  });

  // Regression: a union's bare "Invalid input" did not say what was wrong.
  it('an RPO target given as a string, saying what is wrong', () => {
    const err = refusal(labWith((doc) => { doc.databases.orders.rpoTargetSeconds = '5'; }));
    expect(err.problems).toEqual([expect.stringMatching(/^databases\.orders\.rpoTargetSeconds: .*expected number, received string/)]);
  });

  it('refuses two database entries on one PostgreSQL server: pg_promote would promote both', () => {
    expectRefused(labWith((doc) => { doc.databases.users.primary.port = doc.databases.orders.primary.port; }), [
      'databases.users.primary: 127.0.0.1:55432 is the same PostgreSQL server as databases.orders.primary: pg_promote promotes a whole server, so both would be promoted together; give each database entry its own server (one entry per server)',
    ]);
  });

  // Regression: record keys reported zod's "Invalid key in record", hiding the schema's message for names.
  it('a person name that is not a valid name, saying what is wrong', () => {
    const err = refusal(labWith((doc) => {
      doc.people.Bob = doc.people.bob;
      delete doc.people.bob;
    }));
    expect(err.problems).toEqual(['people.Bob: use lower-case letters, digits, "-" or "_", starting with a letter']);
  });

  it('several problems at once, each with its own path', () => {
    expectRefused(labWith((doc) => {
      doc.runbooks['db-promotion'].rto.budgetSeconds = 0;
      doc.runbooks['db-promotion'].compensationAttempts = 0;
    }), [
      'runbooks.db-promotion.rto.budgetSeconds: must be a positive number of seconds',
      'runbooks.db-promotion.compensationAttempts: Too small: expected number to be >=1',
    ]);
  });

  it('an empty file', () => {
    expectRefused('', ['(top level): Invalid input: expected object, received null']);
  });
});
