/**
 * The runbook configuration (e.g. runbooks/lab.yaml), validated at the edge:
 * everything after `loadConfig` is typed. Durations are seconds.
 */
import { z } from 'zod';
import { DEFAULT_TASK_QUEUE, ROLES } from '../contract/runbook';
import { isPublicKey } from '../contract/approvals';
import { dbPromotionPlan } from '../contract/db-promotion';
import { regionalEvacuationPlan } from '../contract/regional-evacuation';
import { failbackPlan } from '../contract/failback';
import { backupRestoreTestPlan, databaseBackupPlan } from '../contract/backup';

/** A runbook's step ids as a non-empty tuple, for z.enum. */
function planStepIds<const Id extends string>(plan: { readonly steps: readonly { readonly id: Id }[] }): [Id, ...Id[]] {
  const [first, ...rest] = plan.steps.map((s) => s.id);
  if (first === undefined) throw new Error('a runbook plan needs at least one step');
  return [first, ...rest];
}

const name = z
  .string()
  .regex(/^[a-z][a-z0-9_-]{0,62}$/, 'use lower-case letters, digits, "-" or "_", starting with a letter');
const seconds = z.number().positive('must be a positive number of seconds');
const port = z.number().int().min(1).max(65535);

const person = z.strictObject({
  name: z.string().optional(),
  roles: z.array(z.enum(ROLES)).min(1, 'give at least one role'),
  email: z.string().optional(),
  phone: z.string().regex(/^\+[1-9]\d{6,14}$/, 'an E.164 phone number such as +15550100001').optional(),
  /** Ed25519 public key (base64 of the raw 32 bytes, from `lifeboat keys generate`) that verifies this approver's signed decisions. */
  publicKey: z.string().refine(isPublicKey, 'a base64 Ed25519 public key of 32 bytes, as `lifeboat keys generate` prints it').optional(),
});

/**
 * How other regions reach an address: per region, the address of the link that region's connections pass
 * through (the lab: a Toxiproxy proxy per link, so one link can be cut alone). Absent for a region: it connects
 * directly. Probes, replication and a region's service use the address as seen from their own region.
 */
const via = z.record(name, z.strictObject({ host: z.string().min(1), port })).optional();

const node = z.strictObject({
  region: name,
  host: z.string().min(1),
  port,
  via,
  /** This node's data directory when the worker runs on its host (needed to rebuild it as a standby: failback). Relative to the config file; the lab's default is <stateDir>/pg/<db>-<region>. */
  dataDir: z.string().optional(),
  /** The replication slot this node streams through while it is a standby (absent: the database's `slot`). */
  slot: z.string().regex(/^[a-z0-9_]{1,63}$/, 'a replication slot name: lowercase letters, digits and underscores').optional(),
});

/** Regions a database may (allow) and may not (deny) be promoted in, such as data residency rules. */
const residency = z.strictObject({
  /** Only these regions (absent: any region with a node). */
  allow: z.array(name).min(1).optional(),
  deny: z.array(name).default([]),
});

/** A read-only query a restore test runs against the restored data. */
const sampleQuery = z.strictObject({
  name: z.string().min(1),
  sql: z.string().min(1).refine((q) => /^\s*(select|with)\b/i.test(q), 'a sample query must be a read-only SELECT (or WITH ... SELECT)'),
  /** The query must return at least this many rows. */
  minRows: z.number().int().min(0).default(1),
});

/** How a database is backed up and restore-tested (absent: it is not backed up by Lifeboat; the audit says so). */
const databaseBackup = z.strictObject({
  /** A key of backups.categories: its RPO bounds the newest backup's age, its restore target bounds a restore. */
  category: name,
  sampleQueries: z.array(sampleQuery).default([]),
});

const postgresDatabase = z.strictObject({
  provider: z.literal('postgres'),
  /** Name of the database inside the cluster, used by the write check. */
  database: z.string().min(1),
  user: z.string().min(1).default('postgres'),
  /** Name of the environment variable holding the password (never the password itself). */
  passwordEnv: z.string().optional(),
  primary: node,
  standby: node,
  /**
   * Further standbys, each in its own region and streaming through its own slot. A promotion chooses its
   * target among `standby` and these: streaming (planned) and allowed by `residency`, least WAL behind first,
   * then this order (`standby` first). After a promotion the others follow the new primary.
   */
  standbys: z.array(node).default([]),
  /** Replication slot the standby streams through (a node's own `slot` overrides it). */
  slot: name.default('lifeboat_standby'),
  residency: residency.optional(),
  rpoTargetSeconds: z.number().min(0, 'must be 0 or a positive number of seconds'),
  tier: z.number().int().min(1).max(3).default(1),
  backup: databaseBackup.optional(),
});

