/**
 * Provider clients built from the config, shared by the two composition roots:
 * the worker's (workers/dependencies.ts: every client, with the worker's
 * secrets) and the CLI's (cli/readers.ts: read-only clients, with the
 * commander's own credentials). A builder takes the credentials it is handed
 * and reads no secret itself, so each root decides whose keys a client holds.
 */
import path from 'node:path';
import { Route53Client } from '@aws-sdk/client-route-53';
import type { S3Client } from '@aws-sdk/client-s3';
import { PassThroughClient } from 'google-auth-library';
import type { LoadedConfig } from '../config/load';
import type { BackupsConfig, CloudSqlDatabaseConfig } from '../config/schema';
import { createCloudSqlClients, type CloudSqlClients } from '../activities/cloudsql';
import { mirrorEvidenceStore, type EvidenceStore } from '../activities/evidence';
import { createRoute53Traffic, type Route53Traffic } from '../activities/route53';
import { createObjectStore, createS3Client, type ObjectStore } from '../activities/s3';

/** An S3 access key pair. */
export interface S3Keys {
  accessKeyId: string;
  secretAccessKey: string;
}

const partSizeBytes = (backups: BackupsConfig) => backups.storage.partSizeMiB * 1024 * 1024;

/** backups.storage's S3 with these keys; without keys, the AWS SDK's default credential chain. */
export function storageClient(backups: BackupsConfig, keys: S3Keys | undefined): S3Client {
  const { storage } = backups;
  return createS3Client({ endpoint: storage.endpoint, region: storage.region, credentials: keys, checksums: storage.checksums, partSizeBytes: partSizeBytes(backups) });
}

/** One store per region's backup bucket, over one S3 client. */
export function backupStores(backups: BackupsConfig, client: S3Client): ReadonlyMap<string, ObjectStore> {
  return new Map(Object.entries(backups.storage.buckets).map(([region, bucket]) => [region, bucketStore(backups, bucket, client)]));
}

/** A bucket on backups.storage's S3 (a region's backups, the evidence bucket). */
export function bucketStore(backups: BackupsConfig, bucket: string, client: S3Client): ObjectStore {
  return createObjectStore(client, bucket, partSizeBytes(backups));
}

/** The local mirror of the evidence chains: evidence.mirrorDir, relative to the config file. */
export function evidenceMirror(loaded: LoadedConfig): EvidenceStore {
  return mirrorEvidenceStore(path.resolve(path.dirname(loaded.file), loaded.config.evidence.mirrorDir));
}

/** Route 53 with the usual AWS credential sources; an emulator endpoint (the lab) accepts any. */
export function route53Traffic(dns: NonNullable<LoadedConfig['config']['dns']>, env: NodeJS.ProcessEnv): Route53Traffic {
  const emulator = dns.endpoint !== undefined && !env.AWS_ACCESS_KEY_ID;
  const client = new Route53Client({
    region: dns.region,
    endpoint: dns.endpoint,
    credentials: emulator ? { accessKeyId: 'lifeboat-lab', secretAccessKey: 'lifeboat-lab' } : undefined,
  });
  return createRoute53Traffic(client, {
    zone: dns.zone,
    record: dns.app.record,
    ttl: dns.app.ttl,
    targets: dns.app.targets,
    syncPollMs: dns.syncPollMs,
    syncTimeoutMs: dns.syncTimeoutSeconds * 1000,
  });
}

/** The Cloud SQL Admin API clients of one database, on Google's application default credentials (none against a stand-in). */
export function cloudSqlClients(spec: CloudSqlDatabaseConfig): CloudSqlClients {
  return createCloudSqlClients({ apiEndpoint: spec.apiEndpoint, authClient: spec.auth === 'none' ? new PassThroughClient() : undefined });
}
