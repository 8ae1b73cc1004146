/** The lab's lifecycle against real PostgreSQL processes: up is idempotent, status is live, reset and down do what they say. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli';
import { isAlive } from '../../lib/processes';
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
