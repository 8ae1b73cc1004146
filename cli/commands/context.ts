/**
 * What every command shares: where the project is, the config a command runs
 * on, the one way a command connects to Temporal, and the exit code a
 * command that succeeded may still have to report.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import type { Command } from 'commander';
import { loadConfig, type LoadedConfig } from '../../config/load';
import { connectClient, temporalTarget } from '../../lib/temporal';

export interface CliContext {
  /** A command that succeeded but must exit non-zero sets `code` (the audit with a tier-1 finding, a dry run that is not ready). */
  exit: { code: number };
}

/** The checkout or install the CLI runs from (runbooks/, dist/). */
export const PROJECT_ROOT = findProjectRoot();

function findProjectRoot(): string {
  // Compiled: dist/cli/commands/context.js; from source: cli/commands/context.ts.
  const up = path.resolve(__dirname, '..', '..');
  return path.basename(up) === 'dist' ? path.dirname(up) : up;
}

/** --config, else LIFEBOAT_CONFIG, else ./runbooks/lab.yaml, else the project's runbooks/lab.yaml. */
export function configPath(explicit?: string): string {
  if (explicit) return explicit;
  if (process.env.LIFEBOAT_CONFIG) return process.env.LIFEBOAT_CONFIG;
  const local = path.resolve('runbooks/lab.yaml');
  return existsSync(local) ? local : path.join(PROJECT_ROOT, 'runbooks', 'lab.yaml');
}

/** The config the command runs on (the program's --config). */
export function commandConfig(cmd: Command): LoadedConfig {
  return loadConfig(configPath(cmd.optsWithGlobals<{ config?: string }>().config));
}

/** The one way a command reaches Temporal: a client on the config's target, envconfig's TEMPORAL_* on top. */
export function connect(loaded: LoadedConfig): Promise<Client> {
  return connectClient(temporalTarget(loaded));
}

/** A progress line on stderr, so stdout stays the command's answer. */
export const say = (line: string): void => {
  process.stderr.write(`${line}\n`);
};
