/**
 * Payload encryption: AES-256-GCM with key ids, rotation, tamper detection;
 * failures whose message and stack trace are encrypted too; the codec server's
 * token, CORS and namespace rules; and a real run whose history on the Temporal
 * server holds only ciphertext, readable through the codec server.
 */
import { AddressInfo } from 'node:net';
import type http from 'node:http';
import { Client, Connection } from '@temporalio/client';
import { ApplicationFailure, defaultPayloadConverter } from '@temporalio/common';
import { decodeFailure, encodeFailure, loadDataConverter } from '@temporalio/common/lib/internal-non-workflow';
import { temporal } from '@temporalio/proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { AesGcmCodec, ENCRYPTED_ENCODING, getDataConverter, newKeyRing, parseKeyRing, PayloadDecryptionError } from '../../lib/codec';
import { createCodecServer } from '../../lib/codec-server';
import { ensureNamespace } from '../../lab/temporal-server';

const payload = (value: unknown) => defaultPayloadConverter.toPayload(value);
const text = (p: { data?: Uint8Array | null }) => Buffer.from(p.data ?? new Uint8Array()).toString();

describe('AesGcmCodec', () => {
  it('round-trips payloads and leaves no plaintext in the ciphertext', async () => {
    const codec = new AesGcmCodec(newKeyRing('k1'));
    const [encoded] = await codec.encode([payload({ initiator: 'alice', secret: 'hunter2' })]);
    expect(Buffer.from(encoded?.metadata?.encoding ?? new Uint8Array()).toString()).toBe(ENCRYPTED_ENCODING);
    expect(Buffer.from(encoded?.metadata?.['encryption-key-id'] ?? new Uint8Array()).toString()).toBe('k1');
    expect(text(encoded ?? {})).not.toContain('hunter2');
    const [decoded] = await codec.decode([encoded ?? {}]);
    expect(defaultPayloadConverter.fromPayload(decoded ?? {})).toEqual({ initiator: 'alice', secret: 'hunter2' });
  });

  it('after a key rotation, payloads under the old key still decrypt and new ones use the new key', async () => {
    const before = newKeyRing('k1');
    const [old] = await new AesGcmCodec(before).encode([payload('written under k1')]);
    const rotated = { current: 'k2', keys: { ...before.keys, k2: newKeyRing('k2').keys.k2 ?? '' } };
    const codec = new AesGcmCodec(rotated);
    const [fresh] = await codec.encode([payload('written under k2')]);
    expect(Buffer.from(fresh?.metadata?.['encryption-key-id'] ?? new Uint8Array()).toString()).toBe('k2');
    const decoded = await codec.decode([old ?? {}, fresh ?? {}]);
    expect(decoded.map((p) => defaultPayloadConverter.fromPayload(p))).toEqual(['written under k1', 'written under k2']);
  });

  it('refuses a payload under an unknown key, and a tampered one, naming the key id', async () => {
    const [encoded] = await new AesGcmCodec(newKeyRing('k1')).encode([payload('x')]);
    await expect(new AesGcmCodec(newKeyRing('k9')).decode([encoded ?? {}])).rejects.toThrow(new PayloadDecryptionError("payload encrypted with key 'k1', which is not in the key ring"));
    const ring = newKeyRing('k1');
    const [sealed] = await new AesGcmCodec(ring).encode([payload('x')]);
    const data = Buffer.from(sealed?.data ?? new Uint8Array());
    data[20] = (data[20] ?? 0) ^ 1;
    await expect(new AesGcmCodec(ring).decode([{ ...sealed, data }])).rejects.toThrow("payload under key 'k1' failed authentication: it was altered or the key is wrong");
  });

  it('passes unencrypted payloads through (histories from before encryption stay readable)', async () => {
    const plain = payload('old run');
    expect(await new AesGcmCodec(newKeyRing()).decode([plain])).toEqual([plain]);
  });

  it('validates a key ring and says what is wrong', () => {
    expect(() => parseKeyRing('{"current":"k1","keys":{"k1":"c2hvcnQ="}}', 'keys.json')).toThrow('key ring keys.json: keys.k1: each key must be 32 bytes, base64-encoded');
    expect(() => parseKeyRing(JSON.stringify({ current: 'k2', keys: newKeyRing('k1').keys }), 'keys.json')).toThrow('the current key id must be one of keys');
    expect(() => parseKeyRing('not json', '$LIFEBOAT_KEYS')).toThrow(/^key ring \$LIFEBOAT_KEYS is not JSON/);
  });
});

