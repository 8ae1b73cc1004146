/**
 * The lab's shared parts, each a real process on loopback: Route 53 (the moto
 * server), an SMTP server with a readable inbox (Mailpit), the Twilio REST
 * stand-in, and one regional application service per region. Set-up
 * (scripts/toolchain.sh) installs moto and Mailpit, pinned, in the cache.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { CreateBucketCommand, GetObjectLockConfigurationCommand, HeadBucketCommand, type S3Client } from '@aws-sdk/client-s3';
import os from 'node:os';
import path from 'node:path';
import {
  ChangeResourceRecordSetsCommand,
  CreateHostedZoneCommand,
  ListHostedZonesByNameCommand,
  Route53Client,
  type Change,
} from '@aws-sdk/client-route-53';
import { databaseNodeName, databaseRecordName } from '../activities/route53';
import { isListening, startDaemon, waitFor, GiveUp, isAlive } from '../lib/processes';

export const MOTO_VERSION = '5.2.5';
export const MAILPIT_VERSION = 'v1.27.11';
export const VERSITYGW_VERSION = 'v1.8.0';

function cacheRoot(): string {
  return process.env.LIFEBOAT_CACHE_DIR ?? path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'lifeboat');
}

function binary(envVar: string, cached: string, what: string): string {
  const fromEnv = process.env[envVar];
  if (fromEnv && existsSync(fromEnv)) return fromEnv;
  if (existsSync(cached)) return cached;
  throw new Error(`${what} is not installed (${cached}): 'npm test' and 'npm run demo' install it`);
}

export const motoBinary = () => binary('LIFEBOAT_MOTO_BIN', path.join(cacheRoot(), 'moto', MOTO_VERSION, 'bin', 'moto_server'), `moto ${MOTO_VERSION}`);
export const mailpitBinary = () => binary('LIFEBOAT_MAILPIT_BIN', path.join(cacheRoot(), 'mailpit', MAILPIT_VERSION, 'mailpit'), `Mailpit ${MAILPIT_VERSION}`);

export const versitygwBinary = () => binary('LIFEBOAT_VERSITYGW_BIN', path.join(cacheRoot(), 'versitygw', VERSITYGW_VERSION, 'versitygw'), `versitygw ${VERSITYGW_VERSION}`);

/** The project root (compiled files live in dist/). */
function projectRoot(): string {
  const up = path.resolve(__dirname, '..');
  return path.basename(up) === 'dist' ? path.dirname(up) : up;
}

async function started(what: string, pid: number, host: string, port: number, logFile: string): Promise<number> {
  await waitFor(
    `${what} on ${host}:${port} (log: ${logFile})`,
    async () => {
      if (!isAlive(pid)) throw new GiveUp(`${what} exited; see ${logFile}`);
      return (await isListening(host, port)) ? true : undefined;
    },
    60_000,
    200,
  );
  return pid;
}

export async function startMoto(host: string, port: number, logFile: string): Promise<number> {
  const pid = startDaemon(motoBinary(), ['-H', host, '-p', String(port)], logFile);
  return started('the moto server (Route 53)', pid, host, port, logFile);
}

export async function startMailpit(host: string, smtpPort: number, apiPort: number, dbFile: string, logFile: string): Promise<number> {
  const pid = startDaemon(
    mailpitBinary(),
    ['--smtp', `${host}:${smtpPort}`, '--listen', `${host}:${apiPort}`, '--database', dbFile, '--smtp-auth-accept-any', '--smtp-auth-allow-insecure', '--disable-version-check', '--quiet'],
    logFile,
  );
  await started('Mailpit (SMTP)', pid, host, smtpPort, logFile);
  return started('Mailpit (inbox API)', pid, host, apiPort, logFile);
}

export interface VersityGwOptions {
  /** Serve https with this certificate and key (PEM files; lab/tls.ts makes them), instead of plain http. */
  tls?: { certFile: string; keyFile: string };
}

/**
 * versitygw's POSIX backend: each bucket is a directory under `dataDir`, each object a file; versions under `versioningDir`.
 * Plain http unless `options.tls` is given (pgBackRest speaks S3 over https only).
 */
export async function startVersityGw(
  host: string,
  port: number,
  credentials: { accessKeyId: string; secretAccessKey: string },
  dataDir: string,
  versioningDir: string,
  logFile: string,
  options: VersityGwOptions = {},
): Promise<number> {
  mkdirSync(dataDir, { recursive: true });
  mkdirSync(versioningDir, { recursive: true });
  // Absolute: versitygw does not find relative certificate paths (seen with v1.8.0).
  const tls = options.tls ? ['--cert', path.resolve(options.tls.certFile), '--key', path.resolve(options.tls.keyFile)] : [];
  const pid = startDaemon(
    versitygwBinary(),
    ['--port', `${host}:${port}`, ...tls, '--quiet', 'posix', '--versioning-dir', versioningDir, dataDir],
    logFile,
    // The root credentials by environment, so they never show in `ps`.
    { ...process.env, ROOT_ACCESS_KEY_ID: credentials.accessKeyId, ROOT_SECRET_ACCESS_KEY: credentials.secretAccessKey },
  );
  return started(`versitygw (S3${options.tls ? ', https' : ''})`, pid, host, port, logFile);
}

