/**
 * Connections to Temporal for clients and workers. The config file gives the
 * defaults; @temporalio/envconfig lays the standard Temporal settings on top
 * (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TEMPORAL_TLS_*,
 * TEMPORAL_PROFILE and temporal.toml profiles), so one build runs against the
 * lab, a self-hosted cluster or Temporal Cloud.
 */
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, type NativeConnectionOptions } from '@temporalio/worker';
import { loadClientConfigProfile, toClientOptions, type ClientConfigProfile } from '@temporalio/envconfig';
import path from 'node:path';
import type { DataConverter } from '@temporalio/common';
import type { LoadedConfig } from '../config/load';
import { getDataConverter, loadKeyRing } from './codec';

export interface TemporalTarget {
  address: string;
  namespace: string;
  /** TLS, API key and gRPC metadata from envconfig (absent: plain connection, as in the lab). */
  connection: Omit<NativeConnectionOptions, 'address'>;
  taskQueue: string;
  uiUrl: string;
  /** Where the payload key ring comes from, when payloads are encrypted. */
  encryption?: { keyFile?: string; keysEnv?: string };
}

export function temporalTarget(loaded: LoadedConfig, env: NodeJS.ProcessEnv = process.env): TemporalTarget {
  const t = loaded.config.temporal;
  const profile = temporalProfile(env);
  const { connectionOptions } = toClientOptions({ ...profile, address: profile.address ?? t.address, namespace: profile.namespace ?? t.namespace });
  const { address, ...connection } = connectionOptions;
  return {
    address: address ?? t.address,
    namespace: profile.namespace ?? t.namespace,
    connection,
    taskQueue: t.taskQueue,
    uiUrl: (t.uiUrl ?? `http://127.0.0.1:${loaded.config.lab.temporal.uiPort}`).replace(/\/$/, ''),
    encryption: t.encryption && {
      keyFile: t.encryption.keyFile ? path.resolve(path.dirname(loaded.file), t.encryption.keyFile) : undefined,
      keysEnv: t.encryption.keysEnv,
    },
  };
}

/** The envconfig profile (TEMPORAL_PROFILE, default `default`) from temporal.toml and TEMPORAL_* variables. */
function temporalProfile(env: NodeJS.ProcessEnv): ClientConfigProfile {
  const overrideEnvVars = Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => e[0].startsWith('TEMPORAL_') && e[1] !== undefined));
  try {
    return loadClientConfigProfile({ profile: env.TEMPORAL_PROFILE, overrideEnvVars });
  } catch (err) {
    throw new Error(`Temporal connection settings (temporal.toml / TEMPORAL_*): ${(err as Error).message}`, { cause: err });
  }
}

/** The data converter every client and worker of this target uses (encrypting when configured). */
export function dataConverter(target: TemporalTarget): DataConverter {
  return getDataConverter(target.encryption ? loadKeyRing(target.encryption) : undefined);
}

/** Names the address and what to do when Temporal cannot be reached. */
export class TemporalUnreachableError extends Error {
  override readonly name = 'TemporalUnreachableError';
  constructor(address: string, cause: unknown) {
    super(`cannot reach Temporal at ${address} (${(cause as Error).message}): start the lab with 'lifeboat lab up' or set temporal.address`, { cause });
  }
}

export async function connectClient(target: TemporalTarget): Promise<Client> {
  try {
    const connection = await Connection.connect({ ...target.connection, address: target.address, connectTimeout: 5000 });
    return new Client({ connection, namespace: target.namespace, dataConverter: dataConverter(target) });
  } catch (err) {
    throw new TemporalUnreachableError(target.address, err);
  }
}

export async function connectWorker(target: TemporalTarget): Promise<NativeConnection> {
  try {
    return await NativeConnection.connect({ ...target.connection, address: target.address });
  } catch (err) {
    throw new TemporalUnreachableError(target.address, err);
  }
}

/** The run's page in the Temporal Web UI. */
export function runUrl(target: TemporalTarget, workflowId: string, runId?: string): string {
  return `${target.uiUrl}/namespaces/${encodeURIComponent(target.namespace)}/workflows/${encodeURIComponent(workflowId)}${runId ? `/${runId}` : ''}`;
}
