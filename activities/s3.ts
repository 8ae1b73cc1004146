/**
 * Object storage for backups through `@aws-sdk/client-s3`: one bucket per
 * region (AWS S3, or any S3-compatible server such as the lab's versitygw).
 * Thin: put (multipart, streamed), get, head, list, delete; and, for the
 * evidence ledger, objects written once under Object Lock retention.
 */
import {
  DeleteObjectsCommand,
  GetObjectCommand,
  GetObjectLockConfigurationCommand,
  GetObjectRetentionCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  ListObjectVersionsCommand,
  NoSuchKey,
  NotFound,
  PutObjectCommand,
  S3Client,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import type { Readable } from 'node:stream';

export interface ObjectStoreOptions {
  /** An S3-compatible endpoint; unset for AWS S3. */
  endpoint?: string;
  region: string;
  credentials?: { accessKeyId: string; secretAccessKey: string };
  /**
   * The SDK's default (`WHEN_SUPPORTED`) sends streamed bodies as aws-chunked
   * with a trailing CRC32. versitygw 1.8.0 (the lab) accepts that, so the lab
   * keeps the default and S3 verifies every part. A server that rejects
   * aws-chunked trailers needs `WHEN_REQUIRED` (config:
   * backups.storage.checksums: when-required); Lifeboat's own SHA-256 in the
   * manifest still guards the artifact end to end.
   */
  checksums: 'when-supported' | 'when-required';
  partSizeBytes: number;
}

export interface StoredObject {
  key: string;
  size: number;
  lastModified?: Date;
}

/** One region's bucket. */
export interface ObjectStore {
  readonly bucket: string;
  readonly location: string;
  /** Streams `body` into `key` (multipart above one part); `onPart` reports bytes uploaded. */
  putStream(key: string, body: Readable, onProgress?: (uploadedBytes: number) => void, signal?: AbortSignal): Promise<void>;
  putJson(key: string, value: unknown): Promise<void>;
  getStream(key: string): Promise<Readable>;
  getJson<T>(key: string): Promise<T | undefined>;
  exists(key: string): Promise<boolean>;
  list(prefix: string): Promise<StoredObject[]>;
  /** Deletes every object under `prefix`. */
  deletePrefix(prefix: string): Promise<number>;
}

export function createS3Client(options: ObjectStoreOptions): S3Client {
  const config: S3ClientConfig = {
    region: options.region,
    endpoint: options.endpoint,
    // Path-style URLs: S3-compatible servers on an IP and port have no per-bucket host names.
    forcePathStyle: options.endpoint !== undefined,
    credentials: options.credentials,
    requestChecksumCalculation: options.checksums === 'when-required' ? 'WHEN_REQUIRED' : 'WHEN_SUPPORTED',
  };
  return new S3Client(config);
}

export function createObjectStore(client: S3Client, bucket: string, partSizeBytes: number): ObjectStore {
  const location = `s3://${bucket}`;
  return {
    bucket,
    location,
    async putStream(key, body, onProgress, signal) {
      const upload = new Upload({ client, params: { Bucket: bucket, Key: key, Body: body }, partSize: partSizeBytes, queueSize: 2, leavePartsOnError: false });
      upload.on('httpUploadProgress', (p) => onProgress?.(p.loaded ?? 0));
      const abort = () => void upload.abort();
      signal?.addEventListener('abort', abort, { once: true });
      try {
        await upload.done();
      } finally {
        signal?.removeEventListener('abort', abort);
      }
    },
    async putJson(key, value) {
      await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: `${JSON.stringify(value, null, 2)}\n`, ContentType: 'application/json' }));
    },
    async getStream(key) {
      const response = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      if (!response.Body) throw new Error(`${location}/${key} has no body`);
      return response.Body as Readable;
    },
    async getJson<T>(key: string): Promise<T | undefined> {
      try {
        const response = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
        const text = await response.Body?.transformToString('utf8');
        return text === undefined ? undefined : (JSON.parse(text) as T);
      } catch (err) {
        if (err instanceof NoSuchKey || (err as { name?: string }).name === 'NoSuchKey') return undefined;
        throw err;
      }
    },
    async exists(key) {
      try {
        await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
        return true;
      } catch (err) {
        if (err instanceof NotFound || (err as { name?: string }).name === 'NotFound' || (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) return false;
        throw err;
      }
    },
    async list(prefix) {
      const objects: StoredObject[] = [];
      let token: string | undefined;
      do {
        const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
        for (const o of page.Contents ?? []) if (o.Key) objects.push({ key: o.Key, size: o.Size ?? 0, lastModified: o.LastModified });
        token = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (token);
      return objects;
    },
    async deletePrefix(prefix) {
      const objects = await this.list(prefix);
      for (let i = 0; i < objects.length; i += 1000) {
        const batch = objects.slice(i, i + 1000);
        await client.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: batch.map((o) => ({ Key: o.key })), Quiet: true } }));
      }
      return objects.length;
    },
  };
}

