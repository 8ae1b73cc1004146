/** `lifeboat cancel <workflowId>`: cancel a run; its undos run in reverse. */
import type { Command } from 'commander';
import { ROLE_SETS } from '../../contract/runbook';
import { examples } from '../help';
import { cancelRun } from '../runs';
import { commandConfig, connect } from './context';
import { asOption, keyFileOf, keyOption, reasonOption } from './options';

export function register(program: Command): void {
  examples(
    program
      .command('cancel')
      .description('cancel a run: the undos run in reverse (refused past the point of no return)')
      .argument('<workflowId>')
      .addOption(reasonOption())
      .addOption(asOption(ROLE_SETS.operate))
      .addOption(keyOption('; required when approvals.signatures is required', 'the cancel')),
    ['lifeboat cancel regional-evacuation:east --reason "false alarm" --as alice', 'lifeboat cancel db-promotion:orders --reason "wrong database" --as alice --key ~/.lifeboat/alice.pem'],
  ).action(async (workflowId: string, o: { as?: string; reason: string; key?: string }, cmd: Command) => {
    const loaded = commandConfig(cmd);
    await cancelRun(await connect(loaded), loaded, workflowId, o.as, o.reason, keyFileOf(o));
    console.log(`cancellation requested for ${workflowId}: the undos run now ('lifeboat status ${workflowId}')`);
  });
}
