/**
 * Cloud SQL for PostgreSQL adapter behind the DatabaseProvider and BackupProvider
 * interfaces, through the official `@google-cloud/sql` v1 clients (Cloud SQL
 * Admin API). Only this file speaks to Cloud SQL.
 *
 * The Admin API manages instances, not data: it can promote a replica, switch
 * roles, take and restore backup runs and start or stop an instance, but it
 * cannot run a query. Whatever needs a database connection (a write check, row
 * counts, sample queries, a WAL position) is reported as not measured rather
 * than invented. Every mutating call returns a Cloud SQL `Operation` that is
 * polled with `operations.get` until it is DONE.
 */
import { protos, v1 } from '@google-cloud/sql';
import { ApplicationFailure } from '@temporalio/common';
import type {
  ArtifactCheck,
  BackupCopy,
  BackupListing,
  BackupManifest,
  RestoreOutcome,
  RestoreVerification,
  SampleQuery,
  ScratchTarget,
} from '../contract/backup';
import type {
  FenceResult,
  NodeEndpoint,
  PromotionOutcome,
  ReplicationInspection,
  RpoMeasurement,
  WriteCheck,
} from '../contract/database';
import { FailureType } from '../contract/failures';
import type { BackupProvider, Progress } from './backup';
import type { DatabaseProvider, RebuildOutcome } from './database';

type Operation = protos.google.cloud.sql.v1.IOperation;
type DatabaseInstance = protos.google.cloud.sql.v1.IDatabaseInstance;
type BackupRun = protos.google.cloud.sql.v1.IBackupRun;
type Timestamp = protos.google.protobuf.ITimestamp;
const sql = protos.google.cloud.sql.v1;

/** One Cloud SQL for PostgreSQL primary with a cross-region read replica (the `cloudsql` entry of `databases:`). */
export interface CloudSqlDatabaseSpec {
  provider: 'cloudsql';
  project: string;
  primary: { instance: string; region: string };
  replica: { instance: string; region: string };
  /** Restore tests restore into this instance (started for the test, stopped after); it must be neither node of the pair. */
  stagingInstance?: string;
  rpoTargetSeconds: number;
  tier: number;
  /** How `promoteStandby` promotes: `switchover` (planned, zero data loss, the old primary becomes the replica) or `promote-replica` (default). */
  promotion?: 'switchover' | 'promote-replica';
  /** How often a Cloud SQL operation is polled, ms (default 2000). */
  operationPollMs?: number;
  /** How long an operation may take before the call gives up waiting, seconds (default 1800). */
  operationTimeoutSeconds?: number;
}

/** The three official clients the provider calls, built once per worker. */
export interface CloudSqlClients {
  instances: v1.SqlInstancesServiceClient;
  backupRuns: v1.SqlBackupRunsServiceClient;
  operations: v1.SqlOperationsServiceClient;
  /**
   * Resolves the credentials once, so a worker without them fails at start with a clear error.
   * Call it before the first API call: the generated clients turn a credentials failure during
   * their lazy set-up into an unhandled rejection on every call (googleapis/google-cloud-node#9085),
   * whereas credentials resolved here are cached and reused by that set-up.
   */
  checkCredentials(): Promise<void>;
  close(): Promise<void>;
}

type SqlClientOptions = NonNullable<ConstructorParameters<typeof v1.SqlInstancesServiceClient>[0]>;

export interface CloudSqlClientOptions {
  /**
   * A Cloud SQL Admin-compatible endpoint instead of sqladmin.googleapis.com:
   * a host name, or a URL (`http://127.0.0.1:8080`) whose scheme and port are used. Unset in production.
   */
  apiEndpoint?: string;
  port?: number;
  protocol?: 'http' | 'https';
  /** HTTP/1.1 REST + JSON instead of gRPC; the default when `apiEndpoint` is set. */
  fallback?: boolean;
  /**
   * Replaces Application Default Credentials: for a local endpoint, google-auth-library's
   * `PassThroughClient` sends no credentials and never looks for any (no metadata-server probe).
   */
  authClient?: SqlClientOptions['authClient'];
}

/**
 * Builds the instances, backup-runs and operations clients. Without `apiEndpoint` they
 * reach sqladmin.googleapis.com with Application Default Credentials.
 */