describe('failures', () => {
  it("a failure's message and stack trace, and its cause's, are ciphertext in the encoded proto; decoding restores them", async () => {
    const converter = loadDataConverter(getDataConverter(newKeyRing('k1')));
    const cause = new Error('PostgreSQL: password authentication failed for user "replicator"');
    const error = ApplicationFailure.create({ message: 'gate promote rejected by bob: east is back', type: 'GateRejected', nonRetryable: true, cause });
    const failure = await encodeFailure(converter.payloadCodecs, converter.failureConverter.errorToFailure(error, converter.payloadConverter));
    const wire = Buffer.from(temporal.api.failure.v1.Failure.encode(failure).finish()).toString('latin1');
    for (const secret of ['east is back', 'replicator', 'password authentication', 'codec.test.ts']) expect(wire).not.toContain(secret);
    expect(failure.message).toBe('Encoded failure');
    expect(failure.stackTrace).toBe('');
    expect(Buffer.from(failure.encodedAttributes?.metadata?.encoding ?? new Uint8Array()).toString()).toBe(ENCRYPTED_ENCODING);
    expect(Buffer.from(failure.cause?.encodedAttributes?.metadata?.encoding ?? new Uint8Array()).toString()).toBe(ENCRYPTED_ENCODING);
    expect(failure.applicationFailureInfo?.type).toBe('GateRejected'); // the type stays in clear: retry policies match on it

    const decoded = converter.failureConverter.failureToError(await decodeFailure(converter.payloadCodecs, failure), converter.payloadConverter);
    expect(decoded).toBeInstanceOf(ApplicationFailure);
    expect(decoded.message).toBe('gate promote rejected by bob: east is back');
    expect(decoded.stack).toContain('codec.test.ts');
    expect((decoded as ApplicationFailure).cause?.message).toBe('PostgreSQL: password authentication failed for user "replicator"');
  });

  it('without a key ring the failure is still encoded the same way (one converter for the pre-built bundle), as plain JSON', async () => {
    const converter = loadDataConverter(getDataConverter(undefined));
    const failure = await encodeFailure(converter.payloadCodecs, converter.failureConverter.errorToFailure(new Error('plain lab'), converter.payloadConverter));
    expect(failure.message).toBe('Encoded failure');
    expect(defaultPayloadConverter.fromPayload(failure.encodedAttributes ?? {})).toMatchObject({ message: 'plain lab' });
  });
});

