/**
 * Backups of a self-managed PostgreSQL database: `pg_dump -Fc` in one exported
 * snapshot, streamed to S3 with its SHA-256 computed on the way, a manifest of
 * per-table row counts and checksums taken in that same snapshot, copies in
 * the other regions' buckets, and restore tests into a scratch database on a
 * dedicated server (never a production one).
 *
 * Layout in each bucket: <database>/<backupId>/dump.pgc, manifest.json, verified.json.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { PassThrough, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Client, ClientConfig } from 'pg';
import type {
  ArtifactCheck,
  BackupCopy,
  BackupListing,
  BackupManifest,
  RestoreOutcome,
  RestoreVerification,
  SampleQuery,
  ScratchTarget,
  TableFingerprint,
} from '../contract/backup';
import type { NodeEndpoint } from '../contract/database';
import { withPgSession } from '../lib/pg';
import type { BackupProvider, Progress } from './backup';
import { pgBin } from './postgres-host';
import type { ObjectStore } from './s3';

export interface PostgresBackupSpec {
  /** Database name inside the cluster. */
  database: string;
  user: string;
  password?: string;
  /** The configured pair: the dump is taken from whichever is writable now (the primary, or the promoted standby). */
  nodes: NodeEndpoint[];
  /** Bucket per region; the dump goes to the dumped node's region first, then is copied to the others. */
  stores: ReadonlyMap<string, ObjectStore>;
  scratch: { host: string; port: number; user: string; password?: string };
}

const DUMP = 'dump.pgc';
const MANIFEST = 'manifest.json';
const VERIFIED = 'verified.json';

/** Order-independent: md5 of the sorted md5s of every row's text form. */
const fingerprintSql = (table: string) =>
  `SELECT count(*)::bigint AS rows, md5(coalesce(string_agg(md5(t::text), '' ORDER BY md5(t::text)), '')) AS checksum FROM ${table} t`;

const USER_TABLES = `SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS name
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%'
  ORDER BY 1`;

async function fingerprints(client: Client): Promise<TableFingerprint[]> {
  const tables = await client.query<{ name: string }>(USER_TABLES);
  const result: TableFingerprint[] = [];
  for (const { name } of tables.rows) {
    const r = await client.query<{ rows: string; checksum: string }>(fingerprintSql(name));
    result.push({ table: name, rows: Number(r.rows[0]?.rows ?? 0), checksum: r.rows[0]?.checksum ?? '' });
  }
  return result;
}

/** Counts bytes and hashes them on their way through; `onBytes` sees the running total. */
function hashing(onBytes?: (bytes: number) => void): Transform & { sha256(): string; bytes(): number } {
  const hash = createHash('sha256');
  let bytes = 0;
  const t = new Transform({
    transform(chunk: Buffer, _enc, done) {
      hash.update(chunk);
      bytes += chunk.length;
      onBytes?.(bytes);
      done(null, chunk);
    },
  }) as Transform & { sha256(): string; bytes(): number };
  let digest: string | undefined;
  t.sha256 = () => (digest ??= hash.digest('hex'));
  t.bytes = () => bytes;
  return t;
}

/** Runs a PostgreSQL client tool, its stdout or stdin a stream; rejects with its stderr on a non-zero exit. */
function pgTool(tool: string, args: string[], password: string | undefined, signal?: AbortSignal) {
  const child = spawn(pgBin(tool), args, {
    env: { ...process.env, ...(password ? { PGPASSWORD: password } : {}), PGCONNECT_TIMEOUT: '10' },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-4000); });
  const kill = () => child.kill('SIGTERM');
  signal?.addEventListener('abort', kill, { once: true });
  const exited = new Promise<void>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, sig) => {
      signal?.removeEventListener('abort', kill);
      if (code === 0) resolve();
      else reject(new Error(`${tool} ${sig ? `killed by ${sig}` : `exited ${code}`}: ${stderr.trim() || '(no output)'}`));
    });
  });
  return { child, exited };
}

/** The scratch database of one restore test: a safe identifier derived from the run. */
export function scratchDatabase(runKey: string): string {
  return `lifeboat_restore_${runKey.toLowerCase().replace(/[^a-z0-9_]/g, '_')}`.slice(0, 63);
}

function nowIso(): string {
  return new Date().toISOString();
}

