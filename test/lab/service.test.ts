/** The lab's regional HTTP service against a real PostgreSQL primary and hot standby: reads, writes, freeze, re-pointing, health. */
import { Client } from 'pg';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { PostgresDatabaseConfig } from '../../config/schema';
import { freePort } from '../../lib/processes';
import {
  createLabService,
  parseServiceArgs,
  ServiceUsageError,
  type DatabaseRoute,
  type LabRecord,
  type LabService,
  type RecordStats,
  type ServiceHealth,
} from '../../lab/service';
import { createTestLab, type TestLab } from '../helpers/lab';
import { countRows, sql } from '../helpers/postgres';
import { postgresDatabase } from '../../config/load';

let lab: TestLab;
let db: PostgresDatabaseConfig;
let service: LabService;
let base: string;
let logLines: string[];

beforeAll(async () => {
  lab = await createTestLab('svc');
  const orders = postgresDatabase(lab.loaded.config, 'orders');
  if (!orders) throw new Error('the test lab has no orders database');
  db = orders;
});

afterAll(async () => {
  await lab?.destroy();
});

const routeTo = (node: PostgresDatabaseConfig['primary']): DatabaseRoute => ({ host: node.host, port: node.port, database: 'orders', user: 'postgres' });

// A fresh service per test: freeze and routing state never leak between tests.
beforeEach(async () => {
  logLines = [];
  service = createLabService({
    region: 'east',
    databases: { orders: routeTo(db.primary), 'orders-west': routeTo(db.standby) },
    log: (line) => logLines.push(line),
  });
  base = `http://127.0.0.1:${await service.listen(await freePort())}`;
});

afterEach(async () => {
  await service?.close();
});

interface Response<T> {
  status: number;
  body: T;
  headers: Headers;
}

/** One HTTP call; `raw` sends the text as is (for malformed bodies). */
async function call<T = Record<string, unknown>>(method: string, path: string, body?: unknown, raw?: string): Promise<Response<T>> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: body !== undefined || raw !== undefined ? { 'Content-Type': 'application/json' } : undefined,
    body: raw ?? (body === undefined ? undefined : JSON.stringify(body)),
  });
  return { status: res.status, body: (await res.json()) as T, headers: res.headers };
}

const write = (payload: unknown, database = 'orders') => call<LabRecord & { error?: string }>('POST', `/records/${database}`, { payload });
const stats = (database = 'orders') => call<RecordStats>('GET', `/records/${database}/stats`);

