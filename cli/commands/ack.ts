/** `lifeboat ack <workflowId>`: a person has a run's last pages; its pager stops retrying them. */
import type { Command } from 'commander';
import { WorkflowNotFoundError, WorkflowUpdateFailedError } from '@temporalio/client';
import { acknowledgeUpdate, pagerWorkflowId, ROLE_SETS } from '../../contract/runbook';
import { examples } from '../help';
import { RunRefusedError } from '../runs';
import { requirePerson } from '../start';
import { commandConfig, connect } from './context';
import { asOption, keyFileOf, keyOption } from './options';
import { ackMessage } from '../../contract/approvals';
import { loadApprovalKey, signMessage } from '../../lib/approval-keys';

export function register(program: Command): void {
  examples(
    program
      .command('ack')
      .description("acknowledge the last pages of a run that ended: its pager stops retrying them (recorded with who)")
      .argument('<workflowId>', 'the run (not its pager)')
      .option('--comment <text>', 'what you are doing about it (recorded)')
      .addOption(asOption(ROLE_SETS.read))
      .addOption(keyOption('; required when approvals.signatures is required', 'the acknowledgement')),
    ['lifeboat ack db-promotion:orders --as carol --comment "on it, finishing by hand"', 'lifeboat ack db-promotion:orders --as carol --key ~/.lifeboat/carol.pem'],
  ).action(async (workflowId: string, o: { as?: string; comment?: string; key?: string }, cmd: Command) => {
    const loaded = commandConfig(cmd);
    const by = requirePerson(loaded, o.as, ROLE_SETS.read, 'acknowledge pages');
    const client = await connect(loaded);
    let pager: string;
    try {
      pager = pagerWorkflowId(workflowId, (await client.workflow.getHandle(workflowId).describe()).runId);
      const keyFile = keyFileOf(o);
      const signature = keyFile ? signMessage(loadApprovalKey(keyFile), ackMessage({ pager, by, comment: o.comment ?? '' })) : undefined;
      const result = await client.workflow.getHandle(pager).executeUpdate(acknowledgeUpdate, { args: [{ by, ...(o.comment ? { comment: o.comment } : {}), ...(signature ? { signature } : {}) }] });
      for (const page of result.pages) console.log(`${page.state.padEnd(12)} ${page.subject} (${page.rounds} rounds${page.channel ? `, by ${page.channel}` : ''})`);
      console.log(`acknowledged by ${by}: ${pager} stops retrying`);
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) throw new RunRefusedError(`no pager for ${workflowId}: the run is unknown, or every final page was delivered before it closed ('lifeboat status ${workflowId}')`);
      if (err instanceof WorkflowUpdateFailedError) throw new RunRefusedError(`acknowledge refused: ${err.cause?.message ?? err.message}`);
      throw err;
    }
  });
}
