/** Runs the CLI's `main` in-process and captures what it prints. */
import { vi } from 'vitest';
import { main } from '../../cli/lifeboat';

export interface CliResult {
  code: number;
  out: string;
  err: string;
}

export async function runCli(args: string[]): Promise<CliResult> {
  let out = '';
  let err = '';
  const capture = (sink: 'out' | 'err') => (chunk: string | Uint8Array) => {
    if (sink === 'out') out += chunk.toString();
    else err += chunk.toString();
    return true;
  };
  const log = vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => {
    out += `${a.join(' ')}\n`;
  });
  const stdout = vi.spyOn(process.stdout, 'write').mockImplementation(capture('out'));
  const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(capture('err'));
  try {
    return { code: await main(args), out, err };
  } finally {
    log.mockRestore();
    stdout.mockRestore();
    stderr.mockRestore();
  }
}
