/**
 * Test support, not product: a local stand-in for the Cloud SQL Admin API v1
 * REST surface, as the official `@google-cloud/sql` client sends it in
 * HTTP/1.1 REST mode (`fallback: true`). It keeps instance and backup-run state,
 * answers mutations with `sql#operation` objects that move PENDING → RUNNING →
 * DONE over successive `operations.get` calls (the change lands at DONE), can
 * fail the next operation of a type with a Google-shaped error, and records
 * every request for assertions.
 *
 * Like Google's front end, it honours `$alt=json;enum-encoding=int` (which the
 * client always sends): enums go out as numbers and request enums arrive as
 * numbers, translated with the client's own proto descriptors.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http, { type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { Enum, Root, Type } from 'protobufjs';

export type InstanceType = 'CLOUD_SQL_INSTANCE' | 'READ_REPLICA_INSTANCE';
export type InstanceState = 'RUNNABLE' | 'SUSPENDED' | 'PENDING_CREATE' | 'MAINTENANCE' | 'FAILED';
export type ActivationPolicy = 'ALWAYS' | 'NEVER' | 'ON_DEMAND';

/** One instance's state, mutable by tests (e.g. `state = 'MAINTENANCE'`). */
export interface StandInInstance {
  name: string;
  region: string;
  instanceType: InstanceType;
  /** The primary's name, as the API returns it: `project:instance`. */
  masterInstanceName?: string;
  replicaNames: string[];
  state: InstanceState;
  activationPolicy: ActivationPolicy;
  ipAddress: string;
  databaseVersion: string;
  /** The last restoreBackup that completed into this instance. */
  restoredFrom?: { backupRunId: string; instanceId: string; project: string };
}

export interface StandInInstanceSeed {
  name: string;
  region: string;
  /** Makes the instance a READ_REPLICA_INSTANCE of this primary (by instance name). */
  replicaOf?: string;
  activationPolicy?: ActivationPolicy;
  state?: InstanceState;
  ipAddress?: string;
}

export interface StandInBackupRun {
  id: string;
  instance: string;
  description: string;
  type: 'ON_DEMAND' | 'AUTOMATED';
  status: 'ENQUEUED' | 'RUNNING' | 'SUCCESSFUL' | 'FAILED' | 'DELETION_PENDING';
  enqueuedTime: string;
  startTime?: string;
  endTime?: string;
  error?: { code: string; message: string };
}

export interface RecordedRequest {
  method: string;
  /** Path without the query string, e.g. `/v1/projects/p/instances/i/promoteReplica`. */
  path: string;
  query: Record<string, string>;
  /** The JSON body as sent (enums as numbers), `undefined` when there was none. */
  body: unknown;
  headers: IncomingHttpHeaders;
}

export interface StandInOptions {
  project?: string;
  instances: StandInInstanceSeed[];
  /** Backup runs that exist from the start (e.g. automated ones). */
  backupRuns?: Array<Pick<StandInBackupRun, 'instance' | 'description' | 'type' | 'status'> & { id?: string; enqueuedTime?: string }>;
  /** `operations.get` calls until an operation is DONE: 1st PENDING, then RUNNING, then DONE at this count (default 3). */
  pollsUntilDone?: number;
  /** Caps `maxResults` of list calls, to exercise paging. */
  maxPageSize?: number;
}

export interface CloudSqlStandIn {
  url: string;
  port: number;
  project: string;
  requests: RecordedRequest[];
  instances: Map<string, StandInInstance>;
  backupRuns: Map<string, StandInBackupRun>;
  /** The next operation of this type (e.g. `PROMOTE_REPLICA`) ends DONE with this error. */
  failNext(operationType: string, message: string, code?: string): void;
  /** `operations.get` calls recorded for one operation. */
  pollsOf(operationName: string): number;
  close(): Promise<void>;
}

