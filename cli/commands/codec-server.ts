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
      .option('--port <port>', 'port on 127.0.0.1', '8888')
      .option('--ui-origin <url...>', 'origins allowed by CORS (the Temporal UI)', ['http://127.0.0.1:8233', 'http://localhost:8233'])
      .option('--token-env <var>', 'environment variable holding the access token requests must carry', 'LIFEBOAT_CODEC_TOKEN'),
    ['LIFEBOAT_CODEC_TOKEN=… lifeboat codec-server --port 8888 --ui-origin http://127.0.0.1:8233'],
  ).action(async (o: { port: string; uiOrigin: string[]; tokenEnv: string }, cmd: Command) => {
    const loaded = commandConfig(cmd);
    const target = temporalTarget(loaded);
    if (!target.encryption) throw new UsageError(`payload encryption is not configured: set temporal.encryption in ${loaded.file}`);
    const token = process.env[o.tokenEnv];
    if (!token) throw new UsageError(`set ${o.tokenEnv} to the access token callers must send (Authorization: Bearer <token>)`);
    const server = createCodecServer({ codec: new AesGcmCodec(loadKeyRing(target.encryption)), allowedOrigins: o.uiOrigin, token, namespaces: [target.namespace], log: say });
    await new Promise<void>((resolve, reject) => server.once('error', reject).listen(Number(o.port), '127.0.0.1', resolve));
    say(`codec server on http://127.0.0.1:${o.port} for namespace ${target.namespace}, origins ${o.uiOrigin.join(', ')}`);
    await new Promise<void>((resolve) => process.once('SIGTERM', resolve).once('SIGINT', resolve));
    server.close();
  });
}
