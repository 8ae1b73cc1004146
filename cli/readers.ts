/**
 * The CLI's composition root: the clients the CLI uses outside Temporal, all
 * read-only, built with the commander's own credentials and never the
 * worker's (no Twilio token, SMTP login, database password or backups.storage
 * key). The worker's root is workers/dependencies.ts; both build their clients
 * with workers/clients.ts.
 *
 * - PostgreSQL readers (`start --dry-run`): the config's user, or PGUSER (a
 *   role with pg_monitor is enough); the password from PGPASSWORD or
 *   ~/.pgpass, as libpq does. The config's passwordEnv is the worker's.
 * - DNS weights (`start --dry-run`): Route 53 with the usual AWS credential sources.
 * - Cloud SQL (`start --dry-run`): Google's application default credentials.
 * - S3 (the backup listings of `--dry-run`, the evidence chains `evidence`
 *   and `report` read, the ledger's anchored heads `evidence verify` checks,
 *   the copy of a report): LIFEBOAT_CLI_S3_ACCESS_KEY_ID and
 *   LIFEBOAT_CLI_S3_SECRET_ACCESS_KEY, a key of the CLI's own (read on the
 *   buckets; PutObject on reports/ of the evidence bucket only if reports
 *   should be stored there), else the AWS SDK's default chain (AWS_PROFILE, SSO,
 *   AWS_ACCESS_KEY_ID...); a lab config uses the lab's stand-in keys.
 */
import { Readable } from 'node:stream';
import { databaseNodes, postgresDatabases, type LoadedConfig } from '../config/load';
import type { BackupsConfig } from '../config/schema';
import type { ReplicationInspection } from '../contract/database';
import type { BackupProvider } from '../activities/backup';
import { createCloudSqlProvider } from '../activities/cloudsql';
import { s3EvidenceLedger, s3EvidenceStore, type EvidenceLedger, type EvidenceStore } from '../activities/evidence';
import { createPostgresBackupProvider } from '../activities/postgres-backup';
import { createPostgresProvider } from '../activities/postgres';
import type { Route53Traffic } from '../activities/route53';
import { createRetainedObjectStore, type ObjectStore } from '../activities/s3';
import { Lab } from '../lab/lab';
import { backupStores, bucketStore, cloudSqlClients, evidenceMirror, route53Traffic, storageClient, type S3Keys } from '../workers/clients';
import { UsageError } from './usage-error';

/** One database's replication, read (both directions: `reversed()` for a failback). */
export interface ReplicationReader {
  inspect(): Promise<ReplicationInspection>;
  reversed(): ReplicationReader;
}

export type TrafficReader = Pick<Route53Traffic, 'readWeights'>;
export type BackupLister = Pick<BackupProvider, 'listBackups'>;
/** A run's stored evidence chain and artifacts, read. */
export type EvidenceReader = Pick<EvidenceStore, 'location' | 'read' | 'readArtifact'>;
/** The evidence ledger's anchored entries, read (ListObjectVersions, GetObject, GetObjectRetention). */
export type LedgerReader = Pick<EvidenceLedger, 'location' | 'read'>;

/** Where `lifeboat report` keeps its copy: reports/ in the evidence bucket, the one thing the CLI writes outside Temporal. */
export interface ReportArchive {
  readonly location: string;
  /** Stores `text` as reports/<name>; returns where it went. */
  store(name: string, text: string): Promise<string>;
}

export interface CliReaders {
  databases: ReadonlyMap<string, ReplicationReader>;
  traffic?: TrafficReader;
  backups: ReadonlyMap<string, BackupLister>;
  evidence: EvidenceReader;
}

/** The variables holding the CLI's own S3 key. */
export const CLI_S3_KEY_ENV = { accessKeyId: 'LIFEBOAT_CLI_S3_ACCESS_KEY_ID', secretAccessKey: 'LIFEBOAT_CLI_S3_SECRET_ACCESS_KEY' } as const;

/** The CLI's S3 key; undefined: the AWS SDK's default credential chain. */
export function cliS3Keys(loaded: LoadedConfig, env: NodeJS.ProcessEnv = process.env): S3Keys | undefined {
  const accessKeyId = env[CLI_S3_KEY_ENV.accessKeyId] || undefined;
  const secretAccessKey = env[CLI_S3_KEY_ENV.secretAccessKey] || undefined;
  if (accessKeyId && secretAccessKey) return { accessKeyId, secretAccessKey };
  if (accessKeyId || secretAccessKey) throw new UsageError(`set both ${CLI_S3_KEY_ENV.accessKeyId} and ${CLI_S3_KEY_ENV.secretAccessKey}, or neither (then the AWS credential chain is used)`);
  // The lab's S3 server knows only its own stand-in keys.
  return loaded.isLab ? new Lab(loaded).s3Credentials() : undefined;
}

