/**
 * The application's control plane in each region (the lab's regional service,
 * or your own app exposing the same small HTTP API): freeze risky writes,
 * re-point databases, and synthetic checks (health, a write, a read).
 */
import { ApplicationFailure } from '@temporalio/common';
import { FailureType } from '../contract/failures';
import type { NodeEndpoint } from '../contract/database';

export interface FreezeResult {
  frozen: boolean;
  /** Set when the region's service could not be reached and the step was skipped. */
  skipped?: string;
}

export interface SyntheticCheckResult {
  region: string;
  checkedAt: string;
  /** Row written and read back, per database. */
  writes: Record<string, string>;
}

/** A freeze waits for the writes it already admitted, which can take several seconds. */
const TIMEOUT_MS = 15_000;

export function createServiceControl(services: Readonly<Record<string, { url: string }>>) {
  const base = (region: string): string => {
    const s = Object.hasOwn(services, region) ? services[region] : undefined;
    if (!s) throw ApplicationFailure.nonRetryable(`no service configured for region '${region}' (services.${region}.url)`, FailureType.NotConfigured);
    return s.url.replace(/\/$/, '');
  };

  async function call(region: string, method: string, path: string, body?: unknown): Promise<{ status: number; json: unknown }> {
    const response = await fetch(`${base(region)}${path}`, {
      method,
      headers: body === undefined ? undefined : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
    const text = await response.text();
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = text;
    }
    return { status: response.status, json };
  }

  const errorOf = (json: unknown): string =>
    typeof json === 'object' && json !== null && 'error' in json ? String((json as { error: unknown }).error) : JSON.stringify(json);

  return {
    /** Sets the write freeze flag. `optional`: an unreachable service is skipped with the reason (its region is lost). */
    async setWriteFreeze(region: string, frozen: boolean, reason: string, optional: boolean): Promise<FreezeResult> {
      try {
        const r = await call(region, 'POST', '/control/freeze', { frozen, reason });
        if (r.status !== 200) throw new Error(`freeze answered ${r.status}: ${errorOf(r.json)}`);
        return { frozen };
      } catch (err) {
        if (optional && isUnreachable(err)) return { frozen: false, skipped: `service in ${region} unreachable: ${(err as Error).message}` };
        throw err;
      }
    },

    /** `on`: the database's requests in `region` get the maintenance page (it has nowhere allowed to run); off: served again. */
    async setMaintenance(region: string, database: string, on: boolean, reason: string): Promise<void> {
      const r = await call(region, 'POST', `/control/maintenance/${encodeURIComponent(database)}`, { on, reason });
      if (r.status !== 200) throw new Error(`maintenance of ${database} in ${region} answered ${r.status}: ${errorOf(r.json)}`);
    },

    async repointDatabases(region: string, routes: Readonly<Record<string, NodeEndpoint>>): Promise<void> {
      for (const [database, node] of Object.entries(routes)) {
        const r = await call(region, 'PUT', `/control/databases/${encodeURIComponent(database)}`, { host: node.host, port: node.port });
        if (r.status !== 200) throw new Error(`re-pointing ${database} in ${region} answered ${r.status}: ${errorOf(r.json)}`);
      }
    },

    /** Health, then a write and its read-back per database; fails (retryable) on the first red check. */
    async syntheticCheck(region: string, databases: readonly string[], runId: string): Promise<SyntheticCheckResult> {
      const red = (what: string) => ApplicationFailure.retryable(`synthetic check in ${region} red: ${what}`, FailureType.SyntheticCheckFailed);
      const health = await call(region, 'GET', '/health').catch((err: Error) => ({ status: 0, json: err.message }));
      if (health.status !== 200) throw red(`health ${health.status}: ${errorOf(health.json)}`);
      const writes: Record<string, string> = {};
      for (const database of databases) {
        const db = encodeURIComponent(database);
        const w = await call(region, 'POST', `/records/${db}`, { payload: `lifeboat synthetic check ${runId}` });
        const id = typeof w.json === 'object' && w.json !== null && 'id' in w.json ? String((w.json as { id: unknown }).id) : undefined;
        if (w.status !== 201 || !id) throw red(`write to ${database} answered ${w.status}: ${errorOf(w.json)}`);
        const r = await call(region, 'GET', `/records/${db}/${encodeURIComponent(id)}`);
        if (r.status !== 200) throw red(`read back of ${database} row ${id} answered ${r.status}: ${errorOf(r.json)}`);
        writes[database] = id;
      }
      return { region, checkedAt: new Date().toISOString(), writes };
    },
  };
}

export type ServiceControl = ReturnType<typeof createServiceControl>;

/** Network and name-resolution failures (a lost region), as opposed to an answer from the service. */
function isUnreachable(err: unknown): boolean {
  if ((err as Error).name === 'TimeoutError') return true;
  const code = (err as { cause?: { code?: unknown } }).cause?.code;
  return typeof code === 'string' && (/^E[A-Z]+$/.test(code) || code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'UND_ERR_SOCKET');
}
