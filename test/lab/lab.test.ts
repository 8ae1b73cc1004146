/**
 * The lab's lifecycle against real PostgreSQL processes: up is idempotent, status is live, reset and down do what they say;
 * an encrypted lab creates its key ring once and runs a codec server for its UI's origin only.
 */
import { statSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { defaultPayloadConverter } from '@temporalio/common';
import { parse, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { AesGcmCodec, parseKeyRing } from '../../lib/codec';
import { runCli } from '../helpers/cli';
import { freePort, isAlive, isListening } from '../../lib/processes';
import { clusterPid } from '../../lab/postgres';
import type { LabStatus } from '../../lab/lab';
import { createTestLab, type TestLab } from '../helpers/lab';
import { countRows, inRecovery, sql } from '../helpers/postgres';
import { postgresDatabase } from '../../config/load';

let lab: TestLab;

beforeAll(async () => {
  lab = await createTestLab('lab', { databases: ['orders', 'users'] });
});

afterAll(async () => {
  await lab?.destroy();
});

const cli = (args: string[]) => runCli(['--config', lab.configFile, ...args]);

describe('lab', () => {
  it('status --json reports every database with roles read live from the servers', async () => {
    const { code, out } = await cli(['lab', 'status', '--json']);
    expect(code).toBe(0);
    const status = JSON.parse(out) as LabStatus;
    for (const name of ['orders', 'users']) {
      const spec = postgresDatabase(lab.loaded.config, name);
      expect(status.databases[name]?.primary).toMatchObject({ region: 'east', host: '127.0.0.1', port: spec?.primary.port, inRecovery: false, reachable: true });
      expect(status.databases[name]?.standby).toMatchObject({ region: 'west', port: spec?.standby.port, inRecovery: true, reachable: true });
      expect(status.databases[name]?.others).toEqual([]);
    }
    expect(status.temporal.address).toBe(lab.loaded.config.temporal.address);
    expect(status.temporal.running).toBe(true);
  });

  it('up is idempotent: running clusters are left alone', async () => {
    const { primary, standby } = lab.lab.clusters('orders');
    const before = [clusterPid(primary), clusterPid(standby)];
    await lab.lab.up({ temporal: false });
    expect([clusterPid(primary), clusterPid(standby)]).toEqual(before);
  });

  it('the standby streams: a row written on the primary appears on the standby', async () => {
    const db = postgresDatabase(lab.loaded.config, 'users');
    if (!db) throw new Error('no users database');
    await sql(db.primary, 'users', "INSERT INTO lab_records (payload) VALUES ('streamed')");
    const primaryRows = await countRows(db.primary, 'users');
    await expect.poll(() => countRows(db.standby, 'users'), { timeout: 10_000 }).toBe(primaryRows);
  });

  it('reset brings a promoted database back to east primary / west standby with fresh data', async () => {
    const db = postgresDatabase(lab.loaded.config, 'orders');
    if (!db) throw new Error('no orders database');
    await sql(db.standby, 'postgres', 'SELECT pg_promote(true, 60)');
    expect(await inRecovery(db.standby)).toBe(false);
    const promoted = await lab.lab.status();
    expect(promoted.databases.orders?.standby).toBeUndefined();

    await lab.lab.reset({ seedRows: 7 });
    expect(await inRecovery(db.standby)).toBe(true);
    expect(await countRows(db.primary, 'orders')).toBe(7);
    const status = await lab.lab.status();
    expect(status.databases.orders?.primary?.region).toBe('east');
    expect(status.databases.orders?.standby?.region).toBe('west');
  });

  it('down stops every cluster it started, by pid; up starts them again with their data', async () => {
    const pids = ['orders', 'users'].flatMap((name) => {
      const { primary, standby } = lab.lab.clusters(name);
      return [clusterPid(primary), clusterPid(standby)];
    });
    expect(pids.every((pid) => pid !== undefined && isAlive(pid))).toBe(true);
    const { code } = await cli(['lab', 'down']);
    expect(code).toBe(0);
    expect(pids.filter((pid) => isAlive(pid))).toEqual([]);
    const down = await lab.lab.status();
    expect(down.databases.orders?.others.every((n) => !n.reachable)).toBe(true);

    await lab.lab.up({ temporal: false });
    const db = postgresDatabase(lab.loaded.config, 'orders');
    if (!db) throw new Error('no orders database');
    expect(await countRows(db.primary, 'orders')).toBe(7);
    expect(await inRecovery(db.standby)).toBe(true);
  });
});

describe('an encrypted lab', () => {
  let enc: TestLab;
  let codecPort: number;
  let uiPort: number;

  beforeAll(async () => {
    [codecPort, uiPort] = [await freePort(), await freePort()];
    enc = await createTestLab('lab-codec', {
      extra: {
        temporal: {
          address: inject('temporalAddress'),
          namespace: 'lifeboat-test-lab-codec',
          taskQueue: `lifeboat-test-lab-codec-${process.pid}`,
          encryption: { keyFile: './state/keys.json', codecServer: { port: codecPort, allowUnauthenticated: true } },
        },
        lab: { stateDir: './state', temporal: { port: 7233, uiPort }, inbox: { port: await freePort() } },
      },
    });
  });

  afterAll(async () => {
    await enc?.destroy();
  });

  const keyFile = () => path.join(enc.dir, 'state', 'keys.json');

  it('up creates the key ring under the state directory once, readable by its owner only, and never replaces it', async () => {
    const first = readFileSync(keyFile(), 'utf8');
    expect(statSync(keyFile()).mode & 0o777).toBe(0o600);
    expect(Object.keys(parseKeyRing(first, keyFile()).keys)).toHaveLength(1);
    await enc.lab.up({ temporal: false });
    expect(readFileSync(keyFile(), 'utf8')).toBe(first);
  });

  it("status shows the codec server; it decodes for the lab UI's origin without a token and refuses any other origin", async () => {
    const { code, out } = await runCli(['--config', enc.configFile, 'lab', 'status', '--json']);
    expect(code).toBe(0);
    const status = JSON.parse(out) as LabStatus;
    expect(status.encryption).toMatchObject({ keyFile: keyFile(), codec: { url: `http://127.0.0.1:${codecPort}`, uiOrigin: `http://127.0.0.1:${uiPort}`, running: true, tokenRequired: false } });
    const pid = status.encryption?.codec?.pid;
    expect(pid !== undefined && isAlive(pid)).toBe(true);

    const codec = new AesGcmCodec(parseKeyRing(readFileSync(keyFile(), 'utf8'), keyFile()));
    const [sealed] = await codec.encode([defaultPayloadConverter.toPayload({ comment: 'lag 0, go' })]);
    const body = JSON.stringify({ payloads: [{ metadata: Object.fromEntries(Object.entries(sealed?.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v).toString('base64')])), data: Buffer.from(sealed?.data ?? new Uint8Array()).toString('base64') }] });
    const decode = (origin: string) => fetch(`http://127.0.0.1:${codecPort}/decode`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-namespace': 'lifeboat-test-lab-codec', origin }, body });
    const ui = await decode(`http://127.0.0.1:${uiPort}`);
    expect(ui.status).toBe(200);
    expect(ui.headers.get('access-control-allow-origin')).toBe(`http://127.0.0.1:${uiPort}`);
    const decoded = (await ui.json()) as { payloads: Array<{ data: string }> };
    expect(JSON.parse(Buffer.from(decoded.payloads[0]?.data ?? '', 'base64').toString())).toEqual({ comment: 'lag 0, go' });
    const other = await decode('http://localhost:8080');
    expect(other.status).toBe(403);
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('a config without lab: may not serve without a token', async () => {
    // The same config without its lab: section.
    const { lab: _lab, ...config } = parse(readFileSync(enc.configFile, 'utf8')) as Record<string, unknown>;
    const file = path.join(enc.dir, 'production.yaml');
    writeFileSync(file, stringify(config));
    const { code, err } = await runCli(['--config', file, 'codec-server']);
    expect(code).not.toBe(0);
    expect(err).toContain(`temporal.encryption.codecServer.allowUnauthenticated is for the lab only (a config with lab:), and ${file} has no lab: section`);
  });

  it('down stops the codec server by pid', async () => {
    const pid = (await enc.lab.status()).encryption?.codec?.pid;
    expect(pid).toBeDefined();
    await enc.lab.down();
    expect(isAlive(pid)).toBe(false);
    expect(await isListening('127.0.0.1', codecPort)).toBe(false);
  });
});