/** A Cloud SQL for PostgreSQL primary with a cross-region read replica, through the Cloud SQL Admin API. */
const cloudSqlDatabase = z.strictObject({
  provider: z.literal('cloudsql'),
  project: z.string().regex(/^[a-z][a-z0-9-]{4,28}[a-z0-9]$/, 'a Google Cloud project id such as acme-prod-db'),
  primary: z.strictObject({ instance: z.string().min(1), region: name }),
  replica: z.strictObject({ instance: z.string().min(1), region: name }),
  /** Restore tests restore into this instance (started for the test, stopped after). */
  stagingInstance: z.string().min(1).optional(),
  /** planned promotions: `switchover` (zero data loss, Enterprise Plus) or `promote-replica`. */
  promotion: z.enum(['switchover', 'promote-replica']).default('promote-replica'),
  /** A Cloud SQL Admin-compatible endpoint (a test stand-in); unset in production. */
  apiEndpoint: z.string().url().optional(),
  /** `google`: Application Default Credentials (production). `none`: no credentials, only for a local stand-in. */
  auth: z.enum(['google', 'none']).default('google'),
  operationPollMs: z.number().int().min(10).default(2000),
  operationTimeoutSeconds: seconds.default(1800),
  rpoTargetSeconds: z.number().min(0, 'must be 0 or a positive number of seconds'),
  tier: z.number().int().min(1).max(3).default(1),
  backup: databaseBackup.optional(),
});
const gate = z
  .strictObject({
    escalateAfterSeconds: seconds,
    timeoutSeconds: seconds,
    /** Two distinct approvers (neither the initiator) must approve: for production's riskiest gates. */
    twoPerson: z.boolean().default(false),
  })
  .refine((g) => g.escalateAfterSeconds <= g.timeoutSeconds, {
    message: 'escalateAfterSeconds must not exceed timeoutSeconds',
  });

const rto = z.strictObject({
  budgetSeconds: seconds,
  onBreach: z.enum(['continue', 'rollback']).default('continue'),
});

/** Minutes after a run on a target ends before another may start without --force by an admin. */
const cooldownMinutes = z.number().min(0).default(0);

const dbPromotionRunbook = z.strictObject({
  rto,
  cooldownMinutes,
  steps: z.partialRecord(z.enum(planStepIds(dbPromotionPlan)), z.strictObject({ budgetSeconds: seconds })).default({}),
  gates: z.strictObject({ promote: gate }),
  catchUpTimeoutSeconds: seconds.default(120),
  compensationAttempts: z.number().int().min(1).max(100).default(5),
  /** While a return watch waits for an unreachable old primary's region: how often it probes the node from the main worker. */
  returnWatchProbeSeconds: seconds.default(300),
});

/** A traffic ramp: percent on the target region at each stage, held with synthetic checks. */
const canary = z
  .strictObject({
    weights: z.array(z.number().int().min(1).max(100)).min(1).refine((w) => w.at(-1) === 100, 'the last canary weight must be 100'),
    holdSeconds: z.number().min(0).default(60),
    /** Seconds between synthetic checks while holding. */
    checkEverySeconds: seconds.default(10),
  })
  .prefault({ weights: [10, 50, 100] });

const evacuationRunbook = z.strictObject({
  rto,
  cooldownMinutes,
  steps: z.partialRecord(z.enum(planStepIds(regionalEvacuationPlan)), z.strictObject({ budgetSeconds: seconds })).default({}),
  gates: z.strictObject({ 'drain-traffic': gate, 'promote-databases': gate }),
  /** A failed database promotion: stop (abort) or carry on with the others (continue-degraded). */
  onPromotionFailure: z.enum(['abort', 'continue-degraded']).default('abort'),
  canary,
  compensationAttempts: z.number().int().min(1).max(100).default(5),
});

const failbackRunbook = z.strictObject({
  rto,
  cooldownMinutes,
  steps: z.partialRecord(z.enum(planStepIds(failbackPlan)), z.strictObject({ budgetSeconds: seconds })).default({}),
  /** `discard-divergence` opens only when a former primary diverged; without its own timers it uses the switchover's. */
  gates: z.strictObject({ switchover: gate, 'discard-divergence': gate.optional() }),
  /** The reconciliation report of a diverged node lists up to `keyLimit` keys and shows up to `rowLimit` rows per table. */
  reconciliation: z.strictObject({ keyLimit: z.number().int().min(0).max(100_000).default(1000), rowLimit: z.number().int().min(0).max(1000).default(50) }).prefault({}),
  canary,
  /** A rebuilt standby counts as caught up within this many bytes of WAL. */
  catchUpMaxLagBytes: z.number().int().min(0).default(1024 * 1024),
  catchUpTimeoutSeconds: seconds.default(600),
  compensationAttempts: z.number().int().min(1).max(100).default(5),
});

