/**
 * Secrets never enter workflow inputs, results or history: the config names
 * where a secret lives (passwordEnv), the worker resolves it. A full run's
 * exported history, raw from the server and decoded through the codec, holds
 * neither the secret nor (raw) any plaintext payload.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import path from 'node:path';
import { Client } from '@temporalio/client';
import type { Payload } from '@temporalio/common';
import { AesGcmCodec, loadKeyRing } from '../../lib/codec';
import { decideGate, startRun } from '../../cli/runs';
import type { dbPromotion } from '../../workflows';
import { createTestLab, type TestLab } from '../helpers/lab';
import { gateWaiting, startTestTemporal, waitForStatus, type TestTemporal } from '../helpers/temporal';

const SECRET_ENV = 'LIFEBOAT_TEST_PG_PASSWORD';
const SECRET = 'pw-7f3c9e1d-do-not-log';

let lab: TestLab;
let temporal: TestTemporal;

beforeAll(async () => {
  process.env[SECRET_ENV] = SECRET;
  lab = await createTestLab('secrets', { encryption: true, passwordEnv: SECRET_ENV });
  temporal = await startTestTemporal(lab.loaded);
});

afterAll(async () => {
  await temporal?.close();
  await lab?.destroy();
  delete process.env[SECRET_ENV];
});

/** Every payload anywhere in a history (inputs, results, signals, updates, summaries, details). */
function payloadsIn(node: unknown, found: Payload[] = []): Payload[] {
  if (Array.isArray(node)) for (const item of node) payloadsIn(item, found);
  else if (node && typeof node === 'object') {
    const o = node as Record<string, unknown>;
    if (o.metadata && typeof o.metadata === 'object' && o.data instanceof Uint8Array) found.push(o as Payload);
    else for (const value of Object.values(o)) payloadsIn(value, found);
  }
  return found;
}

describe('secrets and encrypted histories', () => {
  it('a promotion that used a database password: no secret in its history, and only ciphertext on the server', async () => {
    const started = await startRun(temporal.client, lab.loaded, { runbook: 'db-promotion', params: ['database=orders'], as: 'alice', incident: 'INC-SECRET', drill: true });
    const handle = temporal.client.workflow.getHandle<typeof dbPromotion>(started.workflowId);
    await waitForStatus(handle, gateWaiting('promote'), 'the promote gate');
    await decideGate(temporal.client, lab.loaded, { workflowId: handle.workflowId, gate: 'promote', as: 'bob', comment: 'go', decision: 'approve' });
    const result = await handle.result();
    expect(result.timeline).toBe(2);

    // Raw, as the server stores it: no secret, and no plaintext input or result either.
    const raw = new Client({ connection: temporal.client.connection, namespace: lab.loaded.config.temporal.namespace });
    const stored = await raw.workflow.getHandle(handle.workflowId).fetchHistory();
    expect(historyToJSON(stored)).not.toContain(SECRET);
    // Decoded through the codec, every payload of the history: readable, and still no secret.
    const codec = new AesGcmCodec(loadKeyRing({ keyFile: path.join(lab.dir, 'keys.json') }));
    const decoded = (await codec.decode(payloadsIn(stored))).map((p) => Buffer.from(p.data ?? new Uint8Array()).toString());
    expect(decoded.length).toBeGreaterThan(10);
    expect(decoded.some((text) => text.includes('"initiator":"alice"'))).toBe(true);
    expect(decoded.filter((text) => text.includes(SECRET))).toEqual([]);
    const started0 = stored.events?.[0]?.workflowExecutionStartedEventAttributes;
    const input = started0?.input?.payloads?.[0];
    expect(Buffer.from(input?.metadata?.encoding ?? new Uint8Array()).toString()).toBe('binary/encrypted');
    expect(Buffer.from(input?.data ?? new Uint8Array()).toString()).not.toContain('alice');
    const completed = stored.events?.find((e) => e.workflowExecutionCompletedEventAttributes)?.workflowExecutionCompletedEventAttributes;
    expect(Buffer.from(completed?.result?.payloads?.[0]?.metadata?.encoding ?? new Uint8Array()).toString()).toBe('binary/encrypted');
  });
});
