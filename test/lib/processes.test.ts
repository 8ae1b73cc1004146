/**
 * freePort hands out a port the kernel will not give to the next bind to port
 * 0 (it is left in TIME_WAIT on the listening side), yet the caller can bind it
 * at once: the Temporal dev server picks its internal ports by binding port 0,
 * and a test lab picking the same number before its server binds it is the race
 * this closes.
 */
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { freePort } from '../../lib/processes';

/** Local ports of loopback TCP sockets in TIME_WAIT (state 06 in /proc/net/tcp). */
function timeWaitPorts(): Set<number> {
  const ports = new Set<number>();
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/);
    if (fields.length < 4 || fields[3] !== '06') continue;
    ports.add(parseInt(fields[1]!.split(':')[1]!, 16));
  }
  return ports;
}

function listen(port: number): Promise<net.Server> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.on('error', reject);
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
}

describe('freePort', () => {
  it('leaves the port in TIME_WAIT on its listening side, and a server binds it at once', async () => {
    const port = await freePort();
    expect(timeWaitPorts().has(port), `port ${port} should be in TIME_WAIT`).toBe(true);
    const server = await listen(port);
    expect((server.address() as net.AddressInfo).port).toBe(port);
    await new Promise((resolve) => server.close(resolve));
  });

  it('the next binds to port 0 are not handed a port it just returned', async () => {
    const picked = new Set<number>();
    for (let i = 0; i < 20; i++) picked.add(await freePort());
    expect(picked.size).toBe(20);
    const servers: net.Server[] = [];
    try {
      for (let i = 0; i < 200; i++) {
        const server = await listen(0);
        servers.push(server);
        expect(picked.has((server.address() as net.AddressInfo).port)).toBe(false);
      }
    } finally {
      await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
    }
  });
});