export function createPostgresBackupProvider(name: string, spec: PostgresBackupSpec): BackupProvider {
  const nodeConfig = (node: NodeEndpoint, database = spec.database): ClientConfig => ({
    host: node.host, port: node.port, user: spec.user, password: spec.password, database, connectionTimeoutMillis: 5000,
  });
  const scratchConfig = (database: string): ClientConfig => ({
    host: spec.scratch.host, port: spec.scratch.port, user: spec.scratch.user, password: spec.scratch.password, database, connectionTimeoutMillis: 5000,
  });
  const prefix = (backupId: string) => `${name}/${backupId}/`;
  const store = (region: string): ObjectStore => {
    const s = spec.stores.get(region);
    if (!s) throw new Error(`no backup bucket for region '${region}' (backups.storage.buckets)`);
    return s;
  };
  const storeAt = (location: string): ObjectStore | undefined => [...spec.stores.values()].find((s) => s.location === location);

  /** The node that takes writes now: the dump must see the latest data. */
  async function writableNode(): Promise<NodeEndpoint> {
    const errors: string[] = [];
    for (const node of spec.nodes) {
      try {
        const inRecovery = await withPgSession(nodeConfig(node), async (c) => (await c.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r')).rows[0]?.r);
        if (inRecovery === false) return node;
        errors.push(`${node.region} ${node.host}:${node.port} is a standby`);
      } catch (err) {
        errors.push(`${node.region} ${node.host}:${node.port}: ${(err as Error).message}`);
      }
    }
    throw new Error(`no writable node of ${name} to back up: ${errors.join('; ')}`);
  }

  async function manifestOf(backupId: string): Promise<BackupManifest> {
    for (const s of spec.stores.values()) {
      const manifest = await s.getJson<BackupManifest>(`${prefix(backupId)}${MANIFEST}`);
      if (manifest) return manifest;
    }
    throw new Error(`backup ${backupId} of ${name} has no manifest in ${[...spec.stores.values()].map((s) => s.location).join(', ')}`);
  }

  async function sha256Of(s: ObjectStore, key: string, progress: Progress): Promise<{ sha256: string; size: number }> {
    const hash = hashing((bytes) => progress({ phase: 'checksum', location: s.location, bytes }));
    await pipeline(await s.getStream(key), hash, new PassThrough().resume());
    return { sha256: hash.sha256(), size: hash.bytes() };
  }

  return {
    database: name,

    async takeBackup(backupId, progress, signal) {
      const startedAt = nowIso();
      const node = await writableNode();
      const first = store(node.region);
      const key = `${prefix(backupId)}${DUMP}`;
      // One snapshot for everything: the fingerprints and pg_dump --snapshot see the same data.
      return withPgSession(nodeConfig(node), async (session) => {
        await session.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
        const snapshot = (await session.query<{ s: string }>('SELECT pg_export_snapshot() AS s')).rows[0]?.s ?? '';
        const serverVersion = (await session.query<{ v: string }>('SHOW server_version')).rows[0]?.v;
        progress({ phase: 'fingerprint', node: `${node.region} ${node.host}:${node.port}` });
        const tables = await fingerprints(session);
        const dump = pgTool('pg_dump', ['-Fc', `--snapshot=${snapshot}`, '--no-password', '-h', node.host, '-p', String(node.port), '-U', spec.user, '-d', spec.database], spec.password, signal);
        dump.child.stdin.end();
        const hash = hashing();
        // An upload that fails stops pg_dump (it would block on a full pipe); a pg_dump that fails ends the upload.
        let uploadError: unknown;
        const uploaded = first
          .putStream(key, dump.child.stdout.pipe(hash), (bytes) => progress({ phase: 'upload', location: first.location, bytes }), signal)
          .catch((err: unknown) => {
            uploadError = err;
            dump.child.kill('SIGTERM');
          });
        const dumpError = await dump.exited.then(() => undefined, (err: unknown) => err);
        await uploaded;
        if (uploadError !== undefined || dumpError !== undefined) {
          // A failed dump must not leave a partial artifact that looks like a backup.
          await first.deletePrefix(prefix(backupId)).catch(() => undefined);
          // The upload's error when it came first (pg_dump was then killed by us), else pg_dump's own.
          throw uploadError ?? dumpError;
        }
        await session.query('COMMIT');
        const manifest: BackupManifest = {
          format: 'lifeboat-backup/1',
          backupId,
          database: name,
          provider: 'postgres',
          artifact: { kind: 'pg_dump-custom', key, sha256: hash.sha256(), sizeBytes: hash.bytes() },
          tables,
          serverVersion,
          snapshot,
          startedAt,
          finishedAt: nowIso(),
          locations: [first.location],
        };
        // The manifest goes last: a backup without one is an incomplete upload.
        await first.putJson(`${prefix(backupId)}${MANIFEST}`, manifest);
        return manifest;
      });
    },

    async replicateBackup(backupId, progress) {
      const manifest = await manifestOf(backupId);
      if (manifest.artifact.kind !== 'pg_dump-custom') throw new Error(`backup ${backupId} is not a pg_dump artifact`);
      const { key, sha256 } = manifest.artifact;
      const source = storeAt(manifest.locations[0] ?? '');
      if (!source) throw new Error(`backup ${backupId}: its first location ${manifest.locations[0]} is not configured`);
      const copies: BackupCopy[] = [];
      for (const target of spec.stores.values()) {
        if (target === source) continue;
        // Re-upload through this worker (buckets may live in different accounts or servers), then re-read the copy.
        await target.putStream(key, await source.getStream(key), (bytes) => progress({ phase: 'copy', location: target.location, bytes }));
        const reread = await sha256Of(target, key, progress);
        const verified = reread.sha256 === sha256;
        copies.push({ location: target.location, sha256: reread.sha256, verified, method: verified ? 're-read SHA-256 matches the manifest' : `re-read SHA-256 ${reread.sha256} differs from the manifest's ${sha256}` });
        if (verified) await target.putJson(`${prefix(backupId)}${MANIFEST}`, { ...manifest, locations: [...manifest.locations, target.location] });
      }
      const locations = [...manifest.locations, ...copies.filter((c) => c.verified).map((c) => c.location)];
      await source.putJson(`${prefix(backupId)}${MANIFEST}`, { ...manifest, locations: [...new Set(locations)] });
      return copies;
    },

    async deleteCopies(backupId) {
      const manifest = await manifestOf(backupId).catch(() => undefined);
      const first = manifest?.locations[0];
      for (const s of spec.stores.values()) if (s.location !== first) await s.deletePrefix(prefix(backupId));
    },

    async markVerified(backupId) {
      const manifest = await manifestOf(backupId);
      for (const location of manifest.locations) {
        const s = storeAt(location);
        if (s) await s.putJson(`${prefix(backupId)}${VERIFIED}`, { backupId, verifiedAt: nowIso(), locations: manifest.locations });
      }
    },

    async listBackups() {
      const byId = new Map<string, BackupListing>();
      for (const s of spec.stores.values()) {
        for (const object of await s.list(`${name}/`)) {
          const [, backupId, file] = object.key.split('/');
          if (!backupId || !file) continue;
          const entry = byId.get(backupId) ?? { backupId, database: name, startedAt: '', verified: false };
          if (file === VERIFIED) entry.verified = true;
          if (file === DUMP) entry.sizeBytes = object.size;
          byId.set(backupId, entry);
        }
      }
      const listings = [...byId.values()];
      for (const listing of listings) {
        const manifest = await manifestOf(listing.backupId).catch(() => undefined);
        listing.startedAt = manifest?.startedAt ?? '';
        listing.finishedAt = manifest?.finishedAt;
        // Without a manifest the upload never finished: it can never count as verified.
        if (!manifest) listing.verified = false;
      }
      return listings.sort((a, b) => (a.backupId < b.backupId ? 1 : a.backupId > b.backupId ? -1 : 0));
    },

    readManifest: manifestOf,

    async deleteBackup(backupId) {
      for (const s of spec.stores.values()) await s.deletePrefix(prefix(backupId));
    },

    async verifyArtifact(backupId, progress) {
      const manifest = await manifestOf(backupId);
      if (manifest.artifact.kind !== 'pg_dump-custom') throw new Error(`backup ${backupId} is not a pg_dump artifact`);
      const location = manifest.locations[0] ?? '';
      const s = storeAt(location);
      if (!s) throw new Error(`backup ${backupId}: location ${location} is not configured`);
      const expected = manifest.artifact.sha256;
      let read: { sha256: string; size: number };
      try {
        read = await sha256Of(s, manifest.artifact.key, progress);
      } catch (err) {
        // The SDK checks the object's stored CRC32 as it reads: a flipped byte fails there first.
        if (!/checksum mismatch/i.test((err as Error).message)) throw err;
        return { backupId, ok: false, expectedSha256: expected, method: `S3 found the bytes of ${location}/${manifest.artifact.key} differ from the checksum stored at upload (${(err as Error).message}); the manifest's SHA-256 is ${expected}` };
      }
      const ok = read.sha256 === expected && read.size === manifest.artifact.sizeBytes;
      return {
        backupId,
        ok,
        expectedSha256: expected,
        actualSha256: read.sha256,
        sizeBytes: read.size,
        method: ok
          ? `SHA-256 of ${location}/${manifest.artifact.key} matches the manifest (${read.size} bytes)`
          : `SHA-256 ${read.sha256} of ${location}/${manifest.artifact.key} (${read.size} bytes) does not match the manifest's ${expected} (${manifest.artifact.sizeBytes} bytes)`,
      } satisfies ArtifactCheck;
    },

    async createScratch(runKey) {
      const scratchName = scratchDatabase(runKey);
      await withPgSession(scratchConfig('postgres'), async (c) => {
        // A retry of this step may find the database of its own first attempt: start clean.
        await c.query(`DROP DATABASE IF EXISTS "${scratchName}" WITH (FORCE)`);
        await c.query(`CREATE DATABASE "${scratchName}"`);
      });
      return { kind: 'postgres-database', name: scratchName, host: spec.scratch.host, port: spec.scratch.port, createdAt: nowIso() } satisfies ScratchTarget;
    },

    async restoreInto(backupId, target, progress, signal) {
      const manifest = await manifestOf(backupId);
      if (manifest.artifact.kind !== 'pg_dump-custom') throw new Error(`backup ${backupId} is not a pg_dump artifact`);
      const s = storeAt(manifest.locations[0] ?? '');
      if (!s) throw new Error(`backup ${backupId}: location ${manifest.locations[0]} is not configured`);
      const started = Date.now();
      const restore = pgTool(
        'pg_restore',
        ['--no-owner', '--no-privileges', '--exit-on-error', '--no-password', '-h', spec.scratch.host, '-p', String(spec.scratch.port), '-U', spec.scratch.user, '-d', target.name],
        spec.scratch.password,
        signal,
      );
      restore.child.stdout.resume();
      const of = manifest.artifact.sizeBytes;
      const counter = hashing((bytes) => progress({ phase: 'restore', bytes, of }));
      const fed = pipeline(await s.getStream(manifest.artifact.key), counter, restore.child.stdin);
      // pg_restore's own error says more than the broken pipe it leaves behind: report it first.
      const [tool, feed] = await Promise.allSettled([restore.exited, fed]);
      if (tool.status === 'rejected') throw tool.reason;
      if (feed.status === 'rejected') throw feed.reason;
      return {
        backupId,
        target,
        durationSeconds: (Date.now() - started) / 1000,
        method: `pg_restore from ${s.location} into ${target.name} on ${spec.scratch.host}:${spec.scratch.port}`,
      } satisfies RestoreOutcome;
    },

    async verifyRestore(backupId, target, samples: readonly SampleQuery[]) {
      const manifest = await manifestOf(backupId);
      return withPgSession(scratchConfig(target.name), async (c) => {
        await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
        await c.query("SET LOCAL statement_timeout = '60s'");
        const restored = new Map((await fingerprints(c)).map((t) => [t.table, t]));
        const mismatches: string[] = [];
        const tables: RestoreVerification['tables'] = [];
        for (const expected of manifest.tables ?? []) {
          const got = restored.get(expected.table);
          const match = got !== undefined && got.rows === expected.rows && got.checksum === expected.checksum;
          if (!got) mismatches.push(`${expected.table} is missing`);
          else if (got.rows !== expected.rows) mismatches.push(`${expected.table} has ${got.rows} rows, the manifest ${expected.rows}`);
          else if (got.checksum !== expected.checksum) mismatches.push(`${expected.table} checksum ${got.checksum} differs from the manifest's ${expected.checksum}`);
          tables.push({ table: expected.table, rows: got?.rows ?? 0, checksum: got?.checksum ?? '', expectedRows: expected.rows, expectedChecksum: expected.checksum, match });
        }
        const results: RestoreVerification['samples'] = [];
        for (const sample of samples) {
          try {
            await c.query('SAVEPOINT sample');
            const r = await c.query(sample.sql);
            const ok = r.rowCount !== null && r.rows.length >= (sample.minRows ?? 1);
            results.push({ name: sample.name, rows: r.rows.length, ok });
            if (!ok) mismatches.push(`sample query '${sample.name}' returned ${r.rows.length} rows, fewer than ${sample.minRows ?? 1}`);
            await c.query('RELEASE SAVEPOINT sample');
          } catch (err) {
            await c.query('ROLLBACK TO SAVEPOINT sample');
            results.push({ name: sample.name, rows: 0, ok: false, error: (err as Error).message });
            mismatches.push(`sample query '${sample.name}' failed: ${(err as Error).message}`);
          }
        }
        await c.query('COMMIT');
        return {
          ok: mismatches.length === 0,
          tables,
          samples: results,
          mismatches,
          method: `row counts and order-independent row checksums of ${tables.length} tables against the manifest (same SQL as at dump time); ${samples.length} sample queries`,
        } satisfies RestoreVerification;
      });
    },

    async dropScratch(runKey) {
      await withPgSession(scratchConfig('postgres'), (c) => c.query(`DROP DATABASE IF EXISTS "${scratchDatabase(runKey)}" WITH (FORCE)`));
    },
  };
}
