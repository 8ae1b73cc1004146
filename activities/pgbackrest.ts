/**
 * A thin adapter over the pgbackrest command for one stanza: write its
 * configuration, create the stanza, take and check backups, read `info`,
 * restore into a data directory (to a point in time, or the newest), and
 * measure the newest archived WAL segment's age, the backup RPO.
 *
 * pgBackRest runs as the cluster owner (the `postgres` user when we are root),
 * as the server's own archive_command does, with a minimal environment that
 * carries only the secrets: no stray PGBACKREST_* variable of the caller's
 * changes what the configuration file says.
 */
import { chownSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { CommandError, run } from '../lib/processes';
import { clusterOwner, prepareDir } from './postgres-host';
import { pgBackRestEnv, renderPgBackRestConf, stateDirs, type PgBackRestConfig, type PgBackRestSecrets } from './pgbackrest-config';

export interface PgBackRestDeps {
  config: PgBackRestConfig;
  secrets: PgBackRestSecrets;
  /** The pgbackrest binary (set-up exports LIFEBOAT_PGBACKREST_BIN). */
  bin: string;
  /** The clock the archive's age is measured with. */
  now?: () => Date;
}

/** pgBackRest refused or failed; `code` is its own error number (e.g. 95: the certificate does not name the host). */
export class PgBackRestError extends Error {
  override readonly name = 'PgBackRestError';
  constructor(
    message: string,
    readonly code: number | undefined,
    options: { cause: unknown },
  ) {
    super(message, options);
  }
}

/** The repository holds no archived WAL for the stanza: the archive's age is unknown, not zero. */
export class NoArchivedWalError extends Error {
  override readonly name = 'NoArchivedWalError';
}

export type BackupType = 'full' | 'diff' | 'incr';

export interface BackupInput {
  type: BackupType;
  signal?: AbortSignal;
}

export interface RestoreInput {
  /** An empty (or absent) directory to restore into; never a running cluster's. */
  dataDir: string;
  /** `time`: replay WAL up to this ISO 8601 moment with its offset (e.g. 2026-01-02T03:04:05.123456Z), then promote. `latest`: to the end of the archive. */
  target: { type: 'time'; time: string } | { type: 'latest' };
  /**
   * `off` for a copy that must not archive into this stanza (a restore test); `preserve` for the
   * database's replacement, which goes on archiving here on a new timeline.
   */
  archiveMode: 'off' | 'preserve';
  signal?: AbortSignal;
}

export interface BackupSummary {
  label: string;
  type: BackupType;
  startedAt: Date;
  stoppedAt: Date;
  /** First and last WAL segment the backup needs. */
  walStart: string | null;
  walStop: string | null;
}

export interface StanzaInfo {
  stanza: string;
  /** pgBackRest's status: 0 is ok, 1 no stanza yet, 99 another error (the repository's status says which). */
  status: { code: number; message: string };
  /** Per repository: 99 when pgBackRest could not read it (unreachable, refused). */
  repositories: { key: number; status: { code: number; message: string } }[];
  cipher: string;
  backups: BackupSummary[];
  /** The current database's archive: its id (e.g. 15-1) and its oldest and newest segment. */
  archive: { id: string; min: string | null; max: string | null } | undefined;
}

export interface ArchivedWal {
  segment: string;
  /** When the repository received it (the object's time, whole seconds). */
  archivedAt: Date;
  /** Seconds between archivedAt and now: the backup RPO measured. */
  ageSeconds: number;
}

const InfoSchema = z.array(
  z.looseObject({
    name: z.string(),
    cipher: z.string(),
    status: z.looseObject({ code: z.number(), message: z.string() }),
    repo: z.array(z.looseObject({ key: z.number(), status: z.looseObject({ code: z.number(), message: z.string() }) })).default([]),
    db: z.array(z.looseObject({ id: z.number() })),
    archive: z.array(z.looseObject({ id: z.string(), database: z.looseObject({ id: z.number() }), min: z.string().nullish(), max: z.string().nullish() })),
    backup: z.array(
      z.looseObject({
        label: z.string(),
        type: z.enum(['full', 'diff', 'incr']),
        timestamp: z.looseObject({ start: z.number(), stop: z.number() }),
        archive: z.looseObject({ start: z.string().nullish(), stop: z.string().nullish() }),
      }),
    ),
  }),
);

/** pgBackRest's status code `other`: in a repository's status, it could not be read. */
const UNREADABLE = 99;

const ListingSchema = z.record(z.string(), z.looseObject({ type: z.string(), size: z.number().optional(), time: z.number().optional() }));

const ISO_WITH_OFFSET = /^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?)(Z|[+-]\d{2}(?::?\d{2})?)$/;

/**
 * pgBackRest picks the backup for a time target only from `YYYY-MM-DD HH:MM:SS[.ffffff]±HH[MM]`; PostgreSQL takes
 * the same text. The sub-millisecond digits are kept: a target cut to milliseconds can fall before the commit it names.
 */
export function pgBackRestTime(iso: string): string {
  const m = ISO_WITH_OFFSET.exec(iso);
  const [, date, time, zone] = m ?? [];
  if (!date || !time || !zone) throw new RangeError(`not an ISO 8601 time with an offset: ${JSON.stringify(iso)}`);
  return `${date} ${time}${zone === 'Z' ? '+00' : zone.replace(':', '')}`;
}

