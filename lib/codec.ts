/**
 * Payload encryption for everything Lifeboat sends through Temporal: inputs,
 * results, signals, updates, queries, summaries, and failures' messages and
 * stack traces (lib/failure-converter.mts moves them into a payload).
 * AES-256-GCM with a random 96-bit IV per payload; the key id travels in the
 * payload metadata, so keys can rotate (the current key encrypts, every listed
 * key still decrypts). The server stores only ciphertext; the codec server lets
 * the Temporal UI decode.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { DataConverter, Payload, PayloadCodec } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import { z } from 'zod';

export const ENCRYPTED_ENCODING = 'binary/encrypted';
export const KEY_ID_METADATA = 'encryption-key-id';

const IV_BYTES = 12;
const TAG_BYTES = 16;

/** A payload that cannot be decrypted: names the key id, never the data. */
export class PayloadDecryptionError extends Error {
  override readonly name = 'PayloadDecryptionError';
}

const keyRingSchema = z.strictObject({
  /** The key id new payloads are encrypted with. */
  current: z.string().min(1),
  /** Key id -> 32 bytes, base64. Keep retired keys here so old histories stay readable. */
  keys: z.record(z.string().min(1), z.string().refine((k) => Buffer.from(k, 'base64').length === 32, 'each key must be 32 bytes, base64-encoded')),
}).refine((ring) => Object.hasOwn(ring.keys, ring.current), { message: 'the current key id must be one of keys' });

export type KeyRing = z.infer<typeof keyRingSchema>;

/** Reads a key ring (JSON) from a file or an environment variable's value; errors say where and what. */
export function parseKeyRing(text: string, source: string): KeyRing {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new Error(`key ring ${source} is not JSON: ${(err as Error).message}`);
  }
  const parsed = keyRingSchema.safeParse(json);
  if (!parsed.success) throw new Error(`key ring ${source}: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(top level)'}: ${i.message}`).join('; ')}`);
  return parsed.data;
}

export function loadKeyRing(options: { keyFile?: string; keysEnv?: string }, env: NodeJS.ProcessEnv = process.env): KeyRing {
  if (options.keyFile) {
    if (!existsSync(options.keyFile)) {
      throw new Error(`key ring ${options.keyFile} does not exist: 'lifeboat lab up' creates the lab's; elsewhere point temporal.encryption.keyFile at your key ring (or use keysEnv)`);
    }
    return parseKeyRing(readFileSync(options.keyFile, 'utf8'), options.keyFile);
  }
  if (options.keysEnv) {
    const value = env[options.keysEnv];
    if (!value) throw new Error(`encryption keys are configured in ${options.keysEnv}, which is not set`);
    return parseKeyRing(value, `$${options.keysEnv}`);
  }
  throw new Error('encryption needs keyFile or keysEnv');
}

/** A fresh key ring with one random key, for `lifeboat lab up` and tests. */
export function newKeyRing(keyId = `k-${new Date().toISOString().slice(0, 10)}`): KeyRing {
  return { current: keyId, keys: { [keyId]: randomBytes(32).toString('base64') } };
}

/**
 * Writes a fresh key ring to `file` (mode 0600, readable by its owner only) unless one is there;
 * never replaces an existing ring, whose keys old histories need. Returns true when it wrote one.
 */
export function createKeyRingFile(file: string): boolean {
  if (existsSync(file)) return false;
  mkdirSync(path.dirname(file), { recursive: true });
  try {
    writeFileSync(file, `${JSON.stringify(newKeyRing(), null, 2)}\n`, { mode: 0o600, flag: 'wx' });
  } catch (err) {
    // Another `lab up` wrote it between the check and the write: keep theirs.
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
  return true;
}

export class AesGcmCodec implements PayloadCodec {
  private readonly keys: Map<string, Buffer>;

  constructor(private readonly ring: KeyRing) {
    this.keys = new Map(Object.entries(ring.keys).map(([id, key]) => [id, Buffer.from(key, 'base64')]));
  }

  async encode(payloads: Payload[]): Promise<Payload[]> {
    const keyId = this.ring.current;
    const key = this.keys.get(keyId);
    if (!key) throw new Error(`current key ${keyId} missing from the key ring`);
    return payloads.map((payload) => {
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv('aes-256-gcm', key, iv);
      const plain = temporal.api.common.v1.Payload.encode(payload).finish();
      const data = Buffer.concat([iv, cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
      return {
        metadata: { encoding: Buffer.from(ENCRYPTED_ENCODING), [KEY_ID_METADATA]: Buffer.from(keyId) },
        data,
      };
    });
  }

  async decode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((payload) => {
      const encoding = payload.metadata?.encoding ? Buffer.from(payload.metadata.encoding).toString() : undefined;
      if (encoding !== ENCRYPTED_ENCODING) return payload;
      const keyIdBytes = payload.metadata?.[KEY_ID_METADATA];
      const keyId = keyIdBytes ? Buffer.from(keyIdBytes).toString() : '(none)';
      const key = this.keys.get(keyId);
      if (!key) throw new PayloadDecryptionError(`payload encrypted with key '${keyId}', which is not in the key ring`);
      const data = Buffer.from(payload.data ?? new Uint8Array());
      if (data.length < IV_BYTES + TAG_BYTES) throw new PayloadDecryptionError(`payload under key '${keyId}' is too short to be ciphertext`);
      const decipher = createDecipheriv('aes-256-gcm', key, data.subarray(0, IV_BYTES));
      decipher.setAuthTag(data.subarray(data.length - TAG_BYTES));
      let plain: Buffer;
      try {
        plain = Buffer.concat([decipher.update(data.subarray(IV_BYTES, data.length - TAG_BYTES)), decipher.final()]);
      } catch {
        throw new PayloadDecryptionError(`payload under key '${keyId}' failed authentication: it was altered or the key is wrong`);
      }
      const decoded = temporal.api.common.v1.Payload.decode(plain);
      return { metadata: decoded.metadata ?? {}, data: decoded.data ?? new Uint8Array() };
    });
  }
}

/**
 * lib/failure-converter.mts, by path (clients, workers and the workflow bundle `require` it):
 * the TypeScript source in a checkout, the compiled module in dist/.
 */
export const FAILURE_CONVERTER_PATH = ['failure-converter.mts', 'failure-converter.mjs'].map((f) => path.join(__dirname, f)).find((f) => existsSync(f)) ?? path.join(__dirname, 'failure-converter.mjs');

/**
 * The one data converter of every Lifeboat client and worker (and of the pre-built workflow bundle,
 * scripts/build.mjs): failures' messages and stack traces always travel as a payload, and every
 * payload is encrypted when a key ring is given.
 */
export function getDataConverter(ring: KeyRing | undefined): DataConverter {
  return { failureConverterPath: FAILURE_CONVERTER_PATH, ...(ring ? { payloadCodecs: [new AesGcmCodec(ring)] } : {}) };
}
