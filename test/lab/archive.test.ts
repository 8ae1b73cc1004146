/**
 * Continuous WAL archiving and point-in-time recovery with the real parts: one
 * PostgreSQL 15 cluster archiving through pgBackRest into an encrypted
 * repository on versitygw, served over https with the lab's own CA.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, chmodSync, statSync } from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPgBackRestActivities, NoArchivedWalError, type PgBackRestActivities } from '../../activities/pgbackrest';
import { archiveCommand, pgBackRestEnv, PgBackRestConfigSchema, readPgBackRestSecrets } from '../../activities/pgbackrest-config';
import { startVersityGw } from '../../lab/emulators';
import { initPrimary, seedPrimary, startCluster, stopCluster, withClient, type ClusterSpec } from '../../lab/postgres';
import { ensureLabCertificates } from '../../lab/tls';
import { freePort, isAlive, sleep, stopPid, waitFor } from '../../lib/processes';

const DATABASE = 'ledger';
const BUCKET = 'lifeboat-pitr';
/** The archive is overdue past this age (seconds); small, so the test can wait it out. */
const OVERDUE_SECONDS = 4;
const S3_CREDENTIALS = { accessKeyId: 'lifeboat-lab', secretAccessKey: 'lifeboat-lab-secret' };

let dir: string;
let s3Dirs: { data: string; versions: string };
let s3Pid: number | undefined;
let startS3: () => Promise<number>;
let primary: ClusterSpec;
let restored: ClusterSpec | undefined;
let backrest: PgBackRestActivities;
let serverEnv: Record<string, string>;

const sql = async <T extends Record<string, unknown>>(spec: Pick<ClusterSpec, 'host' | 'port'>, text: string, values: unknown[] = []): Promise<T[]> =>
  withClient(spec, DATABASE, async (c) => (await c.query<T>(text, values)).rows);

/** The WAL segment now being written, then switched, so the archiver ships it. */
async function switchWal(): Promise<string> {
  const [row] = await sql<{ segment: string }>(primary, 'SELECT pg_walfile_name(pg_current_wal_lsn()) AS segment');
  await sql(primary, 'SELECT pg_switch_wal()');
  if (!row) throw new Error('no current WAL segment');
  return row.segment;
}

/** Waits until the repository's newest archived segment is `segment` (or later). */
const archived = (segment: string) =>
  waitFor(`WAL segment ${segment} in the repository`, async () => {
    const newest = await backrest.newestArchivedWal();
    return newest.segment >= segment ? newest : undefined;
  }, 60_000, 200);

function filesUnder(root: string): string[] {
  if (!existsSync(root)) return [];
  return readdirSync(root, { recursive: true, encoding: 'utf8' })
    .map((f) => path.join(root, f))
    .filter((f) => statSync(f).isFile());
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'lifeboat-archive-'));
  // The cluster and pgBackRest run as the postgres user, which must traverse this directory.
  chmodSync(dir, 0o755);
  const certs = await ensureLabCertificates(path.join(dir, 'tls'));

  const s3Port = await freePort();
  s3Dirs = { data: path.join(dir, 's3', 'data'), versions: path.join(dir, 's3', 'versions') };
  startS3 = () =>
    startVersityGw('127.0.0.1', s3Port, S3_CREDENTIALS, s3Dirs.data, s3Dirs.versions, path.join(dir, 's3.log'), {
      tls: { certFile: certs.certFile, keyFile: certs.keyFile },
    });
  s3Pid = await startS3();
  const s3 = new S3Client({
    endpoint: `https://localhost:${s3Port}`,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: S3_CREDENTIALS,
    requestHandler: { httpsAgent: new https.Agent({ ca: readFileSync(certs.caFile) }) },
  });
  await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
  s3.destroy();

  const pgDir = path.join(dir, 'pg');
  mkdirSync(pgDir, { mode: 0o755 });
  const port = await freePort();
  const config = PgBackRestConfigSchema.parse({
    stanza: DATABASE,
    configFile: path.join(dir, 'pgbackrest', 'pgbackrest.conf'),
    stateDir: path.join(dir, 'pgbackrest', 'state'),
    pg: { dataDir: path.join(pgDir, 'primary'), port, socketDir: path.join(pgDir, 'socket') },
    // No compression: then only the cipher stands between the repository's bytes and the marker (test c).
    repository: { host: 'localhost', port: s3Port, bucket: BUCKET, caFile: certs.caFile, compressType: 'none', ioTimeoutSeconds: 3 },
    secretsFrom: { cipherPass: 'TEST_PGBACKREST_CIPHER_PASS', s3AccessKeyId: 'TEST_S3_KEY', s3SecretAccessKey: 'TEST_S3_SECRET' },
  });
  const secrets = readPgBackRestSecrets(config, {
    TEST_PGBACKREST_CIPHER_PASS: randomBytes(32).toString('base64'),
    TEST_S3_KEY: S3_CREDENTIALS.accessKeyId,
    TEST_S3_SECRET: S3_CREDENTIALS.secretAccessKey,
  });
  const bin = process.env.LIFEBOAT_PGBACKREST_BIN ?? '/usr/bin/pgbackrest';
  backrest = createPgBackRestActivities({ config, secrets, bin });
  serverEnv = pgBackRestEnv(secrets);

  primary = {
    database: DATABASE,
    host: '127.0.0.1',
    port,
    dataDir: config.pg.dataDir,
    logFile: path.join(pgDir, 'primary.log'),
    archiving: { command: archiveCommand(config, bin), socketDir: config.pg.socketDir },
  };
  await backrest.writeConfig();
  await initPrimary(primary);
  await startCluster(primary, { env: serverEnv });
  await seedPrimary(primary, 20);
});

