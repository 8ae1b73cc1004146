/** `lifeboat docs [--check]`: the plan tables of runbooks/*.md, generated from the workflow plans and the config. */
import path from 'node:path';
import type { Command } from 'commander';
import { syncRunbookDocs } from '../docs';
import { examples } from '../help';
import { UsageError } from '../start';
import { commandConfig, PROJECT_ROOT } from './context';

export function register(program: Command): void {
  examples(
    program
      .command('docs')
      .description('regenerate the plan tables of runbooks/*.md from the workflow plans and the config')
      .option('--check', 'only check: exit 1 when a doc differs from what the code generates'),
    ['lifeboat docs', 'lifeboat docs --check'],
  ).action((o: { check?: boolean }, cmd: Command) => {
    const changed = syncRunbookDocs(commandConfig(cmd), path.join(PROJECT_ROOT, 'runbooks'), !o.check);
    if (o.check && changed.length > 0) throw new UsageError(`runbook docs are out of date: ${changed.join(', ')}; run 'npm run docs'`);
    console.log(changed.length > 0 ? `updated ${changed.join(', ')}` : 'runbook docs are up to date');
  });
}
