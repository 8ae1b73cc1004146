/** `lifeboat resolve <workflowId>`: unblock a run in needs-attention after dealing with a failed undo. */
import { Option, type Command } from 'commander';
import { ROLE_SETS } from '../../contract/runbook';
import { formatStatus } from '../format';
import { examples } from '../help';
import { resolveRun } from '../runs';
import { commandConfig, connect } from './context';
import { asOption, keyFileOf, keyOption } from './options';

export function register(program: Command): void {
  examples(
    program
      .command('resolve')
      .description('unblock a run in needs-attention after dealing with a failed undo')
      .argument('<workflowId>')
      .addOption(new Option('--action <action>', 'retry the undo, or record it as done by hand').choices(['retry', 'done-by-hand']).makeOptionMandatory())
      .requiredOption('--comment <text>', 'what was done (recorded)')
      .addOption(asOption(ROLE_SETS.operate))
      .addOption(keyOption('; required when approvals.signatures is required', 'the resolution')),
    ['lifeboat resolve db-promotion:orders --action retry --comment "primary reachable again" --as alice', 'lifeboat resolve db-promotion:orders --action done-by-hand --comment "re-opened writes by hand" --as alice --key ~/.lifeboat/alice.pem'],
  ).action(async (workflowId: string, o: { as?: string; action: 'retry' | 'done-by-hand'; comment: string; key?: string }, cmd: Command) => {
    const loaded = commandConfig(cmd);
    console.log(formatStatus(await resolveRun(await connect(loaded), loaded, workflowId, { as: o.as, action: o.action, comment: o.comment, keyFile: keyFileOf(o) })));
  });
}
