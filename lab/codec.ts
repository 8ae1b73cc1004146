/**
 * The lab's encryption: its key ring, created once under the lab's state
 * directory, and its codec server (`lifeboat codec-server` on loopback), which
 * the lab's Temporal UI calls from the browser (`--ui-codec-endpoint`) to show
 * the encrypted histories decoded. CORS admits the lab's UI origin only.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { LoadedConfig } from '../config/load';
import { temporalTarget } from '../lib/temporal';
import { GiveUp, isAlive, isListening, startDaemon, waitFor } from '../lib/processes';

/** Where the lab's codec server listens and the one browser origin it serves. */
export interface LabCodecServer {
  url: string;
  port: number;
  /** The lab's Temporal UI, derived from lab.temporal.uiPort. */
  uiOrigin: string;
  /** Requests need no bearer token (temporal.encryption.codecServer.allowUnauthenticated, lab configs only). */
  unauthenticated: boolean;
}

/** The codec server the config asks the lab for (temporal.encryption.codecServer), if any. */
export function labCodecServer(loaded: LoadedConfig): LabCodecServer | undefined {
  const settings = loaded.config.temporal.encryption?.codecServer;
  if (!settings) return undefined;
  return { url: `http://127.0.0.1:${settings.port}`, port: settings.port, uiOrigin: `http://127.0.0.1:${loaded.config.lab.temporal.uiPort}`, unauthenticated: settings.allowUnauthenticated };
}

/** The config's key ring file when it lies under the lab's state directory: the lab's own, which `lab up` may create. */
export function labKeyFile(loaded: LoadedConfig): string | undefined {
  const keyFile = temporalTarget(loaded).encryption?.keyFile;
  if (!keyFile) return undefined;
  const inside = path.relative(loaded.stateDir, keyFile);
  return inside && !inside.startsWith('..') && !path.isAbsolute(inside) ? keyFile : undefined;
}

/** dist/cli/lifeboat.js, from dist/lab/codec.js or from lab/codec.ts in a checkout. */
function lifeboatCli(): string {
  const parent = path.resolve(__dirname, '..');
  const cli = path.basename(parent) === 'dist' ? path.join(parent, 'cli', 'lifeboat.js') : path.join(parent, 'dist', 'cli', 'lifeboat.js');
  if (!existsSync(cli)) throw new Error(`${cli} is missing: run 'npm run build'`);
  return cli;
}

/** Starts `lifeboat codec-server` for the lab and waits until it listens; returns its pid. */
export async function startLabCodecServer(loaded: LoadedConfig, codec: LabCodecServer, logFile: string): Promise<number> {
  const env = { ...process.env };
  // The lab's UI sends no token: a token in the caller's environment would lock it out.
  if (codec.unauthenticated) delete env.LIFEBOAT_CODEC_TOKEN;
  const args = [lifeboatCli(), '--config', loaded.file, 'codec-server', '--port', String(codec.port), '--ui-origin', codec.uiOrigin];
  const pid = startDaemon(process.execPath, args, logFile, env);
  await waitFor(
    `the codec server on 127.0.0.1:${codec.port} (log: ${logFile})`,
    async () => {
      if (!isAlive(pid)) throw new GiveUp(`the codec server exited; see ${logFile}`);
      return (await isListening('127.0.0.1', codec.port)) ? true : undefined;
    },
    30_000,
    200,
  );
  return pid;
}