afterAll(async () => {
  if (restored) await stopCluster(restored);
  if (primary) await stopCluster(primary);
  if (s3Pid) await stopPid(s3Pid);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('continuous archiving and point-in-time recovery with pgBackRest', () => {
  it('creates the stanza, takes a full backup into the encrypted repository, and archives WAL continuously', async () => {
    // Before the stanza exists the archive's age is unknown, never 0.
    await expect(backrest.newestArchivedWal()).rejects.toBeInstanceOf(NoArchivedWalError);
    await backrest.createStanza();
    await backrest.check();
    const full = await backrest.backup({ type: 'full' });
    expect(full).toMatchObject({ type: 'full', label: expect.stringMatching(/^\d{8}-\d{6}F$/) });

    const info = await backrest.info();
    expect(info).toMatchObject({ stanza: DATABASE, status: { code: 0, message: 'ok' }, cipher: 'aes-256-cbc' });
    expect(info.backups.map((b) => b.label)).toEqual([full.label]);

    const before = await backrest.newestArchivedWal();
    // The repository's times are whole seconds: wait past one so a later segment's time can only be later.
    await sleep(1100);
    await sql(primary, "INSERT INTO lab_records (payload) VALUES ('after the full backup')");
    const segment = await switchWal();
    expect(segment > before.segment).toBe(true);
    const after = await archived(segment);
    expect(after.segment).toBe(segment);
    expect(after.archivedAt.getTime()).toBeGreaterThan(before.archivedAt.getTime());
    expect(after.ageSeconds).toBeLessThan(OVERDUE_SECONDS);
  });

  it('restores to a time between two marker rows: the one committed before it is there, the one after is not', async () => {
    const diff = await backrest.backup({ type: 'diff' });
    expect(diff.type).toBe('diff');

    const markerA = `A-${randomUUID()}`;
    const markerB = `B-${randomUUID()}`;
    await sql(primary, 'INSERT INTO lab_records (payload) VALUES ($1)', [markerA]);
    // The database's clock, in a transaction begun after A's commit: A is at or before T.
    const [row] = await sql<{ t: string }>(primary, `SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS t`);
    const target = row?.t ?? '';
    await sleep(20);
    await sql(primary, 'INSERT INTO lab_records (payload) VALUES ($1)', [markerB]);
    // Recovery to T needs WAL past T in the archive.
    await archived(await switchWal());

    restored = { ...primary, port: await freePort(), dataDir: path.join(dir, 'pg', 'restored'), logFile: path.join(dir, 'pg', 'restored.log'), archiving: undefined };
    await backrest.restore({ dataDir: restored.dataDir, target: { type: 'time', time: target }, archiveMode: 'off' });
    // The restored copy carries the primary's settings: give it its own port and no socket.
    appendFileSync(path.join(restored.dataDir, 'postgresql.conf'), `\nport = ${restored.port}\nunix_socket_directories = ''\n`);
    await startCluster(restored, { env: serverEnv });
    const copy = restored;
    await waitFor('the restored copy to reach its target and promote', async () => {
      const [r] = await sql<{ recovering: boolean }>(copy, 'SELECT pg_is_in_recovery() AS recovering');
      return r?.recovering === false ? true : undefined;
    }, 120_000);

    const found = await sql<{ payload: string }>(restored, 'SELECT payload FROM lab_records WHERE payload = ANY($1) ORDER BY payload', [[markerA, markerB]]);
    expect(found.map((r) => r.payload)).toEqual([markerA]);
    // The primary has both: B was committed, just after the target.
    expect((await sql(primary, 'SELECT 1 FROM lab_records WHERE payload = ANY($1)', [[markerA, markerB]])).length).toBe(2);
    const [settings] = await sql<{ archive_mode: string }>(restored, "SELECT current_setting('archive_mode') AS archive_mode");
    expect(settings?.archive_mode).toBe('off');
    await stopCluster(restored);
  });

  it('keeps the repository encrypted: a marker in the database WAL is in no file of the repository on disk', async () => {
    const marker = `lifeboat-plaintext-marker-${randomUUID()}`;
    await sql(primary, 'INSERT INTO lab_records (payload) VALUES ($1)', [marker]);
    const segment = await switchWal();
    await archived(segment);

    // The control: the database's own WAL holds the marker in plain text.
    const walFile = path.join(primary.dataDir, 'pg_wal', segment);
    expect(readFileSync(walFile).includes(marker)).toBe(true);

    const incr = await backrest.backup({ type: 'incr' });
    expect(incr.type).toBe('incr');
    const files = [...filesUnder(s3Dirs.data), ...filesUnder(s3Dirs.versions)];
    // The repository on disk is the one pgBackRest wrote: the archived segment is there, uncompressed in size.
    const stored = files.find((f) => path.basename(f).startsWith(`${segment}-`));
    expect(stored, `the archived segment ${segment} under ${s3Dirs.data}`).toBeDefined();
    expect(statSync(stored ?? '').size).toBeGreaterThanOrEqual(16 * 1024 * 1024);
    expect(files.some((f) => f.includes(`${path.sep}backup${path.sep}${DATABASE}${path.sep}${incr.label}${path.sep}`))).toBe(true);
    const leaking = files.filter((f) => readFileSync(f).includes(marker));
    expect(leaking).toEqual([]);
  });

  it('lets the archive age grow past the threshold while archive_command fails, and catch up when it works again', async () => {
    // Working: a switched segment reaches the repository at once.
    await sql(primary, "INSERT INTO lab_records (payload) VALUES ('archiving works')");
    const lastGood = await switchWal();
    expect((await archived(lastGood)).ageSeconds).toBeLessThan(OVERDUE_SECONDS);

    await sql(primary, "ALTER SYSTEM SET archive_command = 'false'");
    await sql(primary, 'SELECT pg_reload_conf()');
    await waitFor('archive_command to fail', async () => {
      const [r] = await sql<{ c: string }>(primary, "SELECT current_setting('archive_command') AS c");
      return r?.c === 'false' ? true : undefined;
    }, 10_000);
    const [failedBefore] = await sql<{ n: string }>(primary, 'SELECT failed_count::text AS n FROM pg_stat_archiver');

    await sql(primary, "INSERT INTO lab_records (payload) VALUES ('archiving is broken')");
    const stuck = await switchWal();
    await sleep((OVERDUE_SECONDS + 1.5) * 1000);
    const overdue = await backrest.newestArchivedWal();
    expect(overdue.segment).toBe(lastGood);
    expect(overdue.ageSeconds).toBeGreaterThan(OVERDUE_SECONDS);
    const [archiver] = await sql<{ n: string; last_failed_wal: string | null }>(primary, 'SELECT failed_count::text AS n, last_failed_wal FROM pg_stat_archiver');
    expect(Number(archiver?.n)).toBeGreaterThan(Number(failedBefore?.n));
    expect(archiver?.last_failed_wal).toBe(stuck);

    await sql(primary, 'ALTER SYSTEM RESET archive_command');
    await sql(primary, 'SELECT pg_reload_conf()');
    const caughtUp = await archived(stuck);
    expect(caughtUp.ageSeconds).toBeLessThan(OVERDUE_SECONDS);
  });

  it('reports the age as unknown, never as fresh, while the S3 server is gone, and measures it again once it is back', async () => {
    const pid = s3Pid;
    await stopPid(pid ?? 0);
    expect(isAlive(pid)).toBe(false);
    await expect(backrest.newestArchivedWal()).rejects.toMatchObject({ name: 'PgBackRestError', code: 99, message: expect.stringMatching(/could not read repository 1 .*Connection refused/) });

    // Back on the same port and data: the segments switched meanwhile are pushed again, and the age is known.
    s3Pid = await startS3();
    await sql(primary, "INSERT INTO lab_records (payload) VALUES ('the S3 server is back')");
    expect((await archived(await switchWal())).ageSeconds).toBeLessThan(OVERDUE_SECONDS);
  });
});