/**
 * Creates the buckets that do not exist yet; `locked` ones with Object Lock (the evidence ledger),
 * which needs the server's versioning directory. A locked bucket found without Object Lock (a lab
 * from before the ledger) is an error: Object Lock can only be enabled when a bucket is created.
 */
export async function ensureBuckets(client: S3Client, buckets: readonly string[], locked: readonly string[] = []): Promise<void> {
  for (const bucket of [...buckets, ...locked]) {
    const objectLock = locked.includes(bucket);
    try {
      await client.send(new HeadBucketCommand({ Bucket: bucket }));
    } catch {
      await client.send(new CreateBucketCommand({ Bucket: bucket, ...(objectLock ? { ObjectLockEnabledForBucket: true } : {}) }));
      continue;
    }
    if (objectLock) {
      const { ObjectLockConfiguration: lock } = await client.send(new GetObjectLockConfigurationCommand({ Bucket: bucket })).catch((err: unknown) => {
        throw new Error(`the lab's bucket ${bucket} (evidence.ledger) exists without Object Lock (${(err as Error).message}): remove it (lab down, then delete ${bucket} under the lab's s3/data) and run lab up again`, { cause: err });
      });
      if (lock?.ObjectLockEnabled !== 'Enabled') throw new Error(`the lab's bucket ${bucket} (evidence.ledger) exists without Object Lock: remove it and run lab up again`);
    }
  }
}

export async function startTwilioStandIn(host: string, port: number, recordFile: string, logFile: string): Promise<number> {
  const script = path.join(projectRoot(), 'scripts', 'lab', 'twilio-standin.mjs');
  const pid = startDaemon(process.execPath, [script, '--host', host, '--port', String(port), '--record', recordFile], logFile);
  return started('the Twilio stand-in', pid, host, port, logFile);
}

export interface ServiceRoute {
  host: string;
  port: number;
  database: string;
  user: string;
}

export async function startRegionalService(region: string, host: string, port: number, routes: Record<string, ServiceRoute>, logFile: string): Promise<number> {
  const entry = path.join(projectRoot(), 'dist', 'lab', 'service.js');
  if (!existsSync(entry)) throw new Error(`${entry} is missing: run 'npm run build'`);
  const pid = startDaemon(process.execPath, [entry, '--region', region, '--port', String(port), '--routes', JSON.stringify(routes)], logFile);
  return started(`the ${region} service`, pid, host, port, logFile);
}

export interface LabDnsLayout {
  zone: string;
  record: string;
  ttl: number;
  targets: Record<string, string>;
  /** The region that takes traffic at the start. */
  primaryRegion: string;
  /** Per database: the region of its primary and of its standby. */
  databases: Record<string, { primary: string; standby: string }>;
}

/** Creates the hosted zone if needed and writes the initial records: all traffic to the primary region. */
export async function seedLabDns(client: Route53Client, layout: LabDnsLayout): Promise<void> {
  const zoneName = layout.zone.endsWith('.') ? layout.zone : `${layout.zone}.`;
  const found = await client.send(new ListHostedZonesByNameCommand({ DNSName: zoneName, MaxItems: 1 }));
  let zoneId = found.HostedZones?.find((z) => z.Name === zoneName)?.Id;
  if (!zoneId) {
    const created = await client.send(new CreateHostedZoneCommand({ Name: zoneName, CallerReference: `lifeboat-lab-${Date.now()}` }));
    zoneId = created.HostedZone?.Id;
  }
  if (!zoneId) throw new Error(`could not create hosted zone ${zoneName}`);
  const fqdn = (n: string) => (n.endsWith('.') ? n : `${n}.`);
  const changes: Change[] = Object.entries(layout.targets).map(([set, target]) => ({
    Action: 'UPSERT',
    ResourceRecordSet: {
      Name: fqdn(layout.record),
      Type: 'CNAME',
      SetIdentifier: set,
      Weight: set === layout.primaryRegion ? 100 : 0,
      TTL: layout.ttl,
      ResourceRecords: [{ Value: target }],
    },
  }));
  for (const [database, regions] of Object.entries(layout.databases)) {
    for (const [failover, region] of [['PRIMARY', regions.primary], ['SECONDARY', regions.standby]] as const) {
      changes.push({
        Action: 'UPSERT',
        ResourceRecordSet: {
          Name: databaseRecordName(layout.zone, database),
          Type: 'CNAME',
          SetIdentifier: `${database}-${failover.toLowerCase()}`,
          Failover: failover,
          TTL: layout.ttl,
          ResourceRecords: [{ Value: databaseNodeName(layout.zone, database, region) }],
        },
      });
    }
  }
  await client.send(new ChangeResourceRecordSetsCommand({ HostedZoneId: zoneId.replace('/hostedzone/', ''), ChangeBatch: { Comment: 'lifeboat lab: initial topology', Changes: changes } }));
}

/** A Route 53 client for the lab's emulator (any credentials do). */
export function labRoute53(endpoint: string, region: string): Route53Client {
  return new Route53Client({ endpoint, region, credentials: { accessKeyId: 'lifeboat-lab', secretAccessKey: 'lifeboat-lab' } });
}
