/** `lifeboat approve|reject <workflowId> --gate <gate>`: decide a gate that is waiting, as an approver. */
import type { Command } from 'commander';
import { ROLE_SETS } from '../../contract/runbook';
import { examples } from '../help';
import { decideGate } from '../runs';
import { commandConfig, connect } from './context';
import { asOption, keyFileOf, keyOption, reasonOption } from './options';

interface DecideOptions {
  gate: string;
  as?: string;
  key?: string;
}

/** approve or reject: the gate, who, the comment (a rejection's reason) and the signing key. */
async function decide(decision: 'approve' | 'reject', workflowId: string, o: DecideOptions, comment: string | undefined, cmd: Command) {
  const loaded = commandConfig(cmd);
  const keyFile = keyFileOf(o);
  return decideGate(await connect(loaded), loaded, { workflowId, gate: o.gate, as: o.as, comment, decision, keyFile });
}

const gateCommand = (program: Command, name: string, description: string) =>
  program.command(name).description(description).argument('<workflowId>').requiredOption('--gate <gate>', 'gate id, e.g. promote').addOption(asOption(ROLE_SETS.decide));

export function register(program: Command): void {
  examples(
    gateCommand(program, 'approve', 'approve a gate that is waiting')
      .option('--comment <text>')
      .addOption(keyOption('; required when approvals.signatures is required')),
    [
      'lifeboat approve regional-evacuation:east --gate drain-traffic --as bob --comment "east down 6 min, confirmed"',
      'lifeboat approve db-promotion:orders --gate promote --as bob --key ~/.lifeboat/bob.pem',
    ],
  ).action(async (workflowId: string, o: DecideOptions & { comment?: string }, cmd: Command) => {
    const result = await decide('approve', workflowId, o, o.comment, cmd);
    console.log(
      result.state === 'waiting'
        ? `gate ${result.gate}: your approval is recorded; it needs a second, different approver`
        : `gate ${result.gate} ${result.state} by ${result.decidedBy} at ${result.decidedAt}`,
    );
  });

  examples(gateCommand(program, 'reject', 'reject a gate that is waiting: the run rolls back').addOption(reasonOption()).addOption(keyOption()), [
    'lifeboat reject db-promotion:orders --gate promote --as bob --reason "east is back"',
  ]).action(async (workflowId: string, o: DecideOptions & { reason: string }, cmd: Command) => {
    const result = await decide('reject', workflowId, o, o.reason, cmd);
    console.log(`gate ${result.gate} ${result.state} by ${result.decidedBy} at ${result.decidedAt}`);
  });
}