/** One version of an object in a versioned bucket. */
export interface ObjectVersion {
  versionId: string;
  lastModified?: Date;
}

/**
 * A bucket with S3 Object Lock: what is written stays, each overwrite adds a version, and a version
 * under COMPLIANCE retention cannot be deleted by anyone (root included) until it expires.
 */
export interface RetainedObjectStore {
  readonly bucket: string;
  readonly location: string;
  /** Whether the bucket has Object Lock; when not, what the server said. */
  objectLock(): Promise<{ enabled: true } | { enabled: false; reason: string }>;
  /** Writes `text` under COMPLIANCE retention until `retainUntil`; the version the server made. */
  putRetained(key: string, text: string, retainUntil: Date): Promise<{ versionId?: string }>;
  /** The versions of `key`, oldest first (empty: never written). */
  versions(key: string): Promise<ObjectVersion[]>;
  getVersion(key: string, versionId: string): Promise<string>;
  retention(key: string, versionId: string): Promise<{ mode?: string; retainUntil?: Date }>;
}

export function createRetainedObjectStore(client: S3Client, bucket: string): RetainedObjectStore {
  const location = `s3://${bucket}`;
  return {
    bucket,
    location,
    async objectLock() {
      try {
        const { ObjectLockConfiguration: lock } = await client.send(new GetObjectLockConfigurationCommand({ Bucket: bucket }));
        return lock?.ObjectLockEnabled === 'Enabled' ? { enabled: true } : { enabled: false, reason: `ObjectLockEnabled is ${JSON.stringify(lock?.ObjectLockEnabled ?? null)}` };
      } catch (err) {
        // S3 answers ObjectLockConfigurationNotFoundError for a bucket created without Object Lock; anything else (unreachable, denied) is thrown.
        const name = (err as { name?: string }).name ?? '';
        if (/ObjectLockConfigurationNotFound|InvalidRequest|NotImplemented/.test(name)) return { enabled: false, reason: `${name}: ${(err as Error).message}` };
        throw err;
      }
    },
    async putRetained(key, text, retainUntil) {
      const response = await client.send(new PutObjectCommand({
        Bucket: bucket,
        Key: key,
        Body: text,
        ContentType: 'application/json',
        ObjectLockMode: 'COMPLIANCE',
        ObjectLockRetainUntilDate: retainUntil,
      }));
      return response.VersionId ? { versionId: response.VersionId } : {};
    },
    async versions(key) {
      const found: ObjectVersion[] = [];
      let keyMarker: string | undefined;
      let versionIdMarker: string | undefined;
      do {
        const page = await client.send(new ListObjectVersionsCommand({ Bucket: bucket, Prefix: key, KeyMarker: keyMarker, VersionIdMarker: versionIdMarker }));
        for (const v of page.Versions ?? []) if (v.Key === key && v.VersionId) found.push({ versionId: v.VersionId, lastModified: v.LastModified });
        keyMarker = page.IsTruncated ? page.NextKeyMarker : undefined;
        versionIdMarker = page.IsTruncated ? page.NextVersionIdMarker : undefined;
      } while (keyMarker);
      // S3 lists a key's versions newest first.
      return found.reverse();
    },
    async getVersion(key, versionId) {
      const response = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key, VersionId: versionId }));
      const text = await response.Body?.transformToString('utf8');
      if (text === undefined) throw new Error(`${location}/${key} (version ${versionId}) has no body`);
      return text;
    },
    async retention(key, versionId) {
      const { Retention: r } = await client.send(new GetObjectRetentionCommand({ Bucket: bucket, Key: key, VersionId: versionId }));
      return { ...(r?.Mode ? { mode: r.Mode } : {}), ...(r?.RetainUntilDate ? { retainUntil: r.RetainUntilDate } : {}) };
    },
  };
}
