/** `lifeboat status <workflowId> [--watch]`: a run's steps, gates, RTO and RPO, once or until it ends. */
import type { Command } from 'commander';
import { ROLE_SETS } from '../../contract/runbook';
import { formatStatus } from '../format';
import { examples } from '../help';
import { runStatus } from '../runs';
import { requirePerson } from '../start';
import { watchRun } from '../watch';
import { commandConfig, connect, type CliContext } from './context';
import { asOption, jsonOption } from './options';

export function register(program: Command, { exit }: CliContext): void {
  examples(
    program
      .command('status')
      .description("a run's steps, gates, RTO and RPO")
      .argument('<workflowId>')
      .addOption(jsonOption('print the status query result as JSON'))
      .option('--watch', 'follow the run until it ends: redraws on a terminal, one line per change otherwise; exit 0 only if it completed')
      .addOption(asOption(ROLE_SETS.read)),
    ['lifeboat status regional-evacuation:east --as dave', 'lifeboat status regional-evacuation:east --watch --as dave'],
  ).action(async (workflowId: string, o: { json?: boolean; watch?: boolean; as?: string }, cmd: Command) => {
    const loaded = commandConfig(cmd);
    requirePerson(loaded, o.as, ROLE_SETS.read, 'read run status');
    const client = await connect(loaded);
    if (o.watch) {
      exit.code = await watchRun(client, workflowId, { tty: process.stdout.isTTY === true, write: (t) => process.stdout.write(t) });
      return;
    }
    const status = await runStatus(client, workflowId);
    console.log(o.json ? JSON.stringify(status, null, 2) : formatStatus(status));
  });
}