interface StoredOperation {
  name: string;
  operationType: string;
  targetId: string;
  insertTime: string;
  startTime?: string;
  endTime?: string;
  gets: number;
  status: 'PENDING' | 'RUNNING' | 'DONE';
  failure?: { code: string; message: string };
  /** Called once, when the operation moves to RUNNING. */
  onRunning?: () => void;
  /** Called once, when the operation is DONE without error. */
  onDone?: () => void;
  /** Called once, when the operation is DONE with an error. */
  onFailed?: () => void;
  backupRunId?: string;
}

class HttpError extends Error {
  constructor(readonly httpStatus: number, readonly status: string, message: string) {
    super(message);
  }
}

const V1 = 'google.cloud.sql.v1';

/** The client's own descriptors, so enum names and numbers match what it sends and decodes. */
function loadSqlProtos(): Root {
  const require = createRequire(__filename);
  const file = require.resolve('@google-cloud/sql/build/protos/protos.json');
  const root = Root.fromJSON(JSON.parse(readFileSync(file, 'utf8')));
  root.resolveAll();
  return root;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Rewrites every enum field of a proto3-JSON value of `type`, to numbers or to names. */
function convertEnums(type: Type, value: unknown, to: 'number' | 'name'): unknown {
  if (!isRecord(value)) return value;
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) {
    const field = type.fields[key];
    const rt = field?.resolvedType;
    const one = (x: unknown): unknown => {
      if (rt instanceof Enum) {
        if (to === 'number' && typeof x === 'string') return rt.values[x] ?? x;
        if (to === 'name' && typeof x === 'number') return rt.valuesById[x] ?? x;
        return x;
      }
      return rt instanceof Type ? convertEnums(rt, x, to) : x;
    };
    if (Array.isArray(v)) out[key] = v.map(one);
    else if (field && 'keyType' in field && isRecord(v)) out[key] = Object.fromEntries(Object.entries(v).map(([k, x]) => [k, one(x)]));
    else out[key] = one(v);
  }
  return out;
}

