/**
 * The lab's application service: one process per region, serving reads and
 * writes of `lab_records` against its region's database endpoints, so drills
 * have real traffic to freeze, re-point and check for data loss.
 *
 * Every request opens a fresh connection to the database's current endpoint
 * (no pool), so a re-point takes effect on the very next request.
 *
 * Run directly: `node dist/lab/service.js --region east --port 55580 --routes '{"orders":{...}}'`.
 */
import http from 'node:http';
import { parseArgs } from 'node:util';
import type { Client } from 'pg';
import { withPgSession } from '../lib/pg';
import { z } from 'zod';

/** Where a database's traffic goes right now. */
export interface DatabaseRoute {
  host: string;
  port: number;
  /** Database name inside the cluster. */
  database: string;
  user: string;
}

/** One database as `GET /health` reports it, read live. */
export interface DatabaseHealth {
  host: string;
  port: number;
  reachable: boolean;
  inRecovery?: boolean;
  readOnly?: boolean;
  error?: string;
  /** Its requests get the maintenance page (HTTP 503): it has nowhere allowed to run (residency); why. */
  maintenance?: string;
}

/** Body of `GET /health` (HTTP 200 when every database not under maintenance is reachable, else 503). */
export interface ServiceHealth {
  region: string;
  frozen: boolean;
  databases: Record<string, DatabaseHealth>;
}

/** A row of `lab_records`; `id` is a decimal string because bigserial outgrows JSON's safe integers. */
export interface LabRecord {
  id: string;
  payload: string;
  writtenAt: string;
  /** Region of the service that served the request. */
  region: string;
}

/** Body of `GET /records/<db>/stats`: equal count and checksum on two nodes means equal data. */
export interface RecordStats {
  count: number;
  /** md5 over `id:payload` in id order; null for an empty table. */
  checksum: string | null;
}

/** Body of `POST /control/freeze`. */
export interface FreezeState {
  frozen: boolean;
  reason: string | null;
  /** When the freeze was last changed; null if never. */
  changedAt: string | null;
}

export interface LabServiceOptions {
  region: string;
  databases: Readonly<Record<string, DatabaseRoute>>;
  /** One line per request; defaults to stdout. */
  log?: (line: string) => void;
}

export interface LabService {
  readonly region: string;
  readonly server: http.Server;
  /** A copy of the current routing map. */
  routes(): Record<string, DatabaseRoute>;
  freezeState(): FreezeState;
  /** Listens on 127.0.0.1 (the lab's databases trust loopback, so never wider); resolves to the port. */
  listen(port: number): Promise<number>;
  /** Stops accepting, lets in-flight requests finish for a moment, then drops what is left. */
  close(): Promise<void>;
}

/** Bad command-line arguments; the message says what to fix. */
export class ServiceUsageError extends Error {
  override readonly name = 'ServiceUsageError';
}

export interface ServiceArgs {
  region: string;
  port: number;
  databases: Record<string, DatabaseRoute>;
}

const LISTEN_HOST = '127.0.0.1';
const MAX_BODY_BYTES = 64 * 1024;
const CONNECT_TIMEOUT_MS = 3000;
const STATEMENT_TIMEOUT_MS = 5000;
const HEALTH_TIMEOUT_MS = 2000;
const CLOSE_GRACE_MS = 5000;
const BIGINT_MAX = 9223372036854775807n;

const name = z.string().regex(/^[a-z][a-z0-9_-]{0,62}$/, 'use lower-case letters, digits, "-" or "_", starting with a letter');
const port = z.number().int().min(1).max(65535);
const endpointBody = z.strictObject({ host: z.string().min(1), port });

/** The `--routes` JSON: database name to endpoint; `user` defaults to `postgres` as in the config. */
export const routesSchema = z
  .record(name, endpointBody.extend({ database: z.string().min(1), user: z.string().min(1).default('postgres') }))
  .refine((routes) => Object.keys(routes).length > 0, 'name at least one database');

const writeBody = z.strictObject({
  payload: z.string().min(1, 'must not be empty').max(1000, 'must be at most 1000 characters'),
});