describe('codec server, and a history on the Temporal server', () => {
  const ring = newKeyRing('k1');
  const uiOrigin = 'http://127.0.0.1:8233';
  const token = 'test-token-123';
  const namespace = 'lifeboat-test-codec';
  let server: http.Server;
  let base: string;
  let client: Client;

  beforeAll(async () => {
    server = createCodecServer({ codec: new AesGcmCodec(ring), allowedOrigins: [uiOrigin], token, namespaces: [namespace] });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    await ensureNamespace(inject('temporalAddress'), namespace);
    const connection = await Connection.connect({ address: inject('temporalAddress') });
    client = new Client({ connection, namespace, dataConverter: getDataConverter(ring) });
  });

  afterAll(async () => {
    server?.close();
    await client?.connection.close();
  });

  const post = (route: string, body: unknown, headers: Record<string, string> = {}) =>
    fetch(`${base}${route}`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-namespace': namespace, origin: uiOrigin, ...headers }, body: JSON.stringify(body) });

  it('answers the UI origin\'s CORS preflight and refuses other origins', async () => {
    const ok = await fetch(`${base}/decode`, { method: 'OPTIONS', headers: { origin: uiOrigin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type,x-namespace,authorization' } });
    expect(ok.status).toBe(204);
    expect(ok.headers.get('access-control-allow-origin')).toBe(uiOrigin);
    expect(ok.headers.get('access-control-allow-headers')).toContain('x-namespace');
    const evil = await fetch(`${base}/decode`, { method: 'OPTIONS', headers: { origin: 'http://evil.example' } });
    expect(evil.status).toBe(403);
    expect(evil.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('refuses requests without the token or for another namespace', async () => {
    const none = await post('/decode', { payloads: [] });
    expect(none.status).toBe(401);
    expect(await none.json()).toEqual({ error: 'an access token is required: Authorization: Bearer <token>' });
    expect((await post('/decode', { payloads: [] }, { authorization: 'Bearer wrong' })).status).toBe(401);
    expect((await post('/decode', { payloads: [] }, { authorization: `Bearer ${token}`, 'x-namespace': 'other' })).status).toBe(403);
    expect((await post('/decode', { nope: 1 }, { authorization: `Bearer ${token}` })).status).toBe(400);
  });

  it('refuses a request from another browser origin even with the token: nothing is decoded for it', async () => {
    const [sealed] = await new AesGcmCodec(ring).encode([payload('for the UI only')]);
    const body = { payloads: [{ metadata: Object.fromEntries(Object.entries(sealed?.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v).toString('base64')])), data: Buffer.from(sealed?.data ?? new Uint8Array()).toString('base64') }] };
    const evil = await post('/decode', body, { authorization: `Bearer ${token}`, origin: 'http://evil.example' });
    expect(evil.status).toBe(403);
    expect(evil.headers.get('access-control-allow-origin')).toBeNull();
    expect(await evil.json()).toEqual({ error: 'origin http://evil.example is not allowed: only http://127.0.0.1:8233' }); // and no payloads
    expect((await post('/decode', body, { authorization: `Bearer ${token}` })).status).toBe(200);
  });

  it('serves without a token only when told to (the lab), and still only its UI origin', async () => {
    expect(() => createCodecServer({ codec: new AesGcmCodec(ring), allowedOrigins: [uiOrigin] })).toThrow('a codec server needs a token (allowUnauthenticated is for the lab only)');
    const lab = createCodecServer({ codec: new AesGcmCodec(ring), allowedOrigins: [uiOrigin], allowUnauthenticated: true });
    await new Promise<void>((resolve) => lab.listen(0, '127.0.0.1', resolve));
    try {
      const at = `http://127.0.0.1:${(lab.address() as AddressInfo).port}/decode`;
      const send = (origin: string) => fetch(at, { method: 'POST', headers: { 'content-type': 'application/json', origin }, body: JSON.stringify({ payloads: [] }) });
      const ui = await send(uiOrigin);
      expect(ui.status).toBe(200);
      expect(ui.headers.get('access-control-allow-origin')).toBe(uiOrigin);
      expect((await send('http://localhost:9999')).status).toBe(403);
    } finally {
      lab.close();
    }
  });

  it('a run\'s input is ciphertext on the server and plaintext through the codec server', async () => {
    const handle = await client.workflow.start('dbPromotion', {
      taskQueue: `codec-test-no-worker-${Date.now()}`,
      workflowId: `codec-test-${Date.now()}`,
      args: [{ database: 'orders', run: { initiator: 'alice-the-commander' } }],
    });
    try {
      // A client without the codec sees what the server stores.
      const raw = new Client({ connection: client.connection, namespace });
      const history = await raw.workflow.getHandle(handle.workflowId).fetchHistory();
      const input = history.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0];
      expect(Buffer.from(input?.metadata?.encoding ?? new Uint8Array()).toString()).toBe(ENCRYPTED_ENCODING);
      expect(JSON.stringify(history)).not.toContain('alice-the-commander');
      expect(Buffer.from(input?.data ?? new Uint8Array()).toString()).not.toContain('alice');

      const asJson = { metadata: Object.fromEntries(Object.entries(input?.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v).toString('base64')])), data: Buffer.from(input?.data ?? new Uint8Array()).toString('base64') };
      const decoded = await post('/decode', { payloads: [asJson] }, { authorization: `Bearer ${token}` });
      expect(decoded.status).toBe(200);
      const body = (await decoded.json()) as { payloads: Array<{ data: string }> };
      expect(JSON.parse(Buffer.from(body.payloads[0]?.data ?? '', 'base64').toString())).toMatchObject({ run: { initiator: 'alice-the-commander' } });
    } finally {
      await handle.terminate('codec test done');
    }
  });
});
