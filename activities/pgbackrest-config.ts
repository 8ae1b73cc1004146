/**
 * pgBackRest's configuration for one database (one stanza), validated at the
 * edge and rendered as the pgbackrest.conf the archiver, backups and restores
 * read. The repository is on an S3 server over TLS, trusted by an explicit CA
 * file, and always encrypted (aes-256-cbc). No secret is ever written to the
 * file: the cipher passphrase and the S3 keys are read, at the edge, from
 * environment variables whose names are configured, and handed to pgBackRest
 * (and to the PostgreSQL server, whose archive_command runs it) by environment.
 */
import path from 'node:path';
import { z } from 'zod';

const line = z.string().min(1).regex(/^[^\n\r]*$/, 'one line');
const absolute = line.refine((p) => path.isAbsolute(p), 'an absolute path');
const port = z.number().int().min(1).max(65535);
const envName = z.string().regex(/^[A-Z_][A-Z0-9_]*$/, 'an environment variable name');

export const PgBackRestConfigSchema = z.strictObject({
  /** The stanza: pgBackRest's name for one database cluster's backups and WAL archive. */
  stanza: z.string().regex(/^[a-z][a-z0-9_-]{0,62}$/),
  /** Where pgbackrest.conf is written; archive_command names it. */
  configFile: absolute,
  /** pgBackRest's log, lock and spool directories live under this one. */
  stateDir: absolute,
  pg: z.strictObject({
    dataDir: absolute,
    port,
    /** pgBackRest reaches PostgreSQL by its unix socket only (pg1-socket-path must be a path). */
    socketDir: absolute,
    user: line.default('postgres'),
  }),
  repository: z.strictObject({
    /**
     * The S3 endpoint's host as the server certificate names it. pgBackRest 2.45 matches the
     * host against the certificate's DNS names only, never its IP addresses, so the lab uses
     * `localhost` (its certificate names both localhost and 127.0.0.1).
     */
    host: line,
    port,
    bucket: line,
    region: line.default('us-east-1'),
    /** The repository's path inside the bucket. */
    path: absolute.default('/pgbackrest'),
    /** The CA that issued the S3 server's certificate: verification is never turned off. */
    caFile: absolute,
    compressType: z.enum(['none', 'gz', 'lz4', 'zst']).default('gz'),
    /**
     * pgBackRest's io-timeout: how long a connection or read may stall. An unreachable server is retried
     * this long for each file `info` reads (four of them), so it bounds how soon a dead repository is known.
     */
    ioTimeoutSeconds: z.number().positive().default(60),
    /** Full backups kept (older ones and their WAL are expired after a backup). */
    retentionFull: z.number().int().min(1).default(2),
  }),
  /** The NAMES of the environment variables holding the secrets, never the secrets. */
  secretsFrom: z.strictObject({
    cipherPass: envName,
    s3AccessKeyId: envName,
    s3SecretAccessKey: envName,
  }),
});

export type PgBackRestConfig = z.output<typeof PgBackRestConfigSchema>;
export type PgBackRestConfigInput = z.input<typeof PgBackRestConfigSchema>;

/** The secrets themselves, read once at the edge (a worker's composition root, a test). */
export interface PgBackRestSecrets {
  cipherPass: string;
  s3AccessKeyId: string;
  s3SecretAccessKey: string;
}

export class MissingSecretError extends Error {
  override readonly name = 'MissingSecretError';
}

/** Reads the configured environment variables; an empty or missing one is an error, never a blank passphrase. */
export function readPgBackRestSecrets(config: PgBackRestConfig, env: NodeJS.ProcessEnv): PgBackRestSecrets {
  const read = (name: string, what: string): string => {
    const value = env[name];
    if (!value) throw new MissingSecretError(`${what} for pgBackRest stanza ${config.stanza}: environment variable ${name} is not set`);
    return value;
  };
  return {
    cipherPass: read(config.secretsFrom.cipherPass, 'the repository cipher passphrase'),
    s3AccessKeyId: read(config.secretsFrom.s3AccessKeyId, 'the S3 access key id'),
    s3SecretAccessKey: read(config.secretsFrom.s3SecretAccessKey, 'the S3 secret access key'),
  };
}

/**
 * The environment pgBackRest reads its secrets from (its documented PGBACKREST_<OPTION> form).
 * The PostgreSQL server must be started with it too: its archive_command and restore_command run pgBackRest.
 */
export function pgBackRestEnv(secrets: PgBackRestSecrets): Record<string, string> {
  return {
    PGBACKREST_REPO1_CIPHER_PASS: secrets.cipherPass,
    PGBACKREST_REPO1_S3_KEY: secrets.s3AccessKeyId,
    PGBACKREST_REPO1_S3_KEY_SECRET: secrets.s3SecretAccessKey,
  };
}

export const stateDirs = (config: PgBackRestConfig) => ({
  log: path.join(config.stateDir, 'log'),
  lock: path.join(config.stateDir, 'lock'),
  spool: path.join(config.stateDir, 'spool'),
});

/** pgbackrest.conf for the stanza. */
export function renderPgBackRestConf(config: PgBackRestConfig): string {
  const r = config.repository;
  const dirs = stateDirs(config);
  return `# Written by Lifeboat: pgBackRest for stanza ${config.stanza}. Secrets come from the environment, never from this file.
[global]
repo1-type=s3
repo1-s3-endpoint=${r.host}
repo1-storage-port=${r.port}
repo1-s3-uri-style=path
repo1-s3-bucket=${r.bucket}
repo1-s3-region=${r.region}
repo1-storage-ca-file=${r.caFile}
repo1-path=${r.path}
repo1-cipher-type=aes-256-cbc
repo1-retention-full=${r.retentionFull}
compress-type=${r.compressType}
io-timeout=${r.ioTimeoutSeconds}
start-fast=y
log-path=${dirs.log}
lock-path=${dirs.lock}
spool-path=${dirs.spool}
log-level-console=warn
log-level-stderr=error
log-level-file=info

[${config.stanza}]
pg1-path=${config.pg.dataDir}
pg1-port=${config.pg.port}
pg1-socket-path=${config.pg.socketDir}
pg1-user=${config.pg.user}
`;
}

/** PostgreSQL's archive_command for the stanza (the server's environment must carry pgBackRestEnv). */
export function archiveCommand(config: PgBackRestConfig, bin: string): string {
  return `${shellQuote(bin)} ${shellQuote(`--config=${config.configFile}`)} --stanza=${config.stanza} archive-push %p`;
}

/** archive_command runs under /bin/sh: paths are quoted whole. */
const shellQuote = (word: string) => `'${word.replace(/'/g, `'\\''`)}'`;