export function createCloudSqlClients(opts: CloudSqlClientOptions = {}): CloudSqlClients {
  const options: SqlClientOptions = {};
  if (opts.apiEndpoint) {
    const url = /^[a-z]+:\/\//i.test(opts.apiEndpoint) ? new URL(opts.apiEndpoint) : undefined;
    const protocol = opts.protocol ?? (url ? (url.protocol.replace(/:$/, '') === 'http' ? 'http' : 'https') : undefined);
    options.apiEndpoint = url ? url.hostname : opts.apiEndpoint;
    const port = opts.port ?? (url ? (url.port ? Number(url.port) : protocol === 'http' ? 80 : 443) : undefined);
    if (port !== undefined) options.port = port;
    if (protocol) options.protocol = protocol;
    // A stand-in or proxy speaks the REST surface (HTTP/1.1 + JSON), not gRPC.
    options.fallback = opts.fallback ?? true;
  } else if (opts.fallback !== undefined) {
    options.fallback = opts.fallback;
  }
  if (opts.authClient) options.authClient = opts.authClient;
  const instances = new v1.SqlInstancesServiceClient(options);
  const backupRuns = new v1.SqlBackupRunsServiceClient(options);
  const operations = new v1.SqlOperationsServiceClient(options);
  return {
    instances,
    backupRuns,
    operations,
    async checkCredentials() {
      // `auth` is a GoogleAuth unless an auth client was given (then it is that client, with nothing to resolve).
      const auths = [instances.auth, backupRuns.auth, operations.auth];
      await Promise.all(auths.map((auth) => ('getClient' in auth && typeof auth.getClient === 'function' ? auth.getClient() : undefined)));
    },
    async close() {
      await Promise.all([instances.close(), backupRuns.close(), operations.close()]);
    },
  };
}

const POSTGRES_PORT = 5432;
const DEFAULT_POLL_MS = 2000;
const DEFAULT_OPERATION_TIMEOUT_SECONDS = 1800;
const LIST_PAGE_SIZE = 100;
/** Description prefix of the backup runs Lifeboat takes: the rest is the backup id. */
const DESCRIPTION_PREFIX = 'lifeboat:';
/** Backups Lifeboat did not take (automated ones) get `cloudsql-<backup run id>`. */
const FOREIGN_BACKUP_ID = /^cloudsql-(\d+)$/;
/** gRPC status codes (google-gax maps HTTP statuses to them). */
const Code = { NotFound: 5, InvalidArgument: 3, PermissionDenied: 7, Unimplemented: 12, Unauthenticated: 16, Unavailable: 14, DeadlineExceeded: 4 } as const;
const NON_RETRYABLE_CODES: ReadonlySet<number> = new Set([Code.InvalidArgument, Code.NotFound, Code.PermissionDenied, Code.Unimplemented, Code.Unauthenticated]);
/** Consecutive transient failures of `operations.get` tolerated while an operation runs. */
const MAX_POLL_ERRORS = 5;

/** An enum field as its name: the clients decode enums as names, but the types also allow numbers. */
function enumName(value: string | number | null | undefined, names: Record<number, string>): string | undefined {
  if (value === null || value === undefined) return undefined;
  return typeof value === 'number' ? names[value] : value;
}

const operationStatus = (op: Operation) => enumName(op.status, sql.Operation.SqlOperationStatus);
const operationType = (op: Operation) => enumName(op.operationType, sql.Operation.SqlOperationType);
const instanceState = (i: DatabaseInstance) => enumName(i.state, sql.DatabaseInstance.SqlInstanceState);
const instanceType = (i: DatabaseInstance) => enumName(i.instanceType, sql.SqlInstanceType);
const activationPolicy = (i: DatabaseInstance) => enumName(i.settings?.activationPolicy, sql.Settings.SqlActivationPolicy);
const runStatus = (r: BackupRun) => enumName(r.status, sql.SqlBackupRunStatus);

/** A protobuf Timestamp (seconds as a string, a number or a Long) as ISO 8601. */
function isoOf(t: Timestamp | null | undefined): string | undefined {
  if (!t || t.seconds === null || t.seconds === undefined) return undefined;
  const seconds = Number(String(t.seconds));
  if (!Number.isFinite(seconds) || seconds <= 0) return undefined;
  return new Date(seconds * 1000 + Math.floor((t.nanos ?? 0) / 1e6)).toISOString();
}

/** An int64 (backup run id) as its decimal string. */
function idOf(value: number | string | { toString(): string } | null | undefined): string | undefined {
  if (value === null || value === undefined) return undefined;
  const s = String(value);
  return s === '' || s === '0' ? undefined : s;
}