/** The adapter for one stanza. Long calls take an AbortSignal, which ends the pgbackrest process. */
export function createPgBackRestActivities(deps: PgBackRestDeps) {
  const { config, bin } = deps;
  const now = deps.now ?? (() => new Date());
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', ...pgBackRestEnv(deps.secrets) };

  /** Runs `pgbackrest [options] command [parameters]`. */
  async function pgbackrest(command: string, options: readonly string[] = [], signal?: AbortSignal, parameters: readonly string[] = []): Promise<string> {
    const argv = [`--config=${config.configFile}`, `--stanza=${config.stanza}`, ...options, command, ...parameters];
    const owner = clusterOwner();
    try {
      return await (owner ? run('runuser', ['-u', 'postgres', '--', bin, ...argv], { env, signal }) : run(bin, argv, { env, signal }));
    } catch (err) {
      const output = err instanceof CommandError ? err.output : String(err);
      const m = /ERROR: \[(\d+)\]: ([^\n]*)/.exec(output);
      throw new PgBackRestError(`pgbackrest ${command} for stanza ${config.stanza} failed: ${m?.[2] ?? output.trim().split('\n').slice(-3).join(' ')}`, m ? Number(m[1]) : undefined, { cause: err });
    }
  }

  async function json<T>(schema: z.ZodType<T>, command: string, parameters: readonly string[] = []): Promise<T> {
    const out = await pgbackrest(command, ['--output=json'], undefined, parameters);
    return schema.parse(JSON.parse(out));
  }

  const summary = (b: z.output<typeof InfoSchema>[number]['backup'][number]): BackupSummary => ({
    label: b.label,
    type: b.type,
    startedAt: new Date(b.timestamp.start * 1000),
    stoppedAt: new Date(b.timestamp.stop * 1000),
    walStart: b.archive.start ?? null,
    walStop: b.archive.stop ?? null,
  });

  async function info(): Promise<StanzaInfo> {
    const [stanza] = (await json(InfoSchema, 'info')).filter((s) => s.name === config.stanza);
    if (!stanza) throw new PgBackRestError(`pgbackrest info did not list stanza ${config.stanza}`, undefined, { cause: undefined });
    const currentDb = Math.max(...stanza.db.map((d) => d.id));
    const archive = stanza.archive.find((a) => a.database.id === currentDb);
    return {
      stanza: stanza.name,
      status: { code: stanza.status.code, message: stanza.status.message },
      repositories: stanza.repo.map((r) => ({ key: r.key, status: { code: r.status.code, message: r.status.message } })),
      cipher: stanza.cipher,
      backups: stanza.backup.map(summary),
      archive: archive && { id: archive.id, min: archive.min ?? null, max: archive.max ?? null },
    };
  }

  return {
    /** Writes pgbackrest.conf (no secrets) and the log, lock and spool directories, owned by the cluster owner. */
    async writeConfig(): Promise<{ configFile: string }> {
      mkdirSync(path.dirname(config.configFile), { recursive: true });
      prepareDir(config.stateDir);
      for (const dir of Object.values(stateDirs(config))) prepareDir(dir);
      writeFileSync(config.configFile, renderPgBackRestConf(config), { mode: 0o640 });
      const owner = clusterOwner();
      if (owner) chownSync(config.configFile, owner.uid, owner.gid);
      return { configFile: config.configFile };
    },

    /** Creates the stanza in the repository (idempotent: an existing stanza of the same cluster is fine). */
    async createStanza(): Promise<void> {
      await pgbackrest('stanza-create');
    },

    /** pgBackRest's own check: the configuration, the repository, and that a forced WAL switch reaches the archive. */
    async check(): Promise<void> {
      await pgbackrest('check');
    },

    /** Takes a backup and returns it, as `info` lists it afterwards. */
    async backup(input: BackupInput): Promise<BackupSummary> {
      const before = new Set((await info()).backups.map((b) => b.label));
      await pgbackrest('backup', [`--type=${input.type}`], input.signal);
      const taken = (await info()).backups.filter((b) => !before.has(b.label));
      const newest = taken.at(-1);
      if (!newest || newest.type !== input.type) throw new PgBackRestError(`pgbackrest backup --type=${input.type} finished but info lists no new ${input.type} backup`, undefined, { cause: undefined });
      return newest;
    },

    info,

    /** Restores the newest backup before the target into `dataDir`, which PostgreSQL then recovers from the archive. */
    async restore(input: RestoreInput): Promise<void> {
      const target =
        input.target.type === 'time'
          ? ['--type=time', `--target=${pgBackRestTime(input.target.time)}`, '--target-action=promote']
          : ['--type=default'];
      prepareDir(input.dataDir);
      await pgbackrest('restore', [`--pg1-path=${input.dataDir}`, ...target, `--archive-mode=${input.archiveMode}`], input.signal);
    },

    /** The newest segment in the current database's archive and its age; NoArchivedWalError when there is none. */
    async newestArchivedWal(): Promise<ArchivedWal> {
      const { archive, repositories } = await info();
      const unreadable = repositories.find((r) => r.status.code === UNREADABLE);
      if (unreadable) throw new PgBackRestError(`pgbackrest could not read repository ${unreadable.key} of stanza ${config.stanza}: ${unreadable.status.message}`, UNREADABLE, { cause: undefined });
      if (!archive?.max) throw new NoArchivedWalError(`the repository holds no archived WAL for stanza ${config.stanza}`);
      const segment = archive.max;
      const listing = await json(ListingSchema, 'repo-ls', [`archive/${config.stanza}/${archive.id}/${segment.slice(0, 16)}`]);
      const entry = Object.entries(listing).find(([name, e]) => e.type === 'file' && name.startsWith(`${segment}-`))?.[1];
      if (entry?.time === undefined) throw new NoArchivedWalError(`pgbackrest info names ${segment} as the newest archived segment of stanza ${config.stanza} but the repository does not list it`);
      const archivedAt = new Date(entry.time * 1000);
      return { segment, archivedAt, ageSeconds: (now().getTime() - archivedAt.getTime()) / 1000 };
    },
  };
}

export type PgBackRestActivities = ReturnType<typeof createPgBackRestActivities>;