const maintenanceBody = z.strictObject({
  on: z.boolean(),
  reason: z.string().max(500, 'must be at most 500 characters').optional(),
});

const freezeBody = z.strictObject({
  frozen: z.boolean(),
  reason: z.string().max(500, 'must be at most 500 characters').optional(),
});

/** A refusal with its HTTP status; everything else is a 500. */
class HttpError extends Error {
  override readonly name = 'HttpError';
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(message);
  }
}

interface Reply {
  status: number;
  body: unknown;
  headers?: Readonly<Record<string, string>>;
}

type Handler = (req: http.IncomingMessage, params: readonly string[]) => Promise<Reply>;

/**
 * A region's service over its routing map; not listening until `listen`.
 * Freeze and routes live in memory: a restarted service starts unfrozen on its command-line routes.
 */
export function createLabService(options: LabServiceOptions): LabService {
  const { region } = options;
  const log = options.log ?? ((line: string) => void process.stdout.write(`${line}\n`));
  // A Map, not an object: names come from URLs, and `constructor` must not resolve.
  const routes = new Map<string, DatabaseRoute>(Object.entries(options.databases).map(([db, r]) => [db, { ...r }]));
  let freeze: FreezeState = { frozen: false, reason: null, changedAt: null };
  /** Databases whose requests get the maintenance page, with why and since when. */
  const maintenance = new Map<string, { reason: string; since: string }>();
  const inFlightWrites = new Set<Promise<unknown>>();

  function known(db: string): DatabaseRoute {
    const found = routes.get(db);
    if (!found) throw new HttpError(404, `unknown database '${db}' (this service routes: ${[...routes.keys()].join(', ') || 'none'})`);
    return found;
  }

  /** The route a request uses; a database under maintenance answers the maintenance page instead. */
  function route(db: string): DatabaseRoute {
    const found = known(db);
    const page = maintenance.get(db);
    if (page) throw new HttpError(503, `${db} is under maintenance (since ${page.since}): ${page.reason}`, { 'Retry-After': '300' });
    return found;
  }

  async function onDatabase<T>(db: string, target: DatabaseRoute, work: (client: Client) => Promise<T>): Promise<T> {
    try {
      return await withConnection(target, CONNECT_TIMEOUT_MS, STATEMENT_TIMEOUT_MS, work);
    } catch (err) {
      throw new HttpError(502, `${db} at ${target.host}:${target.port}: ${describeError(err)}`);
    }
  }

  const health: Handler = async () => {
    const entries = await Promise.all(
      [...routes].map(async ([db, target]): Promise<[string, DatabaseHealth]> => {
        const where = { host: target.host, port: target.port };
        const page = maintenance.get(db);
        if (page) return [db, { ...where, reachable: false, maintenance: page.reason }];
        try {
          const row = await withConnection(target, HEALTH_TIMEOUT_MS, HEALTH_TIMEOUT_MS, async (c) => {
            const r = await c.query<{ in_recovery: boolean; read_only: string }>(
              "SELECT pg_is_in_recovery() AS in_recovery, current_setting('default_transaction_read_only') AS read_only",
            );
            return r.rows[0];
          });
          return [db, { ...where, reachable: true, inRecovery: row?.in_recovery, readOnly: row?.read_only === 'on' }];
        } catch (err) {
          return [db, { ...where, reachable: false, error: describeError(err) }];
        }
      }),
    );
    const body: ServiceHealth = { region, frozen: freeze.frozen, databases: Object.fromEntries(entries) };
    return { status: entries.every(([, h]) => h.reachable || h.maintenance !== undefined) ? 200 : 503, body };
  };

  const writeRecord: Handler = async (req, [db = '']) => {
    const target = route(db);
    const { payload } = parseBody(writeBody, await readJson(req));
    // Checked after the body is read and with no await before the write is registered, so a freeze that has returned has drained every write it let through.
    if (freeze.frozen) throw new HttpError(503, `writes are frozen${freeze.reason ? `: ${freeze.reason}` : ''} (since ${freeze.changedAt ?? 'start'})`);
    const write = onDatabase(db, target, async (c) => {
      const r = await c.query<{ id: string; payload: string; written_at: Date }>(
        'INSERT INTO lab_records (payload) VALUES ($1) RETURNING id::text AS id, payload, written_at',
        [payload],
      );
      return r.rows[0];
    });
    inFlightWrites.add(write);
    try {
      const row = await write;
      if (!row) throw new HttpError(502, `${db}: the insert returned no row`);
      return { status: 201, body: toRecord(row, region) };
    } finally {
      inFlightWrites.delete(write);
    }
  };

  const readRecord: Handler = async (_req, [db = '', id = '']) => {
    const target = route(db);
    if (!/^[1-9][0-9]{0,18}$/.test(id) || BigInt(id) > BIGINT_MAX) throw new HttpError(400, `record id must be a positive integer, got '${id}'`);
    const row = await onDatabase(db, target, async (c) => {
      const r = await c.query<{ id: string; payload: string; written_at: Date }>(
        'SELECT id::text AS id, payload, written_at FROM lab_records WHERE id = $1::bigint',
        [id],
      );
      return r.rows[0];
    });
    if (!row) throw new HttpError(404, `no record ${id} in ${db}`);
    return { status: 200, body: toRecord(row, region) };
  };

  const recordStats: Handler = async (_req, [db = '']) => {
    const target = route(db);
    const row = await onDatabase(db, target, async (c) => {
      const r = await c.query<{ count: string; checksum: string | null }>(
        "SELECT count(*)::text AS count, md5(string_agg(id || ':' || payload, ',' ORDER BY id)) AS checksum FROM lab_records",
      );
      return r.rows[0];
    });
    const body: RecordStats = { count: Number(row?.count ?? 0), checksum: row?.checksum ?? null };
    return { status: 200, body };
  };

  const setFreeze: Handler = async (req) => {
    const { frozen, reason } = parseBody(freezeBody, await readJson(req));
    const changed: FreezeState = { frozen, reason: reason ?? null, changedAt: new Date().toISOString() };
    freeze = changed;
    // Answer only once the writes admitted before the freeze have ended: after this reply, nothing more lands.
    if (frozen) await Promise.allSettled([...inFlightWrites]);
    return { status: 200, body: changed };
  };

  const listRoutes: Handler = async () => ({ status: 200, body: { region, databases: Object.fromEntries(routes) } });

  const setMaintenance: Handler = async (req, [db = '']) => {
    known(db);
    const { on, reason } = parseBody(maintenanceBody, await readJson(req));
    if (on) maintenance.set(db, { reason: reason ?? 'no reason given', since: new Date().toISOString() });
    else maintenance.delete(db);
    return { status: 200, body: { name: db, maintenance: maintenance.get(db) ?? null } };
  };

  const repoint: Handler = async (req, [db = '']) => {
    const current = known(db);
    const endpoint = parseBody(endpointBody, await readJson(req));
    const next: DatabaseRoute = { ...current, host: endpoint.host, port: endpoint.port };
    routes.set(db, next);
    return { status: 200, body: { name: db, ...next } };
  };

  /** Path patterns (`:` marks a parameter) and the handler per method; the first match wins, so `stats` is never an id. */
  const table: readonly { pattern: readonly string[]; methods: Readonly<Record<string, Handler>> }[] = [
    { pattern: ['health'], methods: { GET: health } },
    { pattern: ['records', ':db'], methods: { POST: writeRecord } },
    { pattern: ['records', ':db', 'stats'], methods: { GET: recordStats } },
    { pattern: ['records', ':db', ':id'], methods: { GET: readRecord } },
    { pattern: ['control', 'freeze'], methods: { POST: setFreeze } },
    { pattern: ['control', 'databases'], methods: { GET: listRoutes } },
    { pattern: ['control', 'databases', ':db'], methods: { PUT: repoint } },
    { pattern: ['control', 'maintenance', ':db'], methods: { POST: setMaintenance } },
  ];

  async function dispatch(req: http.IncomingMessage, pathname: string): Promise<Reply> {
    const segments = splitPath(pathname);
    for (const { pattern, methods } of table) {
      const params = matchPattern(pattern, segments);
      if (!params) continue;
      const handler = Object.hasOwn(methods, req.method ?? '') ? methods[req.method ?? ''] : undefined;
      if (!handler) {
        const allowed = Object.keys(methods).join(', ');
        throw new HttpError(405, `${req.method ?? '?'} is not allowed on ${pathname} (use ${allowed})`, { Allow: allowed });
      }
      return handler(req, params);
    }
    throw new HttpError(404, `no such path: ${pathname}`);
  }

  const server = http.createServer((req, res) => {
    const started = performance.now();
    const pathname = (req.url ?? '/').split('?')[0] ?? '/';
    void dispatch(req, pathname)
      .catch((err: unknown): Reply => {
        if (err instanceof HttpError) return { status: err.status, body: { error: err.message }, headers: err.headers };
        return { status: 500, body: { error: `internal error: ${describeError(err)}` } };
      })
      .then((reply) => {
        res.writeHead(reply.status, { 'Content-Type': 'application/json', ...reply.headers });
        res.end(`${JSON.stringify(reply.body)}\n`);
        const error = reply.status >= 400 && isErrorBody(reply.body) ? ` ${reply.body.error}` : '';
        log(`${new Date().toISOString()} ${region} ${req.method ?? '?'} ${pathname} ${reply.status} ${Math.round(performance.now() - started)}ms${error}`);
      })
      // A failed reply (the client went away) must not take the service down with an unhandled rejection.
      .catch((err: unknown) => log(`${new Date().toISOString()} ${region} ${req.method ?? '?'} ${pathname} reply failed: ${describeError(err)}`));
  });

  return {
    region,
    server,
    routes: () => Object.fromEntries([...routes].map(([db, r]) => [db, { ...r }])),
    freezeState: () => ({ ...freeze }),
    listen(listenPort: number): Promise<number> {
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(listenPort, LISTEN_HOST, () => {
          server.off('error', reject);
          const address = server.address();
          if (address && typeof address === 'object') resolve(address.port);
          else reject(new Error('the lab service has no TCP address'));
        });
      });
    },
    close(): Promise<void> {
      if (!server.listening) return Promise.resolve();
      return new Promise((resolve) => {
        const force = setTimeout(() => server.closeAllConnections(), CLOSE_GRACE_MS);
        server.close(() => {
          clearTimeout(force);
          resolve();
        });
        server.closeIdleConnections();
      });
    },
  };
}

