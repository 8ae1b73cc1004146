/** `lifeboat codec-server`: decodes encrypted payloads for the Temporal UI and CLI; the server keeps only ciphertext. */
import type { Command } from 'commander';
import { AesGcmCodec, loadKeyRing } from '../../lib/codec';
import { createCodecServer } from '../../lib/codec-server';
import { temporalTarget } from '../../lib/temporal';
import { examples } from '../help';
import { UsageError } from '../start';
import { commandConfig, say } from './context';

export function register(program: Command): void {
  examples(
    program
      .command('codec-server')
      .description('decode encrypted payloads for the Temporal UI (--ui-codec-endpoint) and CLI; the server keeps only ciphertext')
      .option('--port <port>', 'port on 127.0.0.1 (default: temporal.encryption.codecServer.port, else 8888)')
      .option('--ui-origin <url...>', 'origins allowed by CORS (the Temporal UI)', ['http://127.0.0.1:8233', 'http://localhost:8233'])
      .option('--token-env <var>', 'environment variable holding the access token requests must carry', 'LIFEBOAT_CODEC_TOKEN'),
    ['LIFEBOAT_CODEC_TOKEN=… lifeboat codec-server --port 8888 --ui-origin http://127.0.0.1:8233'],
  ).action(async (o: { port?: string; uiOrigin: string[]; tokenEnv: string }, cmd: Command) => {
    const loaded = commandConfig(cmd);
    const target = temporalTarget(loaded);
    if (!target.encryption) throw new UsageError(`payload encryption is not configured: set temporal.encryption in ${loaded.file}`);
    const settings = loaded.config.temporal.encryption?.codecServer;
    const allowUnauthenticated = settings?.allowUnauthenticated === true;
    if (allowUnauthenticated && !loaded.isLab) {
      throw new UsageError(`temporal.encryption.codecServer.allowUnauthenticated is for the lab only (a config with lab:), and ${loaded.file} has no lab: section: remove it and set ${o.tokenEnv}`);
    }
    const token = process.env[o.tokenEnv] || undefined;
    if (!token && !allowUnauthenticated) throw new UsageError(`set ${o.tokenEnv} to the access token callers must send (Authorization: Bearer <token>)`);
    const port = Number(o.port ?? settings?.port ?? 8888);
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new UsageError(`--port must be a port number (1-65535), not '${o.port}'`);
    const server = createCodecServer({ codec: new AesGcmCodec(loadKeyRing(target.encryption)), allowedOrigins: o.uiOrigin, token, allowUnauthenticated, namespaces: [target.namespace], log: say });
    await new Promise<void>((resolve, reject) => server.once('error', reject).listen(port, '127.0.0.1', resolve));
    say(`codec server on http://127.0.0.1:${port} for namespace ${target.namespace}, origins ${o.uiOrigin.join(', ')}${token ? '' : ' (lab: no token required)'}`);
    await new Promise<void>((resolve) => process.once('SIGTERM', resolve).once('SIGINT', resolve));
    server.close();
  });
}
