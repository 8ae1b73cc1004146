/** The lab's links between regions through a real Toxiproxy: one link cut or slowed, the others untouched. */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LinkProxy, linksOf, type LinkSpec } from '../../lab/links';
import { parseConfig } from '../../config/load';
import { parse, stringify } from 'yaml';
import { freePort } from '../../lib/processes';

const LAG_MS = 150;

let dir: string;
let proxy: LinkProxy;
let echo: net.Server;
let a: LinkSpec;
let b: LinkSpec;

/** Sends `payload` through `port` and resolves with the round trip time once it is echoed; rejects on refusal, reset or close. */
function roundTrip(port: number, payload = 'ping'): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const socket = net.connect({ host: '127.0.0.1', port });
    let received = '';
    socket.setTimeout(5000, () => socket.destroy(new Error('timed out')));
    socket.on('connect', () => socket.write(payload));
    socket.on('data', (d: Buffer) => {
      received += d.toString();
      if (received === payload) {
        socket.destroy();
        resolve(performance.now() - started);
      }
    });
    socket.on('error', reject);
    socket.on('close', () => reject(new Error(`closed after ${JSON.stringify(received)}`)));
  });
}

/** An open connection through `port`, resolved once it has echoed once; `closed` settles when it ends. */
function openConnection(port: number): Promise<{ closed: Promise<void> }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port }, () => socket.write('hi'));
    const closed = new Promise<void>((done) => socket.on('close', () => done()));
    socket.once('data', () => resolve({ closed }));
    socket.on('error', reject);
  });
}

const link = (name: string, from: string, to: string, listenPort: number, upstreamPort: number): LinkSpec => ({
  name,
  from,
  to,
  listen: { host: '127.0.0.1', port: listenPort },
  upstream: { host: '127.0.0.1', port: upstreamPort },
});

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'lifeboat-links-'));
  echo = net.createServer((s) => s.pipe(s));
  const echoPort = await freePort();
  await new Promise<void>((resolve) => echo.listen(echoPort, '127.0.0.1', resolve));
  proxy = await LinkProxy.start({ port: await freePort(), logFile: path.join(dir, 'toxiproxy.log') });
  a = link('east->west:echo', 'east', 'west', await freePort(), echoPort);
  b = link('central->west:echo', 'central', 'west', await freePort(), echoPort);
  await proxy.ensure([a, b]);
});

afterAll(async () => {
  await proxy?.stop();
  await new Promise((resolve) => echo?.close(resolve));
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('lab links through Toxiproxy', () => {
  it('carries a round trip through each link, both listed as enabled with their regions', async () => {
    await roundTrip(a.listen.port);
    await roundTrip(b.listen.port);
    const links = await proxy.list();
    expect(links.map((l) => ({ name: l.name, from: l.from, to: l.to, enabled: l.enabled, listen: l.listen, upstream: l.upstream }))).toEqual(
      [b, a].map((l) => ({ name: l.name, from: l.from, to: l.to, enabled: true, listen: l.listen, upstream: l.upstream })),
    );
  });

  it('cuts only the links between two regions: new and open connections on them fail, the other link still echoes', async () => {
    const open = await openConnection(a.listen.port);
    expect(await proxy.cut({ between: ['west', 'east'] })).toEqual([a.name]);
    await open.closed;
    await expect(roundTrip(a.listen.port)).rejects.toMatchObject({ code: expect.stringMatching(/^(ECONNREFUSED|ECONNRESET)$/) });
    await roundTrip(b.listen.port);
    expect(Object.fromEntries((await proxy.list()).map((l) => [l.name, l.enabled]))).toEqual({ [a.name]: false, [b.name]: true });
  });

  it('ensure again leaves a cut link cut, and a reattached proxy sees the same links', async () => {
    await proxy.ensure([a, b]);
    const again = LinkProxy.attach(proxy.pid, proxy.port);
    expect(Object.fromEntries((await again.list()).map((l) => [l.name, l.enabled]))).toEqual({ [a.name]: false, [b.name]: true });
  });

  it('lags a link by at least the delay each way, and setting it again replaces it', async () => {
    const before = await roundTrip(b.listen.port);
    await proxy.lag(b.name, LAG_MS / 2);
    expect(await proxy.lag(b.name, LAG_MS)).toEqual([b.name]);
    const lagged = await roundTrip(b.listen.port);
    // Both streams carry the delay: the request once, the echo once.
    expect(lagged).toBeGreaterThanOrEqual(2 * LAG_MS);
    expect(lagged).toBeGreaterThan(before);
    const toxics = (await proxy.list()).find((l) => l.name === b.name)?.toxics ?? [];
    expect(toxics.map((t) => [t.name, t.type, t.stream, t.attributes.latency]).sort()).toEqual([
      ['lag_downstream', 'latency', 'downstream', LAG_MS],
      ['lag_upstream', 'latency', 'upstream', LAG_MS],
    ]);
  });

  it('heal re-enables every link and removes every toxic', async () => {
    await proxy.heal();
    await roundTrip(a.listen.port);
    expect(await roundTrip(b.listen.port)).toBeLessThan(LAG_MS);
    expect((await proxy.list()).map((l) => [l.name, l.enabled, l.toxics.length])).toEqual([
      [b.name, true, 0],
      [a.name, true, 0],
    ]);
  });

  it('linksOf: one link per region reaching each node of a database through `via`, the further standbys too', () => {
    const doc = parse(readFileSync(path.join(__dirname, '../../runbooks/lab.yaml'), 'utf8'));
    const orders = doc.databases.orders;
    orders.primary.via = { west: { host: '127.0.0.1', port: 1001 }, central: { host: '127.0.0.1', port: 1002 } };
    orders.standbys[0].via = { east: { host: '127.0.0.1', port: 1003 }, west: { host: '127.0.0.1', port: 1004 } };
    const links = linksOf(parseConfig(stringify(doc), '/some/lab.yaml'));
    expect(links.map((l) => [l.name, l.listen.port, l.upstream.port])).toEqual([
      ['west->east:orders-primary', 1001, 55432],
      ['central->east:orders-primary', 1002, 55432],
      ['east->central:orders-standby-central', 1003, 55439],
      ['west->central:orders-standby-central', 1004, 55439],
    ]);
  });

  it('says what failed: no link between two regions, or Toxiproxy refusing a call with its status and message', async () => {
    await expect(proxy.cut({ between: ['east', 'central'] })).rejects.toThrow(/no link matches between east and central \(links: central->west:echo, east->west:echo\)/);
    await expect(proxy.ensure([{ ...a, name: 'west->east:echo' }])).rejects.toThrow(/says west->east but joins east->west/);
    // Listening where link a already listens.
    await expect(proxy.ensure([link('north->west:echo', 'north', 'west', a.listen.port, b.upstream.port)])).rejects.toThrow(
      /Toxiproxy POST \/populate \(127\.0\.0\.1:\d+\) failed: HTTP \d{3}: .*address already in use/,
    );
    expect(() => LinkProxy.attach(2 ** 22 + 1, proxy.port)).toThrow(/is not running/);
  });
});