function grpcCode(err: unknown): number | undefined {
  const code = typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
  return typeof code === 'number' ? code : undefined;
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * A provider for one Cloud SQL pair in one orientation: `replica` is the instance
 * to promote, `primary` the current primary. `reversed()` swaps them, for failback.
 * Backups are taken of, and restored from, the configured `primary`.
 */
export function createCloudSqlProvider(name: string, spec: CloudSqlDatabaseSpec, clients: CloudSqlClients): DatabaseProvider & BackupProvider {
  const { project } = spec;
  const pollMs = spec.operationPollMs ?? DEFAULT_POLL_MS;
  const timeoutMs = (spec.operationTimeoutSeconds ?? DEFAULT_OPERATION_TIMEOUT_SECONDS) * 1000;
  const promotion = spec.promotion ?? 'promote-replica';
  const endpoint = (node: { instance: string; region: string }, instance?: DatabaseInstance): NodeEndpoint => ({
    region: node.region,
    host: instance?.ipAddresses?.find((a) => a.ipAddress && enumName(a.type, sql.SqlIpAddressType) !== 'OUTGOING')?.ipAddress ?? node.instance,
    port: POSTGRES_PORT,
  });
  const primary = endpoint(spec.primary);
  const standby = endpoint(spec.replica);
  const where = (instance: string) => `Cloud SQL instance ${project}/${instance}`;
  /** Where Cloud SQL keeps a backup run: with the instance that took it. */
  const locationOf = (run: BackupRun): string => `cloudsql:${project}/${ownerOf(run)}`;

  /** One Admin API call; its errors keep their cause and say which call failed. */
  async function api<T>(what: string, call: () => Promise<[T, ...unknown[]]>): Promise<T> {
    try {
      const [response] = await call();
      return response;
    } catch (err) {
      const code = grpcCode(err);
      throw ApplicationFailure.create({
        type: FailureType.ProviderOperationFailed,
        message: `Cloud SQL Admin API ${what} failed: ${errorMessage(err)}`,
        nonRetryable: code !== undefined && NON_RETRYABLE_CODES.has(code),
        cause: err instanceof Error ? err : undefined,
        details: [{ call: what, code }],
      });
    }
  }

  /** Like `api`, but a resource that does not exist is `undefined`. */
  async function apiMaybe<T>(what: string, call: () => Promise<[T, ...unknown[]]>): Promise<T | undefined> {
    try {
      const [response] = await call();
      return response;
    } catch (err) {
      if (grpcCode(err) === Code.NotFound) return undefined;
      return api(what, () => Promise.reject(err));
    }
  }

  const getInstance = (instance: string) => api(`instances.get ${project}/${instance}`, () => clients.instances.get({ project, instance }));

  async function tryInstance(instance: string): Promise<{ ok: true; value: DatabaseInstance } | { ok: false; error: string }> {
    try {
      return { ok: true, value: await getInstance(instance) };
    } catch (err) {
      return { ok: false, error: errorMessage(err) };
    }
  }

  /** Polls `operations.get` until the operation is DONE; an operation DONE with errors fails with Google's messages. */
  async function waitForOperation(started: Operation, what: string, progress?: Progress, signal?: AbortSignal): Promise<Operation> {
    const opName = started.name;
    if (!opName) {
      throw ApplicationFailure.nonRetryable(`${what}: the Admin API returned no operation name to wait on`, FailureType.ProviderOperationFailed);
    }
    const deadline = Date.now() + timeoutMs;
    let op = started;
    let polls = 0;
    let pollErrors = 0;
    while (operationStatus(op) !== 'DONE') {
      if (Date.now() >= deadline) {
        // Retryable: the operation still runs at Google, and a retry of the activity resumes waiting on it.
        throw ApplicationFailure.create({
          type: FailureType.ProviderOperationFailed,
          message: `${what}: operation ${opName} is still ${operationStatus(op) ?? 'unknown'} after ${timeoutMs / 1000}s`,
          details: [{ operation: opName, status: operationStatus(op) }],
        });
      }
      await sleep(pollMs, signal);
      try {
        [op] = await clients.operations.get({ project, operation: opName });
        pollErrors = 0;
      } catch (err) {
        const code = grpcCode(err);
        // One lost poll must not abandon an operation that may take half an hour.
        if ((code === Code.Unavailable || code === Code.DeadlineExceeded) && ++pollErrors < MAX_POLL_ERRORS) continue;
        return api(`operations.get ${opName}`, () => Promise.reject(err));
      }
      polls += 1;
      progress?.({ operation: opName, operationType: operationType(op), status: operationStatus(op), polls });
    }
    const errors = op.error?.errors ?? [];
    if (errors.length > 0) {
      throw ApplicationFailure.create({
        type: FailureType.ProviderOperationFailed,
        nonRetryable: true,
        message: `${what}: Cloud SQL operation ${opName} (${operationType(op) ?? 'unknown type'}) failed: ${errors.map((e) => `${e.message ?? 'no message'}${e.code ? ` [${e.code}]` : ''}`).join('; ')}`,
        details: [{ operation: opName, operationType: operationType(op), errors: errors.map((e) => ({ code: e.code ?? undefined, message: e.message ?? undefined })) }],
      });
    }
    return op;
  }

  /** An operation of one of `types` still running on `instance` (a retried activity resumes waiting on it). */
  async function inFlight(instance: string, types: readonly string[]): Promise<Operation | undefined> {
    const list = await api(`operations.list ${project}/${instance}`, () => clients.operations.list({ project, instance, maxResults: 20 }));
    return (list.items ?? []).find((op) => types.includes(operationType(op) ?? '') && operationStatus(op) !== 'DONE');
  }

  const isPrimaryOf = (master: string | null | undefined, of: string) => master === of || master === `${project}:${of}`;
  /** RUNNABLE also means "stopped by its owner": only ALWAYS (or ON_DEMAND) serves. */
  const serving = (i: DatabaseInstance) => instanceState(i) === 'RUNNABLE' && activationPolicy(i) !== 'NEVER';
  const stateOf = (i: DatabaseInstance) => `state ${instanceState(i) ?? 'unknown'}, activation policy ${activationPolicy(i) ?? 'unknown'}`;

  // ---------- backups ----------

  const descriptionOf = (backupId: string) => `${DESCRIPTION_PREFIX}${backupId}`;
  const backupIdOf = (run: BackupRun) =>
    run.description?.startsWith(DESCRIPTION_PREFIX) ? run.description.slice(DESCRIPTION_PREFIX.length) : `cloudsql-${idOf(run.id) ?? '?'}`;

  /** Every backup run of the primary, newest first (the API's order), across pages. */
  /** Backup runs of both instances of the pair: after a failover, the older backups belong to the old primary. */
  async function allRuns(): Promise<BackupRun[]> {
    const runs: BackupRun[] = [];
    for (const instance of [spec.primary.instance, spec.replica.instance]) {
      let pageToken: string | undefined;
      do {
        const token = pageToken;
        const page = await api(`backupRuns.list ${project}/${instance}`, () =>
          clients.backupRuns.list({ project, instance, maxResults: LIST_PAGE_SIZE, ...(token ? { pageToken: token } : {}) }),
        );
        runs.push(...(page.items ?? []).map((run) => ({ ...run, instance: run.instance || instance })));
        pageToken = page.nextPageToken || undefined;
      } while (pageToken);
    }
    // Newest first, whichever instance took them.
    return runs.sort((a, b) => (isoOf(b.enqueuedTime) ?? '').localeCompare(isoOf(a.enqueuedTime) ?? ''));
  }

  /** The instance of the pair that serves as the primary now (backups of a read replica are refused). */
  async function currentPrimaryInstance(): Promise<string> {
    for (const node of [spec.primary, spec.replica]) {
      const instance = await apiMaybe(`instances.get ${project}/${node.instance}`, () => clients.instances.get({ project, instance: node.instance }));
      if (instance && instanceType(instance) === 'CLOUD_SQL_INSTANCE') return node.instance;
    }
    throw ApplicationFailure.create({ type: FailureType.ProviderOperationFailed, message: `neither ${where(spec.primary.instance)} nor ${where(spec.replica.instance)} is a primary: nothing to back up` });
  }

  const ownerOf = (run: BackupRun): string => run.instance || spec.primary.instance;

  async function findRun(backupId: string): Promise<BackupRun | undefined> {
    const foreign = FOREIGN_BACKUP_ID.exec(backupId);
    if (foreign?.[1]) {
      const id = foreign[1];
      return (await allRuns()).find((run) => idOf(run.id) === id);
    }
    return (await allRuns()).find((run) => run.description === descriptionOf(backupId));
  }

  async function requireRun(backupId: string): Promise<{ run: BackupRun; id: string }> {
    const run = await findRun(backupId);
    const id = idOf(run?.id);
    if (!run || !id) {
      throw ApplicationFailure.nonRetryable(`no Cloud SQL backup run '${backupId}' of ${where(spec.primary.instance)}`, FailureType.BackupNotFound);
    }
    return { run, id };
  }

  function manifestOf(backupId: string, run: BackupRun): BackupManifest {
    const now = new Date().toISOString();
    return {
      format: 'lifeboat-backup/1',
      backupId,
      database: name,
      provider: 'cloudsql',
      artifact: { kind: 'cloudsql-backup-run', backupRunId: idOf(run.id) ?? '', instance: ownerOf(run) },
      // No `tables`: the Admin API cannot read the data, so there are no row counts or checksums to compare.
      startedAt: isoOf(run.startTime) ?? isoOf(run.enqueuedTime) ?? now,
      finishedAt: isoOf(run.endTime) ?? now,
      locations: [locationOf(run)],
    };
  }

  /** Polls a backup run someone already started (an earlier attempt of this activity) until it ends. */
  async function waitForRun(run: BackupRun, progress: Progress, signal: AbortSignal): Promise<BackupRun> {
    const id = idOf(run.id) ?? '';
    const deadline = Date.now() + timeoutMs;
    let current = run;
    while (['ENQUEUED', 'RUNNING', 'OVERDUE'].includes(runStatus(current) ?? '')) {
      if (Date.now() >= deadline) {
        throw ApplicationFailure.create({ type: FailureType.ProviderOperationFailed, message: `backup run ${id} of ${where(spec.primary.instance)} is still ${runStatus(current)} after ${timeoutMs / 1000}s` });
      }
      await sleep(pollMs, signal);
      current = await api(`backupRuns.get ${id}`, () => clients.backupRuns.get({ project, instance: ownerOf(run), id }));
      progress({ backupRunId: id, status: runStatus(current) });
    }
    return current;
  }

  function requireStaging(): string {
    const staging = spec.stagingInstance;
    if (!staging) {
      throw ApplicationFailure.nonRetryable(`restore tests of ${name} need a staging instance to restore into (databases.${name}.stagingInstance)`, FailureType.NotConfigured);
    }
    // A restore overwrites the whole instance: never let a config point it at the pair itself.
    if (staging === spec.primary.instance || staging === spec.replica.instance) {
      throw ApplicationFailure.nonRetryable(`databases.${name}.stagingInstance '${staging}' is a node of the replicated pair: a restore would overwrite it`, FailureType.NotConfigured);
    }
    return staging;
  }

  function requireStagingTarget(target: ScratchTarget): string {
    const staging = requireStaging();
    if (target.kind !== 'cloudsql-instance' || target.name !== staging) {
      throw ApplicationFailure.nonRetryable(`restore target ${target.kind} '${target.name}' is not ${name}'s staging instance '${staging}'`, FailureType.NotConfigured);
    }
    return staging;
  }

  async function setActivationPolicy(instance: string, policy: 'ALWAYS' | 'NEVER', progress?: Progress): Promise<void> {
    const op = await api(`instances.patch ${project}/${instance} activationPolicy=${policy}`, () =>
      clients.instances.patch({ project, instance, body: { settings: { activationPolicy: policy } } }),
    );
    await waitForOperation(op, `set activation policy of ${where(instance)} to ${policy}`, progress);
  }

  return {
    name,
    database: name,
    primary,
    standby,

    reversed(): DatabaseProvider {
      return createCloudSqlProvider(name, { ...spec, primary: spec.replica, replica: spec.primary }, clients);
    },

    nodes: [primary, standby],

    oriented(primaryRegion: string, standbyRegion: string): DatabaseProvider {
      if (primaryRegion === primary.region && standbyRegion === standby.region) return this;
      if (primaryRegion === standby.region && standbyRegion === primary.region) return this.reversed();
      throw ApplicationFailure.nonRetryable(`${name} (Cloud SQL) has a primary in ${primary.region} and one replica in ${standby.region}; there is no node in ${[primaryRegion, standbyRegion].filter((r) => r !== primary.region && r !== standby.region).join(', ')}`, FailureType.NotConfigured);
    },

    /** One replica and Cloud SQL's own lineage: nothing further to confirm here. */
    async confirmPromotable() {
      return undefined;
    },

    /** One replica: after a promotion there is no other replica to re-point. */
    async followNewPrimary() {
      return [];
    },

    async rebuildOldPrimary(): Promise<RebuildOutcome> {
      // A Cloud SQL failback re-creates the old primary as a new read replica (instances.insert with
      // masterInstanceName), under a new name or after deleting the old instance: a destructive,
      // config-changing step Lifeboat leaves to the operator.
      throw ApplicationFailure.nonRetryable(
        `rebuilding ${where(spec.primary.instance)} as a replica of ${spec.replica.instance} is not supported: Cloud SQL cannot turn a promoted instance back into a replica; create a new read replica of ${spec.replica.instance} and update databases.${name}`,
        FailureType.NotConfigured,
      );
    },

    async inspect(): Promise<ReplicationInspection> {
      const [p, s] = await Promise.all([tryInstance(spec.primary.instance), tryInstance(spec.replica.instance)]);
      const sv = s.ok ? s.value : undefined;
      const pv = p.ok ? p.value : undefined;
      const inRecovery = sv ? instanceType(sv) === 'READ_REPLICA_INSTANCE' : undefined;
      return {
        database: name,
        standby: {
          ...endpoint(spec.replica, sv),
          reachable: sv ? serving(sv) : false,
          inRecovery,
          // The Admin API shows the replication link, not its health: a RUNNABLE replica of this primary counts as streaming.
          streaming: sv ? inRecovery === true && isPrimaryOf(sv.masterInstanceName, spec.primary.instance) && serving(sv) : undefined,
          error: s.ok ? (serving(s.value) ? undefined : stateOf(s.value)) : s.error,
        },
        primary: {
          ...endpoint(spec.primary, pv),
          reachable: pv ? serving(pv) : false,
          error: p.ok ? (serving(p.value) ? undefined : stateOf(p.value)) : p.error,
        },
        // No lagBytes/lagSeconds: the Admin API does not report replication lag (Cloud Monitoring does).
        inspectedAt: new Date().toISOString(),
      };
    },

    async fencePrimary(): Promise<FenceResult> {
      // The Admin API has no read-only switch for a primary. A switchover fences the old primary
      // itself (it stops writes and becomes the new primary's replica); promoteReplica does not.
      return {
        fenced: false,
        attempted: false,
        reason:
          promotion === 'switchover'
            ? `Cloud SQL fences ${spec.primary.instance} itself: instances.switchover stops its writes and makes it a replica of ${spec.replica.instance}`
            : `the Cloud SQL Admin API has no read-only fence, and promoteReplica leaves ${spec.primary.instance} writable: move clients to ${spec.replica.instance} and stop ${spec.primary.instance} to avoid split writes`,
      };
    },

    async unfencePrimary(): Promise<void> {
      // Nothing was fenced (see fencePrimary).
    },

    async replayedUpTo(): Promise<{ caughtUp: boolean; replayLsn: string }> {
      // Only reached after a fence that returned an LSN, which this provider never does; Cloud SQL
      // exposes no WAL positions. A switchover waits for the replica to catch up by itself.
      return { caughtUp: true, replayLsn: 'n/a' };
    },

    async measureRpo(): Promise<RpoMeasurement> {
      // No figure is invented: bytes and seconds stay unknown, so the RPO is reported as not met.
      return {
        method:
          promotion === 'switchover'
            ? 'Cloud SQL Admin API exposes no replica lag; not measured, so not met (a switchover waits for the replica to catch up, so it should lose no committed data, but Lifeboat cannot show it; see cloudsql.googleapis.com/database/replication/replica_lag in Cloud Monitoring)'
            : 'Cloud SQL Admin API exposes no replica lag; not measured, so not met (the loss window is the replica lag at promotion: see cloudsql.googleapis.com/database/replication/replica_lag in Cloud Monitoring)',
      };
    },

    async promoteStandby(): Promise<PromotionOutcome> {
      const replica = spec.replica.instance;
      const promoteTypes = ['PROMOTE_REPLICA', 'SWITCHOVER'];
      // Idempotent: a retry after a lost worker waits on the promotion an earlier attempt started.
      const running = await inFlight(replica, promoteTypes);
      let done: Operation | undefined;
      if (running) {
        done = await waitForOperation(running, `promotion of ${where(replica)} (started earlier)`);
      } else {
        const before = await getInstance(replica);
        if (instanceType(before) !== 'READ_REPLICA_INSTANCE') {
          return { alreadyPromoted: true, timeline: 0, promotedAt: new Date().toISOString(), newPrimary: endpoint(spec.replica, before) };
        }
        const started =
          promotion === 'switchover'
            ? await api(`instances.switchover ${project}/${replica}`, () => clients.instances.switchover({ project, instance: replica }))
            : await api(`instances.promoteReplica ${project}/${replica}`, () => clients.instances.promoteReplica({ project, instance: replica, failover: false }));
        done = await waitForOperation(started, `${promotion} of ${where(replica)}`);
      }
      const after = await getInstance(replica);
      if (instanceType(after) === 'READ_REPLICA_INSTANCE') {
        throw ApplicationFailure.nonRetryable(
          `Cloud SQL operation ${done.name ?? '?'} is DONE but ${where(replica)} is still a read replica`,
          FailureType.ProviderOperationFailed,
        );
      }
      return {
        alreadyPromoted: false,
        // Cloud SQL exposes no PostgreSQL timeline.
        timeline: 0,
        promotedAt: isoOf(done.endTime) ?? new Date().toISOString(),
        newPrimary: endpoint(spec.replica, after),
      };
    },

    async verifyWrite(): Promise<WriteCheck> {
      // A real write needs a database connection (and credentials), which this provider does not hold:
      // the check is that the Admin API reports the promoted instance as a serving standalone primary.
      const started = Date.now();
      const instance = await getInstance(spec.replica.instance);
      const latencyMs = Date.now() - started;
      if (!serving(instance) || instanceType(instance) !== 'CLOUD_SQL_INSTANCE') {
        throw ApplicationFailure.create({
          type: FailureType.WriteCheckFailed,
          message: `${where(spec.replica.instance)} is not a serving primary: ${stateOf(instance)}, type ${instanceType(instance) ?? 'unknown'}`,
        });
      }
      return { ok: true, latencyMs, node: endpoint(spec.replica, instance) };
    },

    async takeBackup(backupId: string, progress: Progress, signal: AbortSignal): Promise<BackupManifest> {
      const instance = await currentPrimaryInstance();
      // Idempotent: a retry finds the run an earlier attempt started, by its description.
      let run = await findRun(backupId);
      if (run && runStatus(run) !== 'FAILED') {
        run = await waitForRun(run, progress, signal);
      } else {
        const op = await api(`backupRuns.insert ${project}/${instance}`, () =>
          clients.backupRuns.insert({ project, instance, body: { description: descriptionOf(backupId) } }),
        );
        await waitForOperation(op, `backup run of ${where(instance)}`, progress, signal);
        run = await findRun(backupId);
      }
      if (!run) {
        throw ApplicationFailure.create({ type: FailureType.ProviderOperationFailed, message: `the backup run '${descriptionOf(backupId)}' of ${where(instance)} is DONE but not listed` });
      }
      if (runStatus(run) !== 'SUCCESSFUL') {
        throw ApplicationFailure.nonRetryable(
          `backup run ${idOf(run.id) ?? '?'} of ${where(instance)} ended ${runStatus(run) ?? 'unknown'}: ${run.error?.message ?? 'no error message'}`,
          FailureType.ProviderOperationFailed,
        );
      }
      return manifestOf(backupId, run);
    },

    async replicateBackup(backupId: string): Promise<BackupCopy[]> {
      const { run } = await requireRun(backupId);
      return [
        {
          location: locationOf(run),
          verified: runStatus(run) === 'SUCCESSFUL',
          method: `Cloud SQL stores backups in its own multi-region location (${run.location || 'default'}); Lifeboat makes no second copy; backup run status ${runStatus(run) ?? 'unknown'}`,
        },
      ];
    },

    async deleteCopies(): Promise<void> {
      // replicateBackup makes no copies.
    },

    async markVerified(): Promise<void> {
      // A backup run has no label to set: a SUCCESSFUL run is what listBackups reports as verified.
    },

    async listBackups(): Promise<BackupListing[]> {
      return (await allRuns())
        .filter((run) => runStatus(run) !== 'DELETION_PENDING')
        .map((run) => ({
          backupId: backupIdOf(run),
          database: name,
          startedAt: isoOf(run.startTime) ?? isoOf(run.enqueuedTime) ?? '',
          finishedAt: isoOf(run.endTime),
          verified: runStatus(run) === 'SUCCESSFUL',
        }));
    },

    async readManifest(backupId: string): Promise<BackupManifest> {
      const found = await requireRun(backupId);
      const run = await api(`backupRuns.get ${found.id}`, () => clients.backupRuns.get({ project, instance: ownerOf(found.run), id: found.id }));
      return manifestOf(backupId, run);
    },

    async deleteBackup(backupId: string): Promise<void> {
      const run = await findRun(backupId);
      const id = idOf(run?.id);
      // Idempotent: a missing run, or one already being deleted, is success.
      if (!run || !id || runStatus(run) === 'DELETION_PENDING') return;
      const instance = ownerOf(run);
      const op = await apiMaybe(`backupRuns.delete ${project}/${instance}/${id}`, () => clients.backupRuns.delete({ project, instance, id }));
      if (op) await waitForOperation(op, `delete backup run ${id} of ${where(instance)}`);
    },

    async verifyArtifact(backupId: string): Promise<ArtifactCheck> {
      const found = await requireRun(backupId);
      const id = found.id;
      const run = await api(`backupRuns.get ${id}`, () => clients.backupRuns.get({ project, instance: ownerOf(found.run), id }));
      return {
        backupId,
        ok: runStatus(run) === 'SUCCESSFUL',
        method: `backupRuns.get: backup run ${id} is ${runStatus(run) ?? 'unknown'}; the backup is Google-managed and exposes no SHA-256 to re-read`,
      };
    },

    async createScratch(): Promise<ScratchTarget> {
      const staging = requireStaging();
      const current = await getInstance(staging);
      // Idempotent by design: one staging instance serves every run; starting it again is a no-op.
      if (activationPolicy(current) !== 'ALWAYS' || instanceState(current) !== 'RUNNABLE') {
        await setActivationPolicy(staging, 'ALWAYS');
      }
      const started = await getInstance(staging);
      const host = endpoint({ instance: staging, region: started.region ?? '' }, started).host;
      return { kind: 'cloudsql-instance', name: staging, host, port: POSTGRES_PORT, createdAt: new Date().toISOString() };
    },

    async restoreInto(backupId: string, target: ScratchTarget, progress: Progress, signal: AbortSignal): Promise<RestoreOutcome> {
      const staging = requireStagingTarget(target);
      const found = await requireRun(backupId);
      const backupRunId = found.id;
      const owner = ownerOf(found.run);
      const started = Date.now();
      const op = await api(`instances.restoreBackup ${project}/${staging}`, () =>
        clients.instances.restoreBackup({
          project,
          instance: staging,
          body: { restoreBackupContext: { kind: 'sql#restoreBackupContext', backupRunId, instanceId: owner, project } },
        }),
      );
      await waitForOperation(op, `restore of backup run ${backupRunId} into ${where(staging)}`, progress, signal);
      return {
        backupId,
        target,
        durationSeconds: (Date.now() - started) / 1000,
        method: `instances.restoreBackup of backup run ${backupRunId} (${owner}) into ${staging}, waited until the operation was DONE`,
      };
    },

    async verifyRestore(_backupId: string, target: ScratchTarget, samples: readonly SampleQuery[]): Promise<RestoreVerification> {
      const staging = requireStagingTarget(target);
      const instance = await getInstance(staging);
      const mismatches: string[] = [];
      if (!serving(instance)) mismatches.push(`${where(staging)} is not serving after the restore (${stateOf(instance)})`);
      // Sample queries need a database connection, which this provider does not hold: a config that
      // asks for them gets a clear failure, never a silent pass.
      const sampleResults = samples.map((s) => ({ name: s.name, rows: 0, ok: false, error: 'sample queries need a database connection, which the Cloud SQL provider does not hold' }));
      for (const s of sampleResults) mismatches.push(`sample query '${s.name}' not run: ${s.error}`);
      return {
        ok: mismatches.length === 0,
        tables: [],
        samples: sampleResults,
        mismatches,
        method: 'instances.get: the restored staging instance is RUNNABLE and started; the Admin API cannot read the data, so no row counts or checksums are compared',
      };
    },

    async dropScratch(): Promise<void> {
      // One staging instance serves every run, whatever its runKey: stopping it is the drop (it stays,
      // and the next test's restore overwrites its data). Idempotent: stopped or missing is success.
      const staging = requireStaging();
      const current = await apiMaybe(`instances.get ${project}/${staging}`, () => clients.instances.get({ project, instance: staging }));
      if (!current || activationPolicy(current) === 'NEVER') return;
      await setActivationPolicy(staging, 'NEVER');
    },
  };
}