describe('lab service', () => {
  it('health reads each endpoint live: the primary writable, the standby in recovery, both reachable', async () => {
    const { status, body } = await call<ServiceHealth>('GET', '/health');
    expect(status).toBe(200);
    expect(body).toEqual({
      region: 'east',
      frozen: false,
      databases: {
        orders: { host: '127.0.0.1', port: db.primary.port, reachable: true, inRecovery: false, readOnly: false },
        'orders-west': { host: '127.0.0.1', port: db.standby.port, reachable: true, inRecovery: true, readOnly: false },
      },
    });
    expect(logLines).toHaveLength(1);
    expect(logLines[0]).toMatch(/ east GET \/health 200 \d+ms$/);
  });

  it('a write is stored on the primary and read back by id', async () => {
    const before = Date.now();
    const written = await write('order #1 for drill');
    expect(written.status).toBe(201);
    expect(written.body).toMatchObject({ payload: 'order #1 for drill', region: 'east' });
    expect(written.body.id).toMatch(/^[1-9][0-9]*$/);
    const writtenAt = Date.parse(written.body.writtenAt);
    expect(writtenAt).toBeGreaterThanOrEqual(before - 5000);
    expect(writtenAt).toBeLessThanOrEqual(Date.now() + 5000);

    // Checked on the server itself, not through the service.
    const [row] = await sql<{ payload: string }>(db.primary, 'orders', 'SELECT payload FROM lab_records WHERE id = $1', [written.body.id]);
    expect(row?.payload).toBe('order #1 for drill');

    const read = await call<LabRecord>('GET', `/records/orders/${written.body.id}`);
    expect(read.status).toBe(200);
    expect(read.body).toEqual(written.body);

    const absent = await call('GET', '/records/orders/999999999');
    expect(absent.status).toBe(404);
    expect(absent.body.error).toMatch(/no record 999999999 in orders/);
    const notAnId = await call('GET', '/records/orders/abc');
    expect(notAnId.status).toBe(400);
    expect(notAnId.body.error).toMatch(/positive integer/);
  });

  it('stats: count and checksum change with a write, and are equal on a primary and its caught-up standby', async () => {
    const first = await stats();
    const again = await stats();
    expect(first.status).toBe(200);
    expect(again.body).toEqual(first.body);
    expect(first.body.count).toBe(await countRows(db.primary, 'orders'));
    expect(first.body.checksum).toMatch(/^[0-9a-f]{32}$/);

    expect((await write('moves the checksum')).status).toBe(201);
    const after = await stats();
    expect(after.body.count).toBe(first.body.count + 1);
    expect(after.body.checksum).not.toBe(first.body.checksum);

    // Two nodes holding the same rows give the same proof: the streamed standby catches up to the primary.
    await expect.poll(async () => (await stats('orders-west')).body, { timeout: 15_000 }).toEqual(after.body);
  });

  it('freeze blocks writes with 503 while reads go on; unfreeze lets writes through again', async () => {
    const existing = await write('before the freeze');
    expect(existing.status).toBe(201);
    const rowsBefore = await countRows(db.primary, 'orders');

    const frozen = await call('POST', '/control/freeze', { frozen: true, reason: 'INC-7 failover drill' });
    expect(frozen.status).toBe(200);
    expect(frozen.body).toMatchObject({ frozen: true, reason: 'INC-7 failover drill' });
    expect(Number.isNaN(Date.parse(String(frozen.body.changedAt)))).toBe(false);

    const refused = await write('during the freeze');
    expect(refused.status).toBe(503);
    expect(refused.body.error).toMatch(/writes are frozen: INC-7 failover drill/);
    expect(await countRows(db.primary, 'orders')).toBe(rowsBefore);

    expect((await call('GET', `/records/orders/${existing.body.id}`)).status).toBe(200);
    expect((await stats()).body.count).toBe(rowsBefore);
    const health = await call<ServiceHealth>('GET', '/health');
    expect(health.status).toBe(200);
    expect(health.body.frozen).toBe(true);

    const thawed = await call('POST', '/control/freeze', { frozen: false });
    expect(thawed.status).toBe(200);
    expect(thawed.body).toMatchObject({ frozen: false, reason: null });
    expect((await write('after the freeze')).status).toBe(201);
    expect(await countRows(db.primary, 'orders')).toBe(rowsBefore + 1);
  });

  it('a freeze answers only after the writes it let through have ended', async () => {
    // A real lock on the primary holds an admitted write in flight.
    const locker = new Client({ host: db.primary.host, port: db.primary.port, user: 'postgres', database: 'orders' });
    await locker.connect();
    try {
      await locker.query('BEGIN');
      await locker.query('LOCK TABLE lab_records IN EXCLUSIVE MODE');
      const order: string[] = [];
      const pending = write('admitted before the freeze').then((r) => {
        order.push('write');
        return r;
      });
      await expect.poll(async () => {
        const [row] = await sql<{ n: string }>(db.primary, 'postgres', "SELECT count(*)::text AS n FROM pg_stat_activity WHERE application_name = 'lifeboat-lab-service' AND wait_event_type = 'Lock'");
        return Number(row?.n);
      }, { timeout: 5000 }).toBe(1);
      const freezing = call('POST', '/control/freeze', { frozen: true }).then((r) => {
        order.push('freeze');
        return r;
      });
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(order).toEqual([]);
      await locker.query('COMMIT');
      const [written, frozen] = await Promise.all([pending, freezing]);
      expect(written.status).toBe(201);
      expect(frozen.status).toBe(200);
      expect(order).toEqual(['write', 'freeze']);
    } finally {
      await locker.end();
    }
  });

  it('re-pointing orders at the standby: writes fail with 502 read-only, reads are served there, health shows the new endpoint', async () => {
    const written = await write('replicated before the re-point');
    expect(written.status).toBe(201);
    await expect.poll(async () => (await call('GET', `/records/orders-west/${written.body.id}`)).status, { timeout: 15_000 }).toBe(200);

    const repointed = await call('PUT', '/control/databases/orders', { host: db.standby.host, port: db.standby.port });
    expect(repointed.status).toBe(200);
    expect(repointed.body).toEqual({ name: 'orders', host: db.standby.host, port: db.standby.port, database: 'orders', user: 'postgres' });
    const routing = await call<{ region: string; databases: Record<string, DatabaseRoute> }>('GET', '/control/databases');
    expect(routing.body.databases.orders).toEqual(routeTo(db.standby));
    expect(service.routes().orders?.port).toBe(db.standby.port);

    const refused = await write('to a standby');
    expect(refused.status).toBe(502);
    expect(refused.body.error).toMatch(/read-only transaction/);
    expect(refused.body.error).toContain(`127.0.0.1:${db.standby.port}`);

    const read = await call<LabRecord>('GET', `/records/orders/${written.body.id}`);
    expect(read.status).toBe(200);
    expect(read.body.payload).toBe('replicated before the re-point');

    const health = await call<ServiceHealth>('GET', '/health');
    expect(health.status).toBe(200);
    expect(health.body.databases.orders).toEqual({ host: '127.0.0.1', port: db.standby.port, reachable: true, inRecovery: true, readOnly: false });
  });

  it('an unreachable database: health 503 naming it, writes 502', async () => {
    const closed = await freePort();
    expect((await call('PUT', '/control/databases/orders', { host: '127.0.0.1', port: closed })).status).toBe(200);

    const health = await call<ServiceHealth>('GET', '/health');
    expect(health.status).toBe(503);
    expect(health.body.databases.orders).toMatchObject({ host: '127.0.0.1', port: closed, reachable: false });
    expect(health.body.databases.orders?.error).toMatch(/ECONNREFUSED/);
    expect(health.body.databases['orders-west']).toMatchObject({ reachable: true, inRecovery: true });

    const refused = await write('into the void');
    expect(refused.status).toBe(502);
    expect(refused.body.error).toMatch(new RegExp(`orders at 127\\.0\\.0\\.1:${closed}: .*ECONNREFUSED`));
    expect((await stats()).status).toBe(502);
  });

  it('refuses bad requests with a status and a message saying what is wrong', async () => {
    const badJson = await call('POST', '/records/orders', undefined, '{"payload": ');
    expect(badJson.status).toBe(400);
    expect(badJson.body.error).toMatch(/not valid JSON/);

    const empty = await call('POST', '/records/orders', undefined, '');
    expect(empty.status).toBe(400);
    expect(empty.body.error).toMatch(/body is empty/);

    const missing = await call('POST', '/records/orders', {});
    expect(missing.status).toBe(400);
    expect(missing.body.error).toMatch(/payload: .*expected string/);

    const tooLong = await write('x'.repeat(1001));
    expect(tooLong.status).toBe(400);
    expect(tooLong.body.error).toMatch(/payload: must be at most 1000 characters/);
    const blank = await write('');
    expect(blank.status).toBe(400);
    expect(blank.body.error).toMatch(/payload: must not be empty/);
    const extra = await call('POST', '/records/orders', { payload: 'ok', id: 5 });
    expect(extra.status).toBe(400);
    expect(extra.body.error).toMatch(/id/);

    const unknownDb = await write('lost', 'invoices');
    expect(unknownDb.status).toBe(404);
    expect(unknownDb.body.error).toMatch(/unknown database 'invoices'.*orders, orders-west/);
    // Names from URLs never reach Object.prototype.
    expect((await call('GET', '/records/constructor/stats')).status).toBe(404);
    expect((await call('PUT', '/control/databases/invoices', { host: '127.0.0.1', port: 5432 })).status).toBe(404);

    const unknownPath = await call('GET', '/nope');
    expect(unknownPath.status).toBe(404);
    expect(unknownPath.body.error).toMatch(/no such path: \/nope/);

    const wrongMethod = await call('DELETE', '/records/orders');
    expect(wrongMethod.status).toBe(405);
    expect(wrongMethod.body.error).toMatch(/DELETE is not allowed on \/records\/orders \(use POST\)/);
    expect(wrongMethod.headers.get('allow')).toBe('POST');
    expect((await call('POST', '/health', {})).status).toBe(405);

    const badFreeze = await call('POST', '/control/freeze', { frozen: 'yes' });
    expect(badFreeze.status).toBe(400);
    expect(badFreeze.body.error).toMatch(/frozen: .*expected boolean/);
    const badPort = await call('PUT', '/control/databases/orders', { host: '127.0.0.1', port: 70000 });
    expect(badPort.status).toBe(400);
    expect(badPort.body.error).toMatch(/port/);
    expect(service.routes().orders).toEqual(routeTo(db.primary));

    // Every request, refused or not, is one log line with its status and reason.
    expect(logLines.some((l) => / POST \/records\/orders 400 \d+ms invalid request body: payload/.test(l))).toBe(true);
  });
});

