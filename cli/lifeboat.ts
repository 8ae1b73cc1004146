/**
 * `lifeboat`: the incident commander's and approver's command line. One file
 * per command under cli/commands/ (its flags, its examples, its action); this
 * program only registers them and turns failures into exit codes.
 * Exit codes: 0 done, 1 refused or failed (the message says why), 2 usage.
 */
import { Command, CommanderError } from 'commander';
import { ConfigError } from '../config/load';
import { CommandError, GiveUp } from '../lib/processes';
import { TemporalUnreachableError } from '../lib/temporal';
import { RunRefusedError } from './runs';
import { UsageError } from './start';
import type { CliContext } from './commands/context';
import { configOption } from './commands/options';
import * as ack from './commands/ack';
import * as audit from './commands/audit';
import * as cancel from './commands/cancel';
import * as codecServer from './commands/codec-server';
import * as completion from './commands/completion';
import * as decide from './commands/decide';
import * as demo from './commands/demo';
import * as docs from './commands/docs';
import * as evidence from './commands/evidence';
import * as keys from './commands/keys';
import * as lab from './commands/lab';
import * as report from './commands/report';
import * as resolve from './commands/resolve';
import * as runs from './commands/runs';
import * as schedules from './commands/schedules';
import * as start from './commands/start';
import * as sentinel from './commands/sentinel';
import * as status from './commands/status';
import * as worker from './commands/worker';

/** In the order `--help` lists them. */
const COMMANDS: ReadonlyArray<{ register(program: Command, context: CliContext): void }> = [
  lab, worker, start, decide, sentinel, status, runs, keys, report, evidence, audit, schedules, cancel, resolve, ack, codecServer, docs, demo, completion,
];

/** `exit.code`: a command that succeeded but must report a non-zero exit (the audit with a tier-1 finding). */
export function buildProgram(exit: { code: number } = { code: 0 }): Command {
  const program = new Command('lifeboat')
    .description('Disaster-recovery runbooks as durable Temporal workflows')
    .addOption(configOption())
    .showHelpAfterError()
    .exitOverride();
  for (const command of COMMANDS) command.register(program, { exit });
  return program;
}

/** Runs the CLI; returns the exit code instead of exiting, for tests. */
export async function main(argv: readonly string[]): Promise<number> {
  const exit = { code: 0 };
  const program = buildProgram(exit);
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return exit.code;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    if (err instanceof ConfigError || err instanceof UsageError || err instanceof RunRefusedError || err instanceof TemporalUnreachableError || err instanceof CommandError || err instanceof GiveUp) {
      process.stderr.write(`lifeboat: ${err.message}\n`);
      return 1;
    }
    process.stderr.write(`lifeboat: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    return 1;
  }
}

if (require.main === module) {
  // Exit explicitly: open Temporal connections would keep the process alive (stdout is synchronous on Linux).
  void main(process.argv.slice(2)).then((code) => process.exit(code));
}