function withConnection<T>(target: DatabaseRoute, connectMs: number, statementMs: number, work: (client: Client) => Promise<T>): Promise<T> {
  return withPgSession(
    {
      host: target.host,
      port: target.port,
      user: target.user,
      database: target.database,
      connectionTimeoutMillis: connectMs,
      statement_timeout: statementMs,
      // Client-side too: a node that stops answering mid-query must not hang the request.
      query_timeout: statementMs + 1000,
      application_name: 'lifeboat-lab-service',
    },
    work,
  );
}

function toRecord(row: { id: string; payload: string; written_at: Date }, region: string): LabRecord {
  return { id: row.id, payload: row.payload, writtenAt: row.written_at.toISOString(), region };
}

function splitPath(pathname: string): string[] {
  try {
    return pathname.split('/').filter((s) => s !== '').map((s) => decodeURIComponent(s));
  } catch {
    throw new HttpError(400, `malformed percent-encoding in path ${pathname}`);
  }
}

function matchPattern(pattern: readonly string[], segments: readonly string[]): string[] | undefined {
  if (segments.length !== pattern.length) return undefined;
  const params: string[] = [];
  for (const [i, part] of pattern.entries()) {
    const segment = segments[i] ?? '';
    if (part.startsWith(':')) {
      params.push(segment);
    } else if (part !== segment) {
      return undefined;
    }
  }
  return params;
}