/** Starts the stand-in on a free loopback port. */
export async function startCloudSqlStandIn(opts: StandInOptions): Promise<CloudSqlStandIn> {
  const project = opts.project ?? 'lifeboat-test';
  const pollsUntilDone = Math.max(1, opts.pollsUntilDone ?? 3);
  const root = loadSqlProtos();
  const typeOf = (name: string) => root.lookupType(`${V1}.${name}`);
  const requests: RecordedRequest[] = [];
  const instances = new Map<string, StandInInstance>();
  const backupRuns = new Map<string, StandInBackupRun>();
  const operations = new Map<string, StoredOperation>();
  const failures = new Map<string, Array<{ code: string; message: string }>>();
  let nextRunId = 1_700_000_000_000;
  let baseUrl = '';

  for (const seed of opts.instances) {
    instances.set(seed.name, {
      name: seed.name,
      region: seed.region,
      instanceType: seed.replicaOf ? 'READ_REPLICA_INSTANCE' : 'CLOUD_SQL_INSTANCE',
      masterInstanceName: seed.replicaOf ? `${project}:${seed.replicaOf}` : undefined,
      replicaNames: opts.instances.filter((s) => s.replicaOf === seed.name).map((s) => s.name),
      state: seed.state ?? 'RUNNABLE',
      activationPolicy: seed.activationPolicy ?? 'ALWAYS',
      ipAddress: seed.ipAddress ?? `10.20.0.${instances.size + 2}`,
      databaseVersion: 'POSTGRES_16',
    });
  }
  for (const run of opts.backupRuns ?? []) {
    const id = run.id ?? String(nextRunId++);
    const enqueuedTime = run.enqueuedTime ?? new Date().toISOString();
    backupRuns.set(id, { ...run, id, enqueuedTime, startTime: enqueuedTime, endTime: run.status === 'SUCCESSFUL' ? enqueuedTime : undefined });
  }

  const instanceName = (n: string) => n.slice(n.lastIndexOf(':') + 1);
  const selfLink = (path: string) => `${baseUrl}/v1/projects/${project}/${path}`;

  function instanceJson(i: StandInInstance): Record<string, unknown> {
    return {
      kind: 'sql#instance',
      name: i.name,
      project,
      region: i.region,
      gceZone: `${i.region}-b`,
      state: i.state,
      instanceType: i.instanceType,
      databaseVersion: i.databaseVersion,
      backendType: 'SECOND_GEN',
      connectionName: `${project}:${i.region}:${i.name}`,
      ...(i.masterInstanceName ? { masterInstanceName: i.masterInstanceName } : {}),
      replicaNames: i.replicaNames,
      ipAddresses: [{ type: 'PRIVATE', ipAddress: i.ipAddress }],
      settings: { kind: 'sql#settings', tier: 'db-custom-2-7680', activationPolicy: i.activationPolicy, availabilityType: 'REGIONAL', settingsVersion: '1' },
      selfLink: selfLink(`instances/${i.name}`),
    };
  }

  function runJson(r: StandInBackupRun): Record<string, unknown> {
    return {
      kind: 'sql#backupRun',
      id: r.id,
      instance: r.instance,
      status: r.status,
      type: r.type,
      description: r.description,
      enqueuedTime: r.enqueuedTime,
      ...(r.startTime ? { startTime: r.startTime } : {}),
      ...(r.endTime ? { endTime: r.endTime } : {}),
      ...(r.error ? { error: { kind: 'sql#operationError', ...r.error } } : {}),
      location: 'us',
      backupKind: 'SNAPSHOT',
      databaseVersion: 'POSTGRES_16',
      selfLink: selfLink(`instances/${r.instance}/backupRuns/${r.id}`),
    };
  }

  function operationJson(op: StoredOperation): Record<string, unknown> {
    return {
      kind: 'sql#operation',
      name: op.name,
      status: op.status,
      operationType: op.operationType,
      targetId: op.targetId,
      targetProject: project,
      targetLink: selfLink(`instances/${op.targetId}`),
      selfLink: selfLink(`operations/${op.name}`),
      user: 'lifeboat-test@example.iam.gserviceaccount.com',
      insertTime: op.insertTime,
      ...(op.startTime ? { startTime: op.startTime } : {}),
      ...(op.endTime ? { endTime: op.endTime } : {}),
      ...(op.backupRunId ? { backupContext: { kind: 'sql#backupContext', backupId: op.backupRunId } } : {}),
      ...(op.status === 'DONE' && op.failure
        ? { error: { kind: 'sql#operationErrors', errors: [{ kind: 'sql#operationError', code: op.failure.code, message: op.failure.message }] } }
        : {}),
    };
  }

  function startOperation(operationType: string, targetId: string, hooks: Pick<StoredOperation, 'onRunning' | 'onDone' | 'onFailed' | 'backupRunId'> = {}): StoredOperation {
    // Like Cloud SQL, one operation at a time per instance.
    const running = [...operations.values()].find((op) => op.targetId === targetId && op.status !== 'DONE');
    if (running) {
      throw new HttpError(409, 'ABORTED', `Operation failed because another operation (${running.operationType} ${running.name}) was already in progress.`);
    }
    const queued = failures.get(operationType);
    const op: StoredOperation = {
      name: randomUUID(),
      operationType,
      targetId,
      insertTime: new Date().toISOString(),
      gets: 0,
      status: 'PENDING',
      failure: queued?.shift(),
      ...hooks,
    };
    operations.set(op.name, op);
    return op;
  }

  /** One `operations.get`: the operation advances one step. */
  function advance(op: StoredOperation): void {
    if (op.status === 'DONE') return;
    op.gets += 1;
    const next = op.gets >= pollsUntilDone ? 'DONE' : op.gets >= pollsUntilDone - 1 ? 'RUNNING' : 'PENDING';
    if (next !== 'PENDING' && !op.startTime) {
      op.startTime = new Date().toISOString();
      op.onRunning?.();
    }
    if (next === 'DONE') {
      op.endTime = new Date().toISOString();
      if (op.failure) op.onFailed?.();
      else op.onDone?.();
    }
    op.status = next;
  }

  function requireInstance(name: string): StandInInstance {
    const i = instances.get(name);
    if (!i) throw new HttpError(404, 'NOT_FOUND', `The Cloud SQL instance does not exist.`);
    return i;
  }

  function requireRun(instance: string, id: string): StandInBackupRun {
    const run = backupRuns.get(id);
    if (!run || run.instance !== instance) throw new HttpError(404, 'NOT_FOUND', `The backup run ${id} does not exist.`);
    return run;
  }

  function page<T>(items: T[], query: Record<string, string>): { items: T[]; nextPageToken?: string } {
    const asked = Number(query.maxResults ?? 0) || items.length || 1;
    const size = Math.min(asked, opts.maxPageSize ?? asked);
    const from = Number(query.pageToken ?? 0);
    const slice = items.slice(from, from + size);
    return from + size < items.length ? { items: slice, nextPageToken: String(from + size) } : { items: slice };
  }

  function promote(replica: StandInInstance): void {
    const master = replica.masterInstanceName ? instances.get(instanceName(replica.masterInstanceName)) : undefined;
    replica.instanceType = 'CLOUD_SQL_INSTANCE';
    replica.masterInstanceName = undefined;
    if (master) master.replicaNames = master.replicaNames.filter((n) => n !== replica.name);
  }

  /** Routes one request; returns the response message and its type name (for enum encoding). */
  function route(method: string, path: string, query: Record<string, string>, body: unknown): { json: Record<string, unknown>; type: string } {
    const m = /^\/v1\/projects\/([^/]+)\/(.*)$/.exec(path);
    if (!m) throw new HttpError(404, 'NOT_FOUND', `no route for ${method} ${path}`);
    if (m[1] !== project) throw new HttpError(403, 'PERMISSION_DENIED', `The client is not authorized to make this request (project ${m[1]}).`);
    const rest = m[2] ?? '';
    let r: RegExpExecArray | null;

    if ((r = /^operations\/([^/]+)$/.exec(rest)) && method === 'GET') {
      const op = operations.get(r[1] ?? '');
      if (!op) throw new HttpError(404, 'NOT_FOUND', `The operation ${r[1]} does not exist.`);
      advance(op);
      return { json: operationJson(op), type: 'Operation' };
    }
    if (rest === 'operations' && method === 'GET') {
      const all = [...operations.values()].filter((op) => !query.instance || op.targetId === query.instance).reverse();
      const p = page(all, query);
      return { json: { kind: 'sql#operationsList', items: p.items.map(operationJson), ...(p.nextPageToken ? { nextPageToken: p.nextPageToken } : {}) }, type: 'OperationsListResponse' };
    }
    if ((r = /^instances\/([^/]+)$/.exec(rest))) {
      const instance = requireInstance(r[1] ?? '');
      if (method === 'GET') return { json: instanceJson(instance), type: 'DatabaseInstance' };
      if (method === 'PATCH') {
        const patch = convertEnums(typeOf('DatabaseInstance'), body, 'name');
        const settings = isRecord(patch) && isRecord(patch.settings) ? patch.settings : {};
        const policy = settings.activationPolicy;
        const op = startOperation('UPDATE', instance.name, {
          onDone: () => {
            if (policy === 'ALWAYS' || policy === 'NEVER' || policy === 'ON_DEMAND') instance.activationPolicy = policy;
          },
        });
        return { json: operationJson(op), type: 'Operation' };
      }
    }
    if ((r = /^instances\/([^/]+)\/(promoteReplica|switchover|restoreBackup|clone)$/.exec(rest)) && method === 'POST') {
      const instance = requireInstance(r[1] ?? '');
      const action = r[2];
      if (action === 'promoteReplica' || action === 'switchover') {
        if (instance.instanceType !== 'READ_REPLICA_INSTANCE') {
          throw new HttpError(400, 'FAILED_PRECONDITION', `The instance ${instance.name} is not a read replica.`);
        }
        const oldPrimary = instance.masterInstanceName ? instances.get(instanceName(instance.masterInstanceName)) : undefined;
        const swap = action === 'switchover' || query.failover === 'true';
        const op = startOperation(action === 'switchover' ? 'SWITCHOVER' : 'PROMOTE_REPLICA', instance.name, {
          onDone: () => {
            promote(instance);
            if (swap && oldPrimary) {
              // The old primary follows the new one: a switchover does this at once, a replica failover when it is back.
              oldPrimary.instanceType = 'READ_REPLICA_INSTANCE';
              oldPrimary.masterInstanceName = `${project}:${instance.name}`;
              oldPrimary.replicaNames = [];
              instance.replicaNames = [oldPrimary.name];
            }
          },
        });
        return { json: operationJson(op), type: 'Operation' };
      }
      if (action === 'restoreBackup') {
        const request = convertEnums(typeOf('InstancesRestoreBackupRequest'), body, 'name');
        const ctx = isRecord(request) && isRecord(request.restoreBackupContext) ? request.restoreBackupContext : undefined;
        const backupRunId = String(ctx?.backupRunId ?? '');
        const instanceId = String(ctx?.instanceId ?? '');
        const sourceProject = String(ctx?.project ?? project);
        if (!ctx || !backupRunId || !instanceId) throw new HttpError(400, 'INVALID_ARGUMENT', 'restoreBackupContext.backupRunId and instanceId are required.');
        const run = requireRun(instanceId, backupRunId);
        if (run.status !== 'SUCCESSFUL') throw new HttpError(400, 'FAILED_PRECONDITION', `The backup run ${backupRunId} is ${run.status}.`);
        const op = startOperation('RESTORE_VOLUME', instance.name, {
          onRunning: () => { instance.state = 'MAINTENANCE'; },
          onDone: () => {
            instance.state = 'RUNNABLE';
            instance.restoredFrom = { backupRunId, instanceId, project: sourceProject };
          },
          onFailed: () => { instance.state = 'RUNNABLE'; },
        });
        return { json: operationJson(op), type: 'Operation' };
      }
      // clone
      const request = convertEnums(typeOf('InstancesCloneRequest'), body, 'name');
      const ctx = isRecord(request) && isRecord(request.cloneContext) ? request.cloneContext : undefined;
      const destination = typeof ctx?.destinationInstanceName === 'string' ? ctx.destinationInstanceName : '';
      if (!destination) throw new HttpError(400, 'INVALID_ARGUMENT', 'cloneContext.destinationInstanceName is required.');
      if (instances.has(destination)) throw new HttpError(409, 'ALREADY_EXISTS', `The Cloud SQL instance ${destination} already exists.`);
      const op = startOperation('CLONE', instance.name, {
        onDone: () => {
          instances.set(destination, { ...instance, name: destination, instanceType: 'CLOUD_SQL_INSTANCE', masterInstanceName: undefined, replicaNames: [], ipAddress: `10.20.1.${instances.size + 2}`, restoredFrom: undefined });
        },
      });
      return { json: operationJson(op), type: 'Operation' };
    }
    if ((r = /^instances\/([^/]+)\/backupRuns$/.exec(rest))) {
      const instance = requireInstance(r[1] ?? '');
      if (method === 'GET') {
        const all = [...backupRuns.values()].filter((run) => run.instance === instance.name).reverse();
        const p = page(all, query);
        return { json: { kind: 'sql#backupRunsList', items: p.items.map(runJson), ...(p.nextPageToken ? { nextPageToken: p.nextPageToken } : {}) }, type: 'BackupRunsListResponse' };
      }
      if (method === 'POST') {
        if (instance.instanceType === 'READ_REPLICA_INSTANCE') throw new HttpError(400, 'FAILED_PRECONDITION', 'Backups are not supported for read replicas.');
        const request = convertEnums(typeOf('BackupRun'), body, 'name');
        const run: StandInBackupRun = {
          id: String(nextRunId++),
          instance: instance.name,
          description: isRecord(request) && typeof request.description === 'string' ? request.description : '',
          type: 'ON_DEMAND',
          status: 'ENQUEUED',
          enqueuedTime: new Date().toISOString(),
        };
        const op = startOperation('BACKUP_VOLUME', instance.name, {
          backupRunId: run.id,
          onRunning: () => {
            run.status = 'RUNNING';
            run.startTime = new Date().toISOString();
          },
          onDone: () => {
            run.status = 'SUCCESSFUL';
            run.endTime = new Date().toISOString();
          },
          onFailed: () => {
            run.status = 'FAILED';
            run.endTime = new Date().toISOString();
            run.error = { code: 'BACKUP_FAILED', message: 'backup failed' };
          },
        });
        backupRuns.set(run.id, run);
        return { json: operationJson(op), type: 'Operation' };
      }
    }
    if ((r = /^instances\/([^/]+)\/backupRuns\/([^/]+)$/.exec(rest))) {
      const instance = requireInstance(r[1] ?? '');
      const run = requireRun(instance.name, r[2] ?? '');
      if (method === 'GET') return { json: runJson(run), type: 'BackupRun' };
      if (method === 'DELETE') {
        const previous = run.status;
        const op = startOperation('DELETE_BACKUP', instance.name, {
          onDone: () => { backupRuns.delete(run.id); },
          onFailed: () => { run.status = previous; },
        });
        run.status = 'DELETION_PENDING';
        return { json: operationJson(op), type: 'Operation' };
      }
    }
    throw new HttpError(404, 'NOT_FOUND', `no route for ${method} ${path}`);
  }

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://stand-in');
      const query = Object.fromEntries(url.searchParams.entries());
      const text = Buffer.concat(chunks).toString('utf8');
      let body: unknown;
      try {
        body = text ? JSON.parse(text) : undefined;
      } catch {
        body = text;
      }
      const method = req.method ?? 'GET';
      requests.push({ method, path: url.pathname, query, body, headers: req.headers });
      const numericEnums = (query.$alt ?? '').includes('enum-encoding=int');
      let status = 200;
      let payload: unknown;
      try {
        const { json, type } = route(method, url.pathname, query, body);
        payload = numericEnums ? convertEnums(typeOf(type), json, 'number') : json;
      } catch (err) {
        const e = err instanceof HttpError ? err : new HttpError(500, 'INTERNAL', err instanceof Error ? err.message : String(err));
        status = e.httpStatus;
        payload = { error: { code: e.httpStatus, message: e.message, status: e.status, errors: [{ message: e.message, domain: 'global', reason: e.status }] } };
      }
      res.writeHead(status, { 'content-type': 'application/json; charset=UTF-8' });
      res.end(JSON.stringify(payload));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address: AddressInfo | string | null = server.address();
  if (!address || typeof address === 'string') throw new Error('the Cloud SQL stand-in is not listening on a TCP port');
  const { port } = address;
  baseUrl = `http://127.0.0.1:${port}`;

  return {
    url: baseUrl,
    port,
    project,
    requests,
    instances,
    backupRuns,
    failNext(operationType, message, code = 'INTERNAL_ERROR') {
      const queue = failures.get(operationType) ?? [];
      queue.push({ code, message });
      failures.set(operationType, queue);
    },
    pollsOf(operationName) {
      return requests.filter((r) => r.method === 'GET' && r.path === `/v1/projects/${project}/operations/${operationName}`).length;
    },
    close() {
      server.closeAllConnections();
      return new Promise<void>((resolve, reject) => server.close((err) => (err ? reject(err) : resolve())));
    },
  };
}
