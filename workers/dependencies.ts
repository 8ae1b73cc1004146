/**
 * The worker's composition root: the real provider clients, built once from
 * the validated config with the worker's secrets (database passwords, S3 keys,
 * the SMTP login, the Twilio token), for the activities. The CLI has a root of
 * its own (cli/readers.ts) that builds read-only clients and needs none of them.
 */
import nodemailer from 'nodemailer';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { clusterLocation, databaseNodes, nodeIn, postgresDatabase, postgresDatabases, type LoadedConfig } from '../config/load';
import type { BackupProvider } from '../activities/backup';
import type { DatabaseProvider } from '../activities/database';
import { createPostgresBackupProvider } from '../activities/postgres-backup';
import { createCloudSqlProvider } from '../activities/cloudsql';
import { s3EvidenceLedger, s3EvidenceStore, type EvidenceStore } from '../activities/evidence';
import { createRetainedObjectStore } from '../activities/s3';
import type { BackupsConfig } from '../config/schema';
import { startDigest } from '../contract/approvals';
// The Schedules the config asks for are defined once, where `schedules apply` writes them.
import { desiredSchedules } from '../cli/schedules';
import type { GovernanceDependencies } from '../activities/governance';
import { emailChannel } from '../activities/email';
import { journal, journalChannel, type NotificationChannel, type NotificationRoutes } from '../activities/notify';
import { createPostgresProvider } from '../activities/postgres';
import type { DivergenceProvider } from '../activities/divergence';
import { createPostgresDivergence } from '../activities/postgres-divergence';
import { createServiceControl } from '../activities/service';
import { createTwilioClient, smsChannel, voiceChannel } from '../activities/twilio';
import type { ActivityDependencies } from '../activities';
import { trustedPolicy } from '../config/governance';
import { startRun } from '../cli/runs';
import { sentinelRules } from '../activities/sentinel';
import type { SentinelTarget } from '../contract/sentinel';
import { RUNBOOK_WORKFLOW_TYPES } from '../contract/registry';
import { backupStores, bucketStore, cloudSqlClients, evidenceMirror, route53Traffic, storageClient, type S3Keys } from './clients';

/** A node's data directory, only when this worker can manage it: configured, or the lab's cluster exists here. */
function hostLocation(loaded: LoadedConfig, database: string, node: 'primary' | 'standby' | string) {
  const location = clusterLocation(loaded, database, node);
  const spec = postgresDatabase(loaded.config, database);
  const configured = (node === 'primary' || node === 'standby' ? spec[node] : nodeIn(spec, node, database)).dataDir !== undefined;
  return configured || existsSync(path.join(location.dataDir, 'PG_VERSION')) ? location : undefined;
}

/** A secret from the environment variable the config names; a clear error when it is missing. */
function secret(env: NodeJS.ProcessEnv, variable: string, what: string): string {
  const value = env[variable];
  if (value === undefined || value === '') throw new Error(`${what} names the environment variable ${variable}, which is not set for the worker`);
  return value;
}

export function buildActivityDependencies(loaded: LoadedConfig, env: NodeJS.ProcessEnv = process.env): ActivityDependencies {
  const { config } = loaded;
  const databases = new Map<string, DatabaseProvider>();
  const divergence = new Map<string, DivergenceProvider>();
  const backups = new Map<string, BackupProvider>();
  // One S3 client for the backup buckets and the evidence bucket, with the worker's keys.
  const s3 = config.backups ? storageClient(config.backups, s3Keys(config.backups, env)) : undefined;
  const stores = config.backups && s3 ? backupStores(config.backups, s3) : undefined;
  for (const [name, spec] of postgresDatabases(config)) {
    const password = spec.passwordEnv ? secret(env, spec.passwordEnv, `databases.${name}.passwordEnv`) : undefined;
    const locations = { primary: hostLocation(loaded, name, 'primary'), standby: hostLocation(loaded, name, 'standby') };
    const byRegion = Object.fromEntries(databaseNodes(spec).map((n) => [n.region, hostLocation(loaded, name, n.region)]));
    databases.set(name, createPostgresProvider(name, spec, { user: spec.user, password }, byRegion));
    divergence.set(name, createPostgresDivergence(name, spec, { user: spec.user, password }, locations));
    const scratch = config.backups?.scratch;
    if (spec.backup && stores && scratch) {
      backups.set(name, createPostgresBackupProvider(name, {
        database: spec.database,
        user: spec.user,
        password,
        nodes: databaseNodes(spec),
        stores,
        scratch: { host: scratch.host, port: scratch.port, user: scratch.user, password: scratch.passwordEnv ? secret(env, scratch.passwordEnv, 'backups.scratch.passwordEnv') : undefined },
      }));
    }
  }
  const startupChecks: Array<() => Promise<void>> = [];
  for (const [name, spec] of Object.entries(config.databases)) {
    if (spec.provider !== 'cloudsql') continue;
    const clients = cloudSqlClients(spec);
    startupChecks.push(async () => {
      try {
        await clients.checkCredentials();
      } catch (err) {
        throw new Error(`databases.${name} (Cloud SQL ${spec.project}): no Google credentials for the worker (${(err as Error).message}); set GOOGLE_APPLICATION_CREDENTIALS or run on a service account`, { cause: err });
      }
    });
    const provider = createCloudSqlProvider(name, spec, clients);
    databases.set(name, provider);
    if (spec.backup) backups.set(name, provider);
  }
  // The local mirror first: a bucket that is down (its region may be the one being evacuated) must not keep
  // the records from the mirror while the activity retries the bucket.
  const evidence: EvidenceStore[] = [evidenceMirror(loaded)];
  if (config.evidence.bucket && config.backups && s3) evidence.push(s3EvidenceStore(bucketStore(config.backups, config.evidence.bucket, s3)));
  // Each run's final head, written once under Object Lock retention on the same S3 with the same keys.
  const { ledger } = config.evidence;
  const evidenceLedger = ledger && s3 ? s3EvidenceLedger(createRetainedObjectStore(s3, ledger.bucket), ledger.retentionDays) : undefined;
  return {
    databases,
    divergence,
    backups,
    evidence,
    evidenceLedger,
    startupChecks,
    notifications: { routes: notificationRoutes(loaded, env), record: journal(loaded.journalPath) },
    traffic: config.dns ? route53Traffic(config.dns, env) : undefined,
    services: Object.keys(config.services).length > 0 ? createServiceControl(config.services) : undefined,
    governance: workerGovernance(loaded),
    ...(config.sentinels ? { sentinel: { loaded, startRun: (client, request) => startRun(client, loaded, { ...request, drill: false }) } } : {}),
  };
}

