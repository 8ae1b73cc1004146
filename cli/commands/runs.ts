/** `lifeboat runs`: recent runs from Temporal visibility, newest first. */
import type { Command } from 'commander';
import { ROLE_SETS } from '../../contract/runbook';
import { examples } from '../help';
import { formatRuns, listRuns, type RunsFilter } from '../runs-list';
import { requirePerson } from '../start';
import { commandConfig, connect } from './context';
import { asOption, jsonOption } from './options';

export function register(program: Command): void {
  examples(
    program
      .command('runs')
      .description('recent runs from Temporal visibility (search attributes), newest first')
      .option('--runbook <name>', 'only this runbook')
      .option('--state <state>', 'running, completed, failed, canceled, terminated or timed-out')
      .option('--drill', 'only drills')
      .option('--since <age>', 'started within, e.g. 7d, 12h, 30m')
      .addOption(jsonOption())
      .addOption(asOption(ROLE_SETS.read)),
    ['lifeboat runs --as dave', 'lifeboat runs --runbook regional-evacuation --drill --since 30d --as dave', 'lifeboat runs --state failed --json --as dave'],
  ).action(async ({ json, as, ...filter }: RunsFilter & { json?: boolean; as?: string }, cmd: Command) => {
    const loaded = commandConfig(cmd);
    requirePerson(loaded, as, ROLE_SETS.read, 'list runs');
    const rows = await listRuns(await connect(loaded), filter);
    console.log(json ? JSON.stringify(rows, null, 2) : formatRuns(rows));
  });
}