const databaseBackupRunbook = z.strictObject({
  rto: rto.prefault({ budgetSeconds: 3600 }),
  cooldownMinutes,
  steps: z.partialRecord(z.enum(planStepIds(databaseBackupPlan)), z.strictObject({ budgetSeconds: seconds })).default({}),
  compensationAttempts: z.number().int().min(1).max(100).default(5),
});

const backupRestoreTestRunbook = z.strictObject({
  rto: rto.prefault({ budgetSeconds: 3600 }),
  cooldownMinutes,
  steps: z.partialRecord(z.enum(planStepIds(backupRestoreTestPlan)), z.strictObject({ budgetSeconds: seconds })).default({}),
  compensationAttempts: z.number().int().min(1).max(100).default(5),
});

/** Where backups go and how they are tested. */
const backups = z.strictObject({
  /** S3-compatible storage: one bucket per region; a backup is written in its database's primary region and copied to the others. */
  storage: z.strictObject({
    /** An S3-compatible endpoint (the lab's versitygw); unset for AWS S3 itself. */
    endpoint: z.string().url().optional(),
    region: z.string().default('us-east-1'),
    /** Environment variables holding the access key (never the keys themselves); unset: the usual AWS sources. */
    accessKeyIdEnv: z.string().optional(),
    secretAccessKeyEnv: z.string().optional(),
    buckets: z.record(name, z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'an S3 bucket name')).refine((b) => Object.keys(b).length >= 2, 'give a bucket in at least two regions (two locations)'),
    /** when-required: for a server that rejects the SDK's default aws-chunked uploads with trailing checksums (versitygw accepts them). */
    checksums: z.enum(['when-supported', 'when-required']).default('when-supported'),
    /** Parts of a multipart upload, MiB (S3's minimum is 5). */
    partSizeMiB: z.number().int().min(5).default(8),
  }),
  /** The PostgreSQL server restore tests create their scratch databases on (never a production server). */
  scratch: z.strictObject({ host: z.string().min(1), port, user: z.string().min(1).default('postgres'), passwordEnv: z.string().optional() }).optional(),
  /** Verified backups kept per database; an older backup is deleted only when this many newer verified ones exist. */
  keepVerified: z.number().int().min(1).default(7),
  /** Data categories: the newest backup must be younger than rpoSeconds; a restore must finish within restoreTargetSeconds. */
  categories: z.record(name, z.strictObject({ rpoSeconds: seconds, restoreTargetSeconds: seconds })),
});

const DAYS = ['SUNDAY', 'MONDAY', 'TUESDAY', 'WEDNESDAY', 'THURSDAY', 'FRIDAY', 'SATURDAY'] as const;

/** When a Schedule fires, in schedules.timeZone: every given field must match (e.g. dayOfMonth 1-7 and MONDAY: the first Monday). */
const calendar = z.strictObject({
  month: z.array(z.number().int().min(1).max(12)).min(1).optional(),
  dayOfMonth: z.union([z.number().int().min(1).max(31), z.strictObject({ start: z.number().int().min(1).max(31), end: z.number().int().min(1).max(31) })]).optional(),
  dayOfWeek: z.enum(DAYS).optional(),
  hour: z.number().int().min(0).max(23).default(0),
  minute: z.number().int().min(0).max(59).default(0),
});

/** Drills and backups on Temporal Schedules (`lifeboat schedules apply`). */
const schedules = z.strictObject({
  /** IANA time zone of the calendars. */
  timeZone: z.string().default('UTC').refine((tz) => {
    try {
      new Intl.DateTimeFormat('en', { timeZone: tz });
      return true;
    } catch {
      return false;
    }
  }, 'an IANA time zone such as UTC or Europe/Berlin'),
  /** The configured person (commander role) scheduled runs start as. */
  initiator: name,
  /** A run missed while the server was down still starts if the server is back within this window. */
  catchupWindowMinutes: z.number().min(1).default(60),
  /** A failed scheduled run pauses its schedule until a person looks. */
  pauseOnFailure: z.boolean().default(true),
  /** A backup-restore-test of every database with backup:, e.g. monthly. */
  restoreTests: z.strictObject({ calendar }).optional(),
  /** A database-backup of every database with backup:, e.g. daily. */
  backups: z.strictObject({ calendar }).optional(),
  /** regional-evacuation drills (drill mode, planned), e.g. quarterly in a staging environment. */
  evacuationDrills: z.array(z.strictObject({ region: name, calendar })).default([]),
});

