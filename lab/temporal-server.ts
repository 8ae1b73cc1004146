/**
 * The real Temporal dev server (Temporal CLI `server start-dev`, with its Web
 * UI), started and stopped by the lab and by the test run's global setup.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Connection } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { msToTs } from '@temporalio/common/lib/time';
import { SEARCH_ATTRIBUTE_REGISTRATIONS } from '../contract/runbook';
import { GiveUp, isAlive, isListening, startDaemon, stopPid, waitFor } from '../lib/processes';

export const TEMPORAL_CLI_VERSION = 'v1.5.1';

export interface DevServerOptions {
  host?: string;
  port: number;
  uiPort: number;
  /** Persistent store; omitted: in memory. */
  dbFile?: string;
  logFile: string;
  /** Codec server the UI calls from the browser to decode encrypted payloads (the lab's: lab/codec.ts). */
  uiCodecEndpoint?: string;
}

export interface DevServer {
  pid: number;
  address: string;
  uiUrl: string;
}

/** The `temporal` binary: set-up exports LIFEBOAT_TEMPORAL_BIN; else the version cache; else PATH. */
export function temporalBinary(): string {
  const fromEnv = process.env.LIFEBOAT_TEMPORAL_BIN;
  if (fromEnv && existsSync(fromEnv)) return fromEnv;
  const cacheRoot = process.env.LIFEBOAT_CACHE_DIR ?? path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'lifeboat');
  const cached = path.join(cacheRoot, 'temporal', TEMPORAL_CLI_VERSION, 'temporal');
  if (existsSync(cached)) return cached;
  return 'temporal';
}

export function devServerArgs(options: DevServerOptions): string[] {
  const host = options.host ?? '127.0.0.1';
  const args = [
    'server', 'start-dev',
    '--ip', host,
    '--port', String(options.port),
    '--ui-port', String(options.uiPort),
    '--log-level', 'warn',
    // Updates (the `decide` gate API) are on by default in recent servers; say so explicitly.
    '--dynamic-config-value', 'frontend.enableUpdateWorkflowExecution=true',
    '--dynamic-config-value', 'frontend.enableServerVersionCheck=false',
  ];
  if (options.dbFile) args.push('--db-filename', options.dbFile);
  if (options.uiCodecEndpoint) args.push('--ui-codec-endpoint', options.uiCodecEndpoint);
  for (const [name, type] of Object.entries(SEARCH_ATTRIBUTE_REGISTRATIONS)) args.push('--search-attribute', `${name}=${type}`);
  return args;
}

/** How often a dev server that lost a race for one of its ports is started again. */
const PORT_RACE_ATTEMPTS = 3;

/**
 * Starts a dev server and waits until its frontend answers and the search
 * attributes exist. The dev server picks its internal ports (history,
 * matching, worker, membership, metrics) itself at start; when another process
 * binds one of them first it exits with "address already in use", and it is
 * started again (it picks new ones), at most PORT_RACE_ATTEMPTS times.
 */
export async function startDevServer(options: DevServerOptions): Promise<DevServer> {
  const host = options.host ?? '127.0.0.1';
  for (let attempt = 1; ; attempt++) {
    if (await isListening(host, options.port)) {
      throw new Error(`port ${options.port} on ${host} is already in use: stop what runs there or pick another lab.temporal.port`);
    }
    const logStart = fileSize(options.logFile);
    const pid = startDaemon(temporalBinary(), devServerArgs(options), options.logFile, { ...process.env, TEMPORAL_VERSION_CHECK_DISABLED: '1' });
    const address = `${host}:${options.port}`;
    try {
      await waitUntilReady(address, pid, options.logFile);
      return { pid, address, uiUrl: `http://${host}:${options.uiPort}` };
    } catch (err) {
      await stopPid(pid, 'SIGTERM', 5000);
      const lostPortRace = err instanceof GiveUp && /address already in use/.test(logSince(options.logFile, logStart));
      if (!lostPortRace || attempt >= PORT_RACE_ATTEMPTS) throw err;
    }
  }
}

function fileSize(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}

/** What a log gained after byte `from`. */
function logSince(file: string, from: number): string {
  try {
    return readFileSync(file).subarray(from).toString('utf8');
  } catch {
    return '';
  }
}

/** The last lines of a log, for an error message. */
function logTail(file: string, lines = 15): string {
  return logSince(file, 0).trimEnd().split('\n').slice(-lines).join('\n');
}

export async function waitUntilReady(address: string, pid: number | undefined, logFile: string, timeoutMs = 90_000): Promise<void> {
  await waitFor(
    `the Temporal dev server at ${address} (log: ${logFile})`,
    async () => {
      if (pid !== undefined && !isAlive(pid)) throw new GiveUp(`the Temporal dev server exited; see ${logFile}, which ends:\n${logTail(logFile)}`);
      const connection = await Connection.connect({ address, connectTimeout: 1000 });
      try {
        const sa = await connection.operatorService.listSearchAttributes({ namespace: 'default' });
        const missing = Object.keys(SEARCH_ATTRIBUTE_REGISTRATIONS).filter((name) => !(name in (sa.customAttributes ?? {})));
        return missing.length === 0 ? true : undefined;
      } finally {
        await connection.close();
      }
    },
    timeoutMs,
    500,
  );
}

/** Registers `namespace` (if missing) with the Lifeboat search attributes; the dev server only sets up `default`. */
export async function ensureNamespace(address: string, namespace: string): Promise<void> {
  if (namespace === 'default') return;
  const connection = await Connection.connect({ address, connectTimeout: 5000 });
  try {
    try {
      await connection.workflowService.describeNamespace({ namespace });
    } catch {
      await connection.workflowService.registerNamespace({ namespace, workflowExecutionRetentionPeriod: msToTs('1 day') });
    }
    const types = { Keyword: temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD, Bool: temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_BOOL } as const;
    const existing = await waitFor(`namespace ${namespace}`, async () => connection.operatorService.listSearchAttributes({ namespace }), 30_000, 250);
    const missing = Object.entries(SEARCH_ATTRIBUTE_REGISTRATIONS).filter(([name]) => !(name in (existing.customAttributes ?? {})));
    if (missing.length > 0) {
      await connection.operatorService.addSearchAttributes({ namespace, searchAttributes: Object.fromEntries(missing.map(([name, type]) => [name, types[type]])) });
    }
  } finally {
    await connection.close();
  }
}

export async function stopDevServer(pid: number): Promise<void> {
  // SIGTERM lets the server flush its SQLite store.
  await stopPid(pid, 'SIGTERM', 20_000);
}