/** The S3 SDK found no credentials: say which ones the CLI reads. */
function s3Failure(err: unknown, location: string): unknown {
  if (!(err instanceof Error) || err.name !== 'CredentialsProviderError') return err;
  return new UsageError(
    `no S3 credentials to read ${location}: set ${CLI_S3_KEY_ENV.accessKeyId} and ${CLI_S3_KEY_ENV.secretAccessKey} (a read-only key of the CLI's own) ` +
      `or give the AWS SDK credentials (AWS_PROFILE, SSO, AWS_ACCESS_KEY_ID); the CLI never uses the worker's backups.storage keys (${err.message})`,
  );
}

function readOnly(store: EvidenceStore): EvidenceReader {
  const { location } = store;
  return {
    location,
    read: (workflowId, runId) => store.read(workflowId, runId).catch((err: unknown) => Promise.reject(s3Failure(err, location))),
    readArtifact: (workflowId, runId, name) => store.readArtifact(workflowId, runId, name).catch((err: unknown) => Promise.reject(s3Failure(err, location))),
  };
}

function evidenceBucket(loaded: LoadedConfig, env: NodeJS.ProcessEnv): { backups: BackupsConfig; store: ObjectStore } | undefined {
  const { evidence, backups } = loaded.config;
  if (!evidence.bucket || !backups) return undefined;
  return { backups, store: bucketStore(backups, evidence.bucket, storageClient(backups, cliS3Keys(loaded, env))) };
}

/** Where the CLI reads evidence: the evidence bucket when configured, else the local mirror. */
export function evidenceReader(loaded: LoadedConfig, env: NodeJS.ProcessEnv = process.env): EvidenceReader {
  const bucket = evidenceBucket(loaded, env);
  return bucket ? readOnly(s3EvidenceStore(bucket.store)) : evidenceMirror(loaded);
}

/** The evidence ledger (evidence.ledger), read with the CLI's own S3 key; undefined when none is configured. */
export function ledgerReader(loaded: LoadedConfig, env: NodeJS.ProcessEnv = process.env): LedgerReader | undefined {
  const { evidence, backups } = loaded.config;
  if (!evidence.ledger || !backups) return undefined;
  const ledger = s3EvidenceLedger(createRetainedObjectStore(storageClient(backups, cliS3Keys(loaded, env)), evidence.ledger.bucket), evidence.ledger.retentionDays);
  const { location } = ledger;
  return { location, read: (workflowId, runId) => ledger.read(workflowId, runId).catch((err: unknown) => Promise.reject(s3Failure(err, location))) };
}

/** reports/ in the evidence bucket, when the config has one. */
export function reportArchive(loaded: LoadedConfig, env: NodeJS.ProcessEnv = process.env): ReportArchive | undefined {
  const bucket = evidenceBucket(loaded, env)?.store;
  if (!bucket) return undefined;
  return {
    location: bucket.location,
    async store(name, text) {
      const key = `reports/${name}`;
      await bucket.putStream(key, Readable.from([Buffer.from(text)]));
      return `${bucket.location}/${key}`;
    },
  };
}

/** Every read-only client `start --dry-run` needs: replication, DNS weights, backup listings, past runs' evidence. */
export function buildCliReaders(loaded: LoadedConfig, env: NodeJS.ProcessEnv = process.env): CliReaders {
  const { config } = loaded;
  const databases = new Map<string, ReplicationReader>();
  const backups = new Map<string, BackupLister>();
  const stores = config.backups ? backupStores(config.backups, storageClient(config.backups, cliS3Keys(loaded, env))) : undefined;
  for (const [name, spec] of postgresDatabases(config)) {
    const credentials = { user: env.PGUSER || spec.user, password: env.PGPASSWORD || undefined };
    databases.set(name, createPostgresProvider(name, spec, credentials));
    const scratch = config.backups?.scratch;
    if (spec.backup && stores && scratch) {
      // Only its listing is used: no password for the dump, the restore or the scratch server.
      backups.set(name, createPostgresBackupProvider(name, { database: spec.database, user: credentials.user, nodes: databaseNodes(spec), stores, scratch: { host: scratch.host, port: scratch.port, user: scratch.user } }));
    }
  }
  for (const [name, spec] of Object.entries(config.databases)) {
    if (spec.provider !== 'cloudsql') continue;
    const provider = createCloudSqlProvider(name, spec, cloudSqlClients(spec));
    databases.set(name, provider);
    if (spec.backup) backups.set(name, provider);
  }
  return {
    databases,
    backups,
    traffic: config.dns ? route53Traffic(config.dns, env) : undefined,
    evidence: evidenceReader(loaded, env),
  };
}