async function readJson(req: http.IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk));
    size += buffer.length;
    // Keep draining so the reply can still be sent on this connection; just stop keeping the bytes.
    if (size <= MAX_BODY_BYTES) chunks.push(buffer);
  }
  if (size > MAX_BODY_BYTES) throw new HttpError(413, `request body is larger than ${MAX_BODY_BYTES} bytes`);
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') throw new HttpError(400, 'request body is empty: send a JSON object');
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new HttpError(400, `request body is not valid JSON: ${describeError(err)}`);
  }
}

function parseBody<S extends z.ZodType>(schema: S, body: unknown): z.output<S> {
  const parsed = schema.safeParse(body);
  if (!parsed.success) throw new HttpError(400, `invalid request body: ${formatIssues(parsed.error.issues, '(body)').join('; ')}`);
  return parsed.data;
}

/** `path: message` per problem; `top` names the whole value when the problem is not inside it. */
function formatIssues(issues: readonly z.core.$ZodIssue[], top: string): string[] {
  return issues.map((issue) => `${issue.path.length > 0 ? issue.path.map(String).join('.') : top}: ${issue.message}`);
}

function isErrorBody(body: unknown): body is { error: string } {
  return typeof body === 'object' && body !== null && 'error' in body && typeof body.error === 'string';
}