describe('parseServiceArgs', () => {
  const routes = JSON.stringify({ orders: { host: '127.0.0.1', port: 55432, database: 'orders' } });

  it('reads region, port and routes, defaulting the user to postgres', () => {
    expect(parseServiceArgs(['--region', 'east', '--port', '55580', '--routes', routes])).toEqual({
      region: 'east',
      port: 55580,
      databases: { orders: { host: '127.0.0.1', port: 55432, database: 'orders', user: 'postgres' } },
    });
  });

  it.each([
    [['--port', '55580', '--routes', routes], /missing --region/],
    [['--region', 'east'], /missing --port, --routes/],
    [['--region', 'East', '--port', '1', '--routes', routes], /--region: use lower-case/],
    [['--region', 'east', '--port', '70000', '--routes', routes], /--port must be a TCP port \(1-65535\), got '70000'/],
    [['--region', 'east', '--port', '12ab', '--routes', routes], /--port must be a TCP port/],
    [['--region', 'east', '--port', '1', '--routes', '{orders'], /--routes is not valid JSON/],
    [['--region', 'east', '--port', '1', '--routes', '{}'], /--routes: .*at least one database/],
    [['--region', 'east', '--port', '1', '--routes', '{"orders":{"port":5432,"database":"orders"}}'], /--routes: orders\.host: /],
    [['--region', 'east', '--port', '1', '--routes', routes, '--verbose'], /Unknown option '--verbose'/],
  ])('refuses %j', (argv, message) => {
    expect(() => parseServiceArgs(argv)).toThrow(ServiceUsageError);
    expect(() => parseServiceArgs(argv)).toThrow(message);
  });
});