/** `lifeboat audit`: what a finding is measured against. */
const audit = z.strictObject({
  /** A failover drill older than this is TEST_OVERDUE. */
  drillMaxAgeDays: z.number().positive().default(90),
  /** Recovery-time target per tier (defaults: tier 1 one minute, tier 2 fifteen minutes, tier 3 four hours). */
  tiers: z
    .strictObject({ 1: z.strictObject({ rtoSeconds: seconds }), 2: z.strictObject({ rtoSeconds: seconds }), 3: z.strictObject({ rtoSeconds: seconds }) })
    .default({ 1: { rtoSeconds: 60 }, 2: { rtoSeconds: 900 }, 3: { rtoSeconds: 14400 } }),
  /** Services audited besides the databases: how each fails over (absent: it does not, NO_FAILOVER). */
  services: z
    .record(
      name,
      z.strictObject({
        tier: z.number().int().min(1).max(3),
        /** `regional-evacuation`: drilled and measured by evacuation runs; any other text describes a failover Lifeboat does not run. */
        failover: z.string().min(1).optional(),
      }),
    )
    .default({}),
});

/** What a sentinel does when a quorum of regions declares a target failed. */
const sentinelPolicy = z.strictObject({
  /**
   * `confirm`: start the runbook, its gates wait for people, the on-call is paged with the votes.
   * `auto`: the sentinel decides the `promote` gate with the quorum as its approval, after vetoSeconds
   * during which `lifeboat veto` (or a rejection) stops it. `notify`: page only, start nothing.
   */
  policy: z.enum(['confirm', 'auto', 'notify']).default('confirm'),
  vetoSeconds: z.number().min(0).default(60),
});

/** Sentinels: long-running workflows that watch targets from every region and start the runbook on a quorum. */
const sentinels = z.strictObject({
  /** The configured person (commander role) the sentinel starts runs as. */
  identity: name,
  /** The regions that vote; each probes from its own worker (`lifeboat worker --region`). A failure needs N/2 + 1 of them. */
  regions: z.array(name).min(3, 'a quorum needs at least three regions (a witness in a third one): with two, a cut link looks like a lost region'),
  healthCheckIntervalSeconds: seconds.default(30),
  /** A region counts as seeing the failure once it has failed every probe for this long. */
  failoverThresholdSeconds: seconds.default(300),
  /** A probe that has not answered by then (connect and query) is a failure: a hung node is not a wait. */
  probeTimeoutSeconds: seconds.default(3),
  /** Between two automatic runs on one target, besides the runbook's cooldown. */
  minIntervalMinutes: z.number().min(0).default(30),
  /** Per database tier (1, 2, 3); a tier not listed is `confirm`. */
  tiers: z.partialRecord(z.enum(['1', '2', '3']), sentinelPolicy).default({}),
  /** The watched targets: database primaries and regions' services (a region's service and its primaries lost: an evacuation). */
  databases: z.array(name).default([]),
  services: z.array(name).default([]),
});

/**
 * pg_promote() promotes a whole PostgreSQL server, every database on it: two entries on one server
 * (host and port) would be promoted together by a run that holds only one of them.
 */
function oneServerPerDatabase(databases: Record<string, { provider: string; primary?: unknown; standby?: unknown; standbys?: unknown }>, ctx: z.RefinementCtx): void {
  const seen = new Map<string, string>();
  for (const [db, spec] of Object.entries(databases)) {
    if (spec.provider !== 'postgres') continue;
    const nodes: Array<[PropertyKey[], { host: string; port: number }]> = [
      [['primary'], spec.primary as { host: string; port: number }],
      [['standby'], spec.standby as { host: string; port: number }],
      ...((spec.standbys ?? []) as Array<{ host: string; port: number }>).map((n, i): [PropertyKey[], { host: string; port: number }] => [['standbys', i], n]),
    ];
    for (const [where, node] of nodes) {
      const role = where.join('.');
      const key = `${node.host}:${node.port}`;
      const first = seen.get(key);
      if (first !== undefined && !first.startsWith(`${db}.`)) {
        ctx.addIssue({
          code: 'custom',
          path: [db, ...where],
          message: `${key} is the same PostgreSQL server as databases.${first}: pg_promote promotes a whole server, so both would be promoted together; give each database entry its own server (one entry per server)`,
        });
      } else if (first === undefined) seen.set(key, `${db}.${role}`);
    }
  }
}

/**
 * Several standbys: every node in its own region (a region holds one node of a database, so a node is named
 * by its region), on its own server, streaming through its own slot (two standbys of one primary cannot share
 * one); residency names regions that have a node.
 */
