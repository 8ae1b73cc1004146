/**
 * Connections to Temporal for clients and workers, from the config with the
 * standard environment variables (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE) on top.
 */
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import path from 'node:path';
import type { DataConverter } from '@temporalio/common';
import type { LoadedConfig } from '../config/load';
import { getDataConverter, loadKeyRing } from './codec';

export interface TemporalTarget {
  address: string;
  namespace: string;
  taskQueue: string;
  uiUrl: string;
  /** Where the payload key ring comes from, when payloads are encrypted. */
  encryption?: { keyFile?: string; keysEnv?: string };
}

export function temporalTarget(loaded: LoadedConfig): TemporalTarget {
  const t = loaded.config.temporal;
  return {
    address: process.env.TEMPORAL_ADDRESS ?? t.address,
    namespace: process.env.TEMPORAL_NAMESPACE ?? t.namespace,
    taskQueue: t.taskQueue,
    uiUrl: (t.uiUrl ?? `http://127.0.0.1:${loaded.config.lab.temporal.uiPort}`).replace(/\/$/, ''),
    encryption: t.encryption && {
      keyFile: t.encryption.keyFile ? path.resolve(path.dirname(loaded.file), t.encryption.keyFile) : undefined,
      keysEnv: t.encryption.keysEnv,
    },
  };
}

/** The data converter every client and worker of this target uses (encrypting when configured). */
export function dataConverter(target: TemporalTarget): DataConverter | undefined {
  return target.encryption ? getDataConverter(loadKeyRing(target.encryption)) : undefined;
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
    const connection = await Connection.connect({ address: target.address, connectTimeout: 5000 });
    return new Client({ connection, namespace: target.namespace, dataConverter: dataConverter(target) });
  } catch (err) {
    throw new TemporalUnreachableError(target.address, err);
  }
}

export async function connectWorker(target: TemporalTarget): Promise<NativeConnection> {
  try {
    return await NativeConnection.connect({ address: target.address });
  } catch (err) {
    throw new TemporalUnreachableError(target.address, err);
  }
}

/** The run's page in the Temporal Web UI. */
export function runUrl(target: TemporalTarget, workflowId: string, runId?: string): string {
  return `${target.uiUrl}/namespaces/${encodeURIComponent(target.namespace)}/workflows/${encodeURIComponent(workflowId)}${runId ? `/${runId}` : ''}`;
}