/** pg's connection errors can be an AggregateError with an empty message; say what failed anyway. */
function describeError(err: unknown): string {
  if (err instanceof AggregateError && err.errors.length > 0) return err.errors.map(describeError).join('; ');
  if (err instanceof Error) {
    const code = 'code' in err && typeof err.code === 'string' ? err.code : undefined;
    return err.message || code || err.name;
  }
  return String(err);
}

const USAGE = "usage: service --region NAME --port PORT --routes '{\"<db>\":{\"host\":\"127.0.0.1\",\"port\":5432,\"database\":\"<db>\",\"user\":\"postgres\"}}'";

/** Parses and validates the command line; throws ServiceUsageError saying what is wrong. */
export function parseServiceArgs(argv: readonly string[]): ServiceArgs {
  let values: { region?: string; port?: string; routes?: string };
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: { region: { type: 'string' }, port: { type: 'string' }, routes: { type: 'string' } },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    throw new ServiceUsageError(`${describeError(err)}\n${USAGE}`);
  }
  const missing = (['region', 'port', 'routes'] as const).filter((k) => values[k] === undefined);
  if (missing.length > 0) throw new ServiceUsageError(`missing ${missing.map((k) => `--${k}`).join(', ')}\n${USAGE}`);

  const region = name.safeParse(values.region);
  if (!region.success) throw new ServiceUsageError(`--region: ${region.error.issues[0]?.message ?? 'invalid'}`);
  const portText = values.port ?? '';
  const portNumber = /^[0-9]{1,5}$/.test(portText) ? Number(portText) : Number.NaN;
  if (!port.safeParse(portNumber).success) throw new ServiceUsageError(`--port must be a TCP port (1-65535), got '${portText}'`);

  let routesJson: unknown;
  try {
    routesJson = JSON.parse(values.routes ?? '') as unknown;
  } catch (err) {
    throw new ServiceUsageError(`--routes is not valid JSON: ${describeError(err)}`);
  }
  const routes = routesSchema.safeParse(routesJson);
  if (!routes.success) throw new ServiceUsageError(`--routes: ${formatIssues(routes.error.issues, '(top level)').join('; ')}`);
  return { region: region.data, port: portNumber, databases: routes.data };
}

/** The process entry point: serves until SIGTERM or SIGINT. Usage errors exit 2, a port in use exits 1. */
export async function main(argv: readonly string[]): Promise<void> {
  let args: ServiceArgs;
  try {
    args = parseServiceArgs(argv);
  } catch (err) {
    process.stderr.write(`lab service: ${describeError(err)}\n`);
    process.exitCode = 2;
    return;
  }
  const service = createLabService({ region: args.region, databases: args.databases });
  try {
    await service.listen(args.port);
  } catch (err) {
    process.stderr.write(`lab service ${args.region}: cannot listen on ${LISTEN_HOST}:${args.port}: ${describeError(err)}\n`);
    process.exitCode = 1;
    return;
  }
  process.stdout.write(`lab service ${args.region} listening on http://${LISTEN_HOST}:${args.port} (databases: ${Object.keys(args.databases).join(', ')})\n`);
  const stop = (signal: NodeJS.Signals) => {
    process.stdout.write(`lab service ${args.region}: ${signal}, stopping\n`);
    void service.close().then(() => process.exit(0));
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

if (require.main === module) {
  void main(process.argv.slice(2));
}