function checkStandbys(db: string, spec: z.infer<typeof postgresDatabase>, ctx: z.RefinementCtx): void {
  const nodes: Array<[PropertyKey[], z.infer<typeof node>]> = [[['primary'], spec.primary], [['standby'], spec.standby], ...spec.standbys.map((n, i): [PropertyKey[], z.infer<typeof node>] => [['standbys', i], n])];
  const regions = new Map<string, string>();
  const servers = new Map<string, string>();
  const slots = new Map<string, string>();
  for (const [index, [where, n]] of nodes.entries()) {
    const at = where.join('.');
    const slot = n.slot ?? spec.slot;
    for (const [seen, key, field, what] of [
      [regions, n.region, 'region', `region ${n.region} already has ${db}'s node`],
      [servers, `${n.host}:${n.port}`, 'port', `${n.host}:${n.port} is already ${db}'s node`],
      // The primary never streams while it is the primary; as a standby again (failback) it needs its own slot too.
      [slots, slot, 'slot', `slot ${slot} is already the slot of ${db}'s node`],
    ] as const) {
      const first = seen.get(key);
      // Primary against standby is checked above; slots matter only once a third node exists.
      const checked = field === 'slot' ? spec.standbys.length > 0 : index >= 2;
      if (first !== undefined && checked) {
        ctx.addIssue({ code: 'custom', path: ['databases', db, ...where, field], message: `${what} ${first}: ${field === 'slot' ? 'give each node its own slot (a node\'s slot:)' : field === 'region' ? 'one node of a database per region' : 'every node is its own server'}` });
      } else if (first === undefined) seen.set(key, at);
    }
  }
  for (const field of ['allow', 'deny'] as const) {
    for (const [i, region] of (spec.residency?.[field] ?? []).entries()) {
      if (!regions.has(region)) ctx.addIssue({ code: 'custom', path: ['databases', db, 'residency', field, i], message: `no node of ${db} is in region '${region}' (its nodes are in ${[...regions.keys()].join(', ')})` });
    }
  }
}

