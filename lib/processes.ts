/** Small process helpers for the lab: run a tool, start a daemon, stop by pid. */
import { spawn, type SpawnOptions } from 'node:child_process';
import { openSync, closeSync } from 'node:fs';
import net from 'node:net';

export class CommandError extends Error {
  override readonly name = 'CommandError';
  constructor(
    readonly command: string,
    readonly exitCode: number | null,
    readonly output: string,
  ) {
    super(`${command} exited with ${exitCode ?? 'a signal'}:\n${output.trim().split('\n').slice(-15).join('\n')}`);
  }
}

/** Runs a command to completion; rejects with its output when it fails. */
export function run(command: string, args: readonly string[], options: SpawnOptions = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
    child.on('error', (err) => reject(new CommandError(`${command} ${args.join(' ')}`, null, err.message)));
    child.on('close', (code) => {
      if (code === 0) resolve(output);
      else reject(new CommandError(`${command} ${args.join(' ')}`, code, output));
    });
  });
}

/** Starts a long-running process detached from this one, output to a log file; returns its pid. */
export function startDaemon(command: string, args: readonly string[], logFile: string, env: NodeJS.ProcessEnv = process.env): number {
  const fd = openSync(logFile, 'a');
  try {
    const child = spawn(command, args, { detached: true, stdio: ['ignore', fd, fd], env });
    if (child.pid === undefined) throw new Error(`could not start ${command}`);
    child.unref();
    return child.pid;
  } finally {
    closeSync(fd);
  }
}

export function isAlive(pid: number | undefined): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Sends `signal`, waits for the process to exit, then SIGKILLs it after `graceMs`. */
export async function stopPid(pid: number, signal: NodeJS.Signals = 'SIGTERM', graceMs = 30_000): Promise<void> {
  if (!isAlive(pid)) return;
  try {
    process.kill(pid, signal);
  } catch {
    return;
  }
  const deadline = Date.now() + graceMs;
  while (isAlive(pid) && Date.now() < deadline) await sleep(100);
  if (isAlive(pid)) {
    process.kill(pid, 'SIGKILL');
    while (isAlive(pid)) await sleep(50);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Thrown by a `waitFor` probe when waiting longer cannot help (the process died). */
export class GiveUp extends Error {
  override readonly name = 'GiveUp';
}

export async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number, intervalMs = 250): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (err) {
      if (err instanceof GiveUp) throw err;
      lastError = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs / 1000}s waiting for ${what}${lastError ? `: ${(lastError as Error).message}` : ''}`);
    }
    await sleep(intervalMs);
  }
}

/** Whether something accepts TCP connections on host:port. */
export function isListening(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    socket.setTimeout(1000);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(false));
  });
}

/**
 * A TCP port free on loopback right now, and kept from the kernel's own picks
 * for a while: a connection to it is closed from the listening side first, so
 * the port sits in TIME_WAIT (60 s on Linux) and a later bind to port 0 (the
 * Temporal dev server picks its internal ports that way, as do other parts)
 * is not handed the same number before the caller binds it. Binding it
 * explicitly still works for servers that set SO_REUSEADDR (Node, Go,
 * PostgreSQL and Python's HTTP servers all do).
 */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.on('connection', (socket) => socket.destroy());
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      if (typeof address !== 'object' || !address) {
        server.close();
        reject(new Error('no port'));
        return;
      }
      const client = net.connect(address.port, '127.0.0.1');
      const done = () => {
        client.destroy();
        server.close(() => resolve(address.port));
      };
      client.on('close', done);
      client.on('error', () => undefined);
    });
  });
}
