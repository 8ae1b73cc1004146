/**
 * A codec server for the Temporal Web UI and CLI (`--ui-codec-endpoint`,
 * `temporal ... --codec-endpoint`): POST /encode and /decode of
 * `{ "payloads": [ { "metadata": { k: base64 }, "data": base64 } ] }`, CORS for
 * the UI's origin only (a request from any other browser origin is refused), and
 * an access token on every request, so engineers read decoded histories while
 * the Temporal server holds only ciphertext. Only the lab's codec server may
 * go without a token (`allowUnauthenticated`).
 */
import http from 'node:http';
import { timingSafeEqual } from 'node:crypto';
import type { Payload, PayloadCodec } from '@temporalio/common';
import { z } from 'zod';

export interface CodecServerOptions {
  codec: PayloadCodec;
  /** Origins allowed to call from a browser (the Temporal UI). */
  allowedOrigins: readonly string[];
  /** Bearer token every request must carry (`Authorization: Bearer <token>`). */
  token?: string;
  /**
   * Lab only: serve requests that carry no token (the lab's UI sends none). Browser requests must still
   * come from an allowed origin. Without a token this must be set explicitly.
   */
  allowUnauthenticated?: boolean;
  /** Namespaces it serves (the `X-Namespace` header); empty: any. */
  namespaces?: readonly string[];
  log?: (line: string) => void;
}

const MAX_BODY = 4 * 1024 * 1024;

const jsonPayloads = z.strictObject({
  payloads: z.array(z.strictObject({ metadata: z.record(z.string(), z.string()).default({}), data: z.string().default('') })),
});

function fromJson(p: { metadata: Record<string, string>; data: string }): Payload {
  return {
    metadata: Object.fromEntries(Object.entries(p.metadata).map(([k, v]) => [k, Buffer.from(v, 'base64')])),
    data: Buffer.from(p.data, 'base64'),
  };
}

function toJson(p: Payload): { metadata: Record<string, string>; data: string } {
  return {
    metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v).toString('base64')])),
    data: Buffer.from(p.data ?? new Uint8Array()).toString('base64'),
  };
}

function tokenMatches(header: string | undefined, token: string): boolean {
  const given = Buffer.from((header ?? '').replace(/^Bearer\s+/i, ''));
  const want = Buffer.from(token);
  return given.length === want.length && timingSafeEqual(given, want);
}

export function createCodecServer(options: CodecServerOptions): http.Server {
  const log = options.log ?? (() => undefined);
  const { token } = options;
  if (!token && options.allowUnauthenticated !== true) throw new Error('a codec server needs a token (allowUnauthenticated is for the lab only)');
  return http.createServer((req, res) => {
    const origin = req.headers.origin;
    const cors: Record<string, string> = {};
    if (origin && options.allowedOrigins.includes(origin)) {
      cors['access-control-allow-origin'] = origin;
      cors['access-control-allow-credentials'] = 'true';
      cors['access-control-allow-methods'] = 'POST, OPTIONS';
      cors['access-control-allow-headers'] = 'content-type, x-namespace, authorization';
      cors.vary = 'Origin';
    }
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json', ...cors });
      res.end(JSON.stringify(body));
    };
    const url = new URL(req.url ?? '/', 'http://codec');
    const route = url.pathname.replace(/\/$/, '');
    if (req.method === 'OPTIONS') {
      // A browser preflight carries no credentials; it only learns what is allowed.
      res.writeHead(origin && cors['access-control-allow-origin'] ? 204 : 403, cors);
      res.end();
      return;
    }
    if (route !== '/encode' && route !== '/decode') return send(404, { error: `no route ${url.pathname}: use POST /encode or /decode` });
    if (req.method !== 'POST') return send(405, { error: 'use POST' });
    if (origin !== undefined && !cors['access-control-allow-origin']) {
      // A page of another origin: the browser would hide the answer, but the decoding must not happen at all.
      log(`refused ${route} from origin ${origin}: not an allowed origin`);
      return send(403, { error: `origin ${origin} is not allowed: only ${options.allowedOrigins.join(', ') || '(none)'}` });
    }
    if (token && !tokenMatches(req.headers.authorization, token)) {
      log(`refused ${route} from ${req.socket.remoteAddress ?? '?'}: missing or wrong token`);
      return send(401, { error: 'an access token is required: Authorization: Bearer <token>' });
    }
    const namespace = req.headers['x-namespace'];
    if (options.namespaces && options.namespaces.length > 0 && (typeof namespace !== 'string' || !options.namespaces.includes(namespace))) {
      return send(403, { error: `namespace ${String(namespace ?? '(none)')} is not served here (X-Namespace)` });
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) req.destroy();
      else chunks.push(c);
    });
    req.on('end', () => {
      void (async () => {
        let body: z.infer<typeof jsonPayloads>;
        try {
          body = jsonPayloads.parse(JSON.parse(Buffer.concat(chunks).toString() || '{}'));
        } catch (err) {
          return send(400, { error: `expected {"payloads": [{"metadata": {...}, "data": "<base64>"}]}: ${(err as Error).message.slice(0, 300)}` });
        }
        try {
          const payloads = body.payloads.map(fromJson);
          const out = route === '/encode' ? await options.codec.encode(payloads) : await options.codec.decode(payloads);
          log(`${route} ${payloads.length} payload(s) for namespace ${String(namespace ?? '-')}`);
          send(200, { payloads: out.map(toJson) });
        } catch (err) {
          send(422, { error: (err as Error).message });
        }
      })();
    });
  });
}