export const configSchema = z
  .strictObject({
    temporal: z
      .strictObject({
        address: z.string().default('127.0.0.1:7233'),
        namespace: z.string().default('default'),
        taskQueue: z.string().default(DEFAULT_TASK_QUEUE),
        uiUrl: z.string().url().optional(),
        /** Encrypt every payload (AES-256-GCM): a key ring from a file (relative to the config file) or an environment variable. */
        encryption: z
          .strictObject({
            keyFile: z.string().optional(),
            keysEnv: z.string().optional(),
            /** `lifeboat codec-server` (the lab starts one), on 127.0.0.1, for the Temporal UI. */
            codecServer: z
              .strictObject({
                port: port.default(8888),
                /** Lab only (a config with `lab:`): serve the UI without a bearer token. Never in production. */
                allowUnauthenticated: z.boolean().default(false),
              })
              .optional(),
          })
          .refine((e) => (e.keyFile === undefined) !== (e.keysEnv === undefined), 'give exactly one of keyFile and keysEnv')
          .optional(),
      })
      .prefault({}),
    lab: z
      .strictObject({
        /** Relative to the config file. */
        stateDir: z.string().default('../.lifeboat/lab'),
        temporal: z.strictObject({ port, uiPort: port }).prefault({ port: 7233, uiPort: 8233 }),
        /** Mailpit's HTTP API (the readable inbox of the lab's SMTP server). */
        inbox: z.strictObject({ port }).prefault({ port: 55526 }),
      })
      .prefault({}),
    notifications: z
      .strictObject({
        /** JSON-lines record of every delivery attempt, relative to the config file. No default: a lab path would be wrong anywhere else. */
        journal: z.string({ error: 'give notifications.journal: where the record of every notification attempt is written (JSON lines, relative to this file; the lab uses ../.lifeboat/lab/notifications.jsonl)' }).min(1),
        /** The incident channel: email first, SMS when SMTP is down. */
        email: z
          .strictObject({
            smtp: z.strictObject({ host: z.string().min(1), port, secure: z.boolean().default(false), userEnv: z.string().optional(), passwordEnv: z.string().optional() }),
            from: z.string().min(3),
            incidentChannel: z.array(z.string().min(3)).min(1, 'give at least one address'),
          })
          .optional(),
        twilio: z
          .strictObject({
            accountSid: z.string().regex(/^AC[0-9a-fA-F]{32}$/, 'a Twilio account SID: AC followed by 32 hex digits'),
            /** Environment variable holding the auth token (never the token itself). */
            authTokenEnv: z.string().min(1),
            from: z.string().regex(/^\+[1-9]\d{6,14}$/, 'an E.164 phone number such as +15550100000'),
            /** A Twilio-compatible API base URL (the lab's stand-in); unset in production. */
            apiBaseUrl: z.string().url().optional(),
          })
          .optional(),
        /** People paged by SMS (then voice): their `phone` in people. */
        onCall: z.array(name).default([]),
        /** Minutes between status updates to the incident channel while a run is open (0: none). */
        statusEveryMinutes: z.number().min(0).default(15),
      }, { error: (issue) => (issue.input === undefined ? 'give notifications: with at least journal: (where every notification attempt is recorded, relative to this file)' : undefined) }),
    /** Route 53: weighted records for the app, failover pairs for the databases. */
    dns: z
      .strictObject({
        /** A Route 53-compatible endpoint (the lab's moto); unset in production. */
        endpoint: z.string().url().optional(),
        region: z.string().default('us-east-1'),
        zone: z.string().min(1),
        app: z.strictObject({
          record: z.string().min(1),
          ttl: z.number().int().min(1).default(30),
          /** CNAME target per weighted set: each region, and `maintenance`. */
          targets: z.record(name, z.string().min(1)),
        }),
        syncPollMs: z.number().int().min(10).default(30_000),
        syncTimeoutSeconds: seconds.default(600),
      })
      .optional(),
    /** The application's control plane per region (freeze, re-point, synthetic checks). */
    services: z.record(name, z.strictObject({ url: z.string().url(), /** The service's URL as another region reaches it (its link). */ via: z.record(name, z.string().url()).optional() })).default({}),
    people: z.record(name, person).refine((p) => Object.keys(p).length > 0, 'configure at least one person'),
    databases: z.record(name, z.discriminatedUnion('provider', [postgresDatabase, cloudSqlDatabase])).superRefine(oneServerPerDatabase),
    backups: backups.optional(),
    schedules: schedules.optional(),
    sentinels: sentinels.optional(),
    audit: audit.prefault({}),
    /** The runs' evidence chains: JSON lines per run in this bucket (on backups.storage's S3) and in a local mirror directory. */
    evidence: z
      .strictObject({
        bucket: z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'an S3 bucket name').optional(),
        /** Relative to the config file. No default: a lab path would be wrong anywhere else. */
        mirrorDir: z.string({ error: 'give evidence.mirrorDir: the local directory that mirrors every run\'s evidence chain (relative to this file; the lab uses ../.lifeboat/lab/evidence)' }).min(1),
        /**
         * Each run's final head, written once to this bucket (on backups.storage's S3) under S3 Object Lock
         * COMPLIANCE retention for `retentionDays`; the bucket must be created with Object Lock enabled.
         */
        ledger: z
          .strictObject({
            bucket: z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'an S3 bucket name'),
            retentionDays: z.number().int().min(1, 'at least 1 day').max(36_500),
          })
          .optional(),
      }, { error: (issue) => (issue.input === undefined ? 'give evidence: with at least mirrorDir: (the local directory that mirrors every run\'s evidence chain, relative to this file)' : undefined) }),
    /** Signed gate decisions: `required` in production (identity by key), `optional` in a lab (identity by --as). */
    approvals: z.strictObject({ signatures: z.enum(['optional', 'required']).default('optional') }).prefault({}),
    runbooks: z.strictObject({
      'db-promotion': dbPromotionRunbook,
      'regional-evacuation': evacuationRunbook.optional(),
      failback: failbackRunbook.optional(),
      'database-backup': databaseBackupRunbook.prefault({}),
      'backup-restore-test': backupRestoreTestRunbook.prefault({}),
    }),
  })
  .superRefine((config, ctx) => {
    for (const [db, spec] of Object.entries(config.databases)) {
      if (spec.backup) {
        if (!config.backups) ctx.addIssue({ code: 'custom', path: ['databases', db, 'backup'], message: 'a database with backup: needs the top-level backups: (storage, categories)' });
        else if (!Object.hasOwn(config.backups.categories, spec.backup.category)) {
          ctx.addIssue({ code: 'custom', path: ['databases', db, 'backup', 'category'], message: `'${spec.backup.category}' is not under backups.categories (${Object.keys(config.backups.categories).join(', ') || 'none'})` });
        }
        if (spec.provider === 'postgres' && config.backups && !config.backups.scratch) {
          ctx.addIssue({ code: 'custom', path: ['backups', 'scratch'], message: `restore tests of ${db} need a scratch PostgreSQL server (backups.scratch)` });
        }
        if (spec.provider === 'postgres' && config.backups && !Object.hasOwn(config.backups.storage.buckets, spec.primary.region)) {
          ctx.addIssue({ code: 'custom', path: ['backups', 'storage', 'buckets'], message: `give a bucket in ${db}'s primary region '${spec.primary.region}'` });
        }
        if (spec.provider === 'cloudsql' && !spec.stagingInstance) {
          ctx.addIssue({ code: 'custom', path: ['databases', db, 'stagingInstance'], message: 'restore tests of a Cloud SQL database need a staging instance to restore into' });
        }
      }
      if (spec.provider === 'cloudsql') {
        if (spec.primary.region === spec.replica.region) {
          ctx.addIssue({ code: 'custom', path: ['databases', db, 'replica', 'region'], message: 'the replica must be in another region than the primary' });
        }
        if (spec.auth === 'none' && !spec.apiEndpoint) {
          ctx.addIssue({ code: 'custom', path: ['databases', db, 'auth'], message: "auth: none is only for a local stand-in: give apiEndpoint, or use auth: google" });
        }
        if (spec.stagingInstance === spec.primary.instance || spec.stagingInstance === spec.replica.instance) {
          ctx.addIssue({ code: 'custom', path: ['databases', db, 'stagingInstance'], message: 'a restore overwrites the staging instance: it must be neither the primary nor the replica' });
        }
        continue;
      }
      if (spec.primary.region === spec.standby.region) {
        ctx.addIssue({ code: 'custom', path: ['databases', db, 'standby', 'region'], message: 'the standby must be in another region than the primary' });
      }
      if (spec.primary.host === spec.standby.host && spec.primary.port === spec.standby.port) {
        ctx.addIssue({ code: 'custom', path: ['databases', db, 'standby', 'port'], message: 'primary and standby must be different servers' });
      }
      checkStandbys(db, spec, ctx);
    }
    for (const who of config.notifications.onCall) {
      const person = Object.hasOwn(config.people, who) ? config.people[who] : undefined;
      if (!person) ctx.addIssue({ code: 'custom', path: ['notifications', 'onCall'], message: `'${who}' is not under people:` });
      else if (!person.phone) ctx.addIssue({ code: 'custom', path: ['people', who, 'phone'], message: 'on-call people need a phone number to be paged' });
    }
    if (config.runbooks['regional-evacuation'] || config.runbooks.failback) {
      const regions = new Set(Object.values(config.databases).flatMap((d) => [d.primary.region, d.provider === 'postgres' ? d.standby.region : d.replica.region]));
      for (const region of regions) {
        if (!Object.hasOwn(config.services, region)) {
          ctx.addIssue({ code: 'custom', path: ['services'], message: `regional-evacuation needs the service of region '${region}' (services.${region}.url)` });
        }
      }
      if (!config.dns) ctx.addIssue({ code: 'custom', path: ['dns'], message: 'regional-evacuation needs dns: to move traffic' });
      else {
        for (const target of [...regions, 'maintenance']) {
          if (!Object.hasOwn(config.dns.app.targets, target)) {
            ctx.addIssue({ code: 'custom', path: ['dns', 'app', 'targets'], message: `give a CNAME target for '${target}'` });
          }
        }
      }
    }
    if (config.schedules) {
      const who = config.schedules.initiator;
      const person = Object.hasOwn(config.people, who) ? config.people[who] : undefined;
      if (!person) ctx.addIssue({ code: 'custom', path: ['schedules', 'initiator'], message: `'${who}' is not under people:` });
      else if (!person.roles.includes('commander')) ctx.addIssue({ code: 'custom', path: ['schedules', 'initiator'], message: `'${who}' needs the commander role: scheduled runs start as them` });
      for (const [i, drill] of config.schedules.evacuationDrills.entries()) {
        if (!Object.values(config.databases).some((d) => d.primary.region === drill.region)) {
          ctx.addIssue({ code: 'custom', path: ['schedules', 'evacuationDrills', i, 'region'], message: `no database has its primary in '${drill.region}'` });
        }
      }
    }
    if (config.sentinels) {
      const s = config.sentinels;
      const who = Object.hasOwn(config.people, s.identity) ? config.people[s.identity] : undefined;
      if (!who) ctx.addIssue({ code: 'custom', path: ['sentinels', 'identity'], message: `'${s.identity}' is not under people:` });
      else if (!who.roles.includes('commander')) ctx.addIssue({ code: 'custom', path: ['sentinels', 'identity'], message: `'${s.identity}' needs the commander role: the sentinel starts runs as them` });
      else if (who.roles.includes('approver')) ctx.addIssue({ code: 'custom', path: ['sentinels', 'identity'], message: `'${s.identity}' must not have the approver role: the sentinel decides a gate only through its quorum (policy auto), never as a person` });
      if (new Set(s.regions).size !== s.regions.length) ctx.addIssue({ code: 'custom', path: ['sentinels', 'regions'], message: 'list each region once' });
      if (s.failoverThresholdSeconds < 2 * s.healthCheckIntervalSeconds) ctx.addIssue({ code: 'custom', path: ['sentinels', 'failoverThresholdSeconds'], message: `at least two probe intervals (${2 * s.healthCheckIntervalSeconds}s): one failed probe is never a failure` });
      if (s.probeTimeoutSeconds >= s.healthCheckIntervalSeconds) ctx.addIssue({ code: 'custom', path: ['sentinels', 'probeTimeoutSeconds'], message: 'must be shorter than healthCheckIntervalSeconds' });
      for (const [i, db] of s.databases.entries()) {
        const spec = Object.hasOwn(config.databases, db) ? config.databases[db] : undefined;
        if (!spec) ctx.addIssue({ code: 'custom', path: ['sentinels', 'databases', i], message: `'${db}' is not under databases:` });
        else if (spec.provider !== 'postgres') ctx.addIssue({ code: 'custom', path: ['sentinels', 'databases', i], message: `'${db}' is ${spec.provider}: its provider watches its own health; sentinels probe self-managed PostgreSQL` });
        else if (!s.regions.includes(spec.primary.region)) ctx.addIssue({ code: 'custom', path: ['sentinels', 'regions'], message: `${db}'s primary region '${spec.primary.region}' must be one of the voting regions` });
      }
      for (const [i, svc] of s.services.entries()) {
        if (!Object.hasOwn(config.services, svc)) ctx.addIssue({ code: 'custom', path: ['sentinels', 'services', i], message: `'${svc}' is not under services:` });
      }
      if (s.services.length > 0 && !config.runbooks['regional-evacuation']) ctx.addIssue({ code: 'custom', path: ['sentinels', 'services'], message: 'a lost region is recovered by regional-evacuation: configure runbooks.regional-evacuation' });
    }
    if (config.evidence.bucket && !config.backups) {
      ctx.addIssue({ code: 'custom', path: ['evidence', 'bucket'], message: 'the evidence bucket lives on backups.storage: configure backups: too, or leave out the bucket (local mirror only)' });
    }
    const ledger = config.evidence.ledger;
    if (ledger && !config.backups) {
      ctx.addIssue({ code: 'custom', path: ['evidence', 'ledger'], message: 'the evidence ledger lives on backups.storage: configure backups: too, or leave out evidence.ledger' });
    }
    if (ledger && (ledger.bucket === config.evidence.bucket || Object.values(config.backups?.storage.buckets ?? {}).includes(ledger.bucket))) {
      ctx.addIssue({ code: 'custom', path: ['evidence', 'ledger', 'bucket'], message: `'${ledger.bucket}' is also the evidence bucket or a backup bucket: the ledger needs a bucket of its own, created with Object Lock` });
    }
    if (config.approvals.signatures === 'required') {
      for (const [who, p] of Object.entries(config.people)) {
        if (p.roles.includes('approver') && !p.publicKey) ctx.addIssue({ code: 'custom', path: ['people', who, 'publicKey'], message: 'approvals.signatures is required: every approver needs a publicKey (lifeboat keys generate)' });
      }
    }
    const approvers = Object.entries(config.people).filter(([, p]) => p.roles.includes('approver'));
    if (approvers.length === 0) {
      ctx.addIssue({ code: 'custom', path: ['people'], message: 'no person has the approver role: no gate could ever be approved' });
    }
  });

export type LifeboatConfig = z.infer<typeof configSchema>;
export type DatabaseConfig = LifeboatConfig['databases'][string];
export type PostgresDatabaseConfig = Extract<DatabaseConfig, { provider: 'postgres' }>;
export type CloudSqlDatabaseConfig = Extract<DatabaseConfig, { provider: 'cloudsql' }>;
export type BackupsConfig = NonNullable<LifeboatConfig['backups']>;
export type SchedulesConfig = NonNullable<LifeboatConfig['schedules']>;
export type CalendarConfig = z.infer<typeof calendar>;
export type AuditConfig = LifeboatConfig['audit'];
export type SentinelsConfig = NonNullable<LifeboatConfig['sentinels']>;
export type SentinelPolicyConfig = z.infer<typeof sentinelPolicy>;
export type DbPromotionRunbookConfig = LifeboatConfig['runbooks']['db-promotion'];
export type EvacuationRunbookConfig = NonNullable<LifeboatConfig['runbooks']['regional-evacuation']>;
