/** `lifeboat schedules apply|list|pause|unpause|trigger|delete`: drills and backups on Temporal Schedules, from the config. */
import type { Command } from 'commander';
import { ROLE_SETS } from '../../contract/runbook';
import { examples } from '../help';
import { applySchedules, changeSchedule, formatSchedules, listSchedules } from '../schedules';
import { startSentinels } from '../sentinels';
import { commandConfig, connect } from './context';
import { asOption, jsonOption } from './options';

const CHANGES = {
  pause: { description: 'pause a schedule (say why with --note)', example: 'lifeboat schedules pause lifeboat:database-backup:orders --note "storage migration" --as erin' },
  unpause: { description: 'resume a paused schedule', example: 'lifeboat schedules unpause lifeboat:database-backup:orders --as erin' },
  trigger: { description: 'start a run of a schedule now', example: 'lifeboat schedules trigger lifeboat:backup-restore-test:orders --as erin' },
  delete: { description: 'delete a schedule (apply recreates it while it is in the config)', example: 'lifeboat schedules delete lifeboat:regional-evacuation:east --as erin' },
} as const;

export function register(program: Command): void {
  const schedules = examples(program.command('schedules').description('drills and backups on Temporal Schedules, from the config (admins change them)'), ['lifeboat schedules list --as dave']);
  examples(
    schedules
      .command('apply')
      .description("create or update the schedules the config asks for, and start the config's sentinels that are not running; idempotent")
      .option('--prune', 'also delete Lifeboat schedules no longer in the config')
      .addOption(asOption(ROLE_SETS.schedules)),
    ['lifeboat schedules apply --as erin', 'lifeboat schedules apply --prune --as erin'],
  ).action(async (o: { prune?: boolean; as?: string }, cmd: Command) => {
    const loaded = commandConfig(cmd);
    const client = await connect(loaded);
    const outcome = await applySchedules(client, loaded, { as: o.as, prune: o.prune === true });
    for (const [what, ids] of Object.entries(outcome)) for (const id of ids as string[]) console.log(`${what.padEnd(11)} ${id}`);
    // The sentinels are long-lived like the schedules: applying the config keeps them running.
    if (loaded.config.sentinels) for (const s of await startSentinels(client, loaded, o.as)) console.log(`${(s.started ? 'started' : 'running').padEnd(11)} ${s.workflowId}`);
    if (outcome.notInConfig.length > 0) console.log('schedules not in the config are kept: `lifeboat schedules apply --prune` deletes them');
  });
  examples(schedules.command('list').description('the Lifeboat schedules: state, next and recent runs').addOption(jsonOption()).addOption(asOption(ROLE_SETS.read)), [
    'lifeboat schedules list --as dave',
    'lifeboat schedules list --json --as dave',
  ]).action(async (o: { json?: boolean; as?: string }, cmd: Command) => {
    const loaded = commandConfig(cmd);
    const rows = await listSchedules(await connect(loaded), loaded, o.as);
    console.log(o.json ? JSON.stringify(rows, null, 2) : formatSchedules(rows));
  });
  for (const action of ['pause', 'unpause', 'trigger', 'delete'] as const) {
    const { description, example } = CHANGES[action];
    examples(
      schedules
        .command(action)
        .description(description)
        .argument('<scheduleId>', 'e.g. lifeboat:backup-restore-test:orders')
        .option('--note <text>', 'why (recorded on the schedule)')
        .addOption(asOption(ROLE_SETS.schedules)),
      [example],
    ).action(async (scheduleId: string, o: { note?: string; as?: string }, cmd: Command) => {
      const loaded = commandConfig(cmd);
      await changeSchedule(await connect(loaded), loaded, action, scheduleId, { as: o.as, note: o.note });
      console.log(`${action}: ${scheduleId}`);
    });
  }
}