/**
 * What the worker admits runs with (contract/governance.ts): its own config's policy, and the runbooks whose
 * runs may start children and pre-approve them (`extraRunbookTypes`: a bench's or a test's own parents).
 */
export function workerGovernance(loaded: LoadedConfig, extraRunbookTypes: readonly string[] = []): GovernanceDependencies {
  const { config } = loaded;
  // The inputs the config schedules (what `lifeboat schedules apply` writes), by Schedule id: only those vouch for a run.
  const scheduled = new Map(desiredSchedules(loaded).map((d) => [d.scheduleId, startDigest(d.options.action.args?.[0])]));
  return {
    policy: (runbook) => trustedPolicy(config, runbook),
    runbookTypes: new Set([...RUNBOOK_WORKFLOW_TYPES, ...extraRunbookTypes]),
    scheduleInitiator: config.schedules?.initiator,
    scheduledInput: (scheduleId) => scheduled.get(scheduleId),
    ...(config.sentinels ? { sentinels: { identity: config.sentinels.identity, policyOf: (target) => watchedPolicy(loaded, target) } } : {}),
  };
}

/** The sentinel policy of a watched target, or undefined when the config's sentinels do not watch it. */
function watchedPolicy(loaded: LoadedConfig, target: SentinelTarget): { policy: 'confirm' | 'auto' | 'notify'; vetoSeconds: number } | undefined {
  try {
    const rules = sentinelRules(loaded, target);
    return { policy: rules.policy, vetoSeconds: rules.vetoSeconds };
  } catch {
    return undefined;
  }
}

/** Incident channel: email, then SMS to the on-call. Pages: SMS, then a voice call (email when there is no Twilio). */
function notificationRoutes(loaded: LoadedConfig, env: NodeJS.ProcessEnv): NotificationRoutes {
  const { notifications, people } = loaded.config;
  const phones = notifications.onCall.flatMap((who) => {
    const phone = Object.hasOwn(people, who) ? people[who]?.phone : undefined;
    return phone ? [phone] : [];
  });
  const email = notifications.email
    ? emailChannel({
        transport: nodemailer.createTransport({
          host: notifications.email.smtp.host,
          port: notifications.email.smtp.port,
          secure: notifications.email.smtp.secure,
          auth: notifications.email.smtp.userEnv
            ? { user: secret(env, notifications.email.smtp.userEnv, 'notifications.email.smtp.userEnv'), pass: secret(env, notifications.email.smtp.passwordEnv ?? '', 'notifications.email.smtp.passwordEnv') }
            : undefined,
          connectionTimeout: 5000,
          greetingTimeout: 5000,
          socketTimeout: 10000,
        }),
        from: notifications.email.from,
        to: notifications.email.incidentChannel,
      })
    : undefined;
  const twilioConfig = notifications.twilio;
  const twilio = twilioConfig
    ? createTwilioClient(twilioConfig.accountSid, secret(env, twilioConfig.authTokenEnv, 'notifications.twilio.authTokenEnv'), twilioConfig.apiBaseUrl)
    : undefined;
  const sms = twilio && twilioConfig ? smsChannel(twilio, twilioConfig.from, phones) : undefined;
  const voice = twilio && twilioConfig ? voiceChannel(twilio, twilioConfig.from, phones) : undefined;
  const present = (...channels: Array<NotificationChannel | undefined>) => channels.filter((c): c is NotificationChannel => c !== undefined);
  const incident = present(email, sms);
  const oncall = present(sms, voice);
  return {
    incident: incident.length > 0 ? incident : [journalChannel()],
    oncall: oncall.length > 0 ? oncall : email ? [email] : [journalChannel()],
  };
}

/** backups.storage's keys, from the environment variables the config names; unset: the AWS SDK's default chain. */
function s3Keys(backups: BackupsConfig, env: NodeJS.ProcessEnv): S3Keys | undefined {
  const { storage } = backups;
  return storage.accessKeyIdEnv
    ? { accessKeyId: secret(env, storage.accessKeyIdEnv, 'backups.storage.accessKeyIdEnv'), secretAccessKey: secret(env, storage.secretAccessKeyEnv ?? '', 'backups.storage.secretAccessKeyEnv') }
    : undefined;
}
