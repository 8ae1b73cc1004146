/** `lifeboat sentinel start|stop|status` and `lifeboat veto <workflowId>`. */
import type { Command } from 'commander';
import { ROLE_SETS } from '../../contract/runbook';
import { examples } from '../help';
import { formatSentinels, readSentinels, startSentinels, stopSentinels, vetoRun } from '../sentinels';
import { commandConfig, connect } from './context';
import { asOption, keyFileOf, keyOption, reasonOption } from './options';

export function register(program: Command): void {
  const sentinel = examples(program.command('sentinel').description('the sentinels: watch each target from every region, start the runbook when a quorum sees it fail'), [
    'lifeboat sentinel start --as erin',
    'lifeboat sentinel status',
  ]);
  examples(
    sentinel.command('start').description("start the config's sentinels (idempotent: a running one is kept)").argument('[targets...]', 'databases, or region:NAME (default: all in sentinels:)').addOption(asOption(ROLE_SETS.sentinels)),
    ['lifeboat sentinel start --as erin', 'lifeboat sentinel start orders --as erin'],
  ).action(async (targets: string[], o: { as?: string }, cmd: Command) => {
    const loaded = commandConfig(cmd);
    for (const s of await startSentinels(await connect(loaded), loaded, o.as, targets)) console.log(`${s.workflowId}: ${s.started ? 'started' : 'already running'} (run ${s.runId})`);
  });
  examples(
    sentinel.command('stop').description('stop sentinels after their current round').argument('[targets...]').addOption(asOption(ROLE_SETS.sentinels)).option('--reason <text>'),
    ['lifeboat sentinel stop --as erin --reason "maintenance window"'],
  ).action(async (targets: string[], o: { as?: string; reason?: string }, cmd: Command) => {
    const loaded = commandConfig(cmd);
    const stopped = await stopSentinels(await connect(loaded), loaded, o.as, o.reason, targets);
    console.log(stopped.length > 0 ? `stopping ${stopped.join(', ')}` : 'no sentinel was running');
  });
  examples(
    sentinel.command('status').description("each target's health as each region sees it, the verdict and the last declaration").argument('[targets...]').option('--json', 'machine-readable', false),
    ['lifeboat sentinel status', 'lifeboat sentinel status orders --json'],
  ).action(async (targets: string[], o: { json: boolean }, cmd: Command) => {
    const loaded = commandConfig(cmd);
    const readings = await readSentinels(await connect(loaded), loaded, targets);
    console.log(o.json ? JSON.stringify(readings, null, 2) : formatSentinels(readings));
  });

  examples(
    program.command('veto').description("stop a sentinel's automatic decision: reject the run's waiting gate (its veto window), which rolls the run back").argument('<workflowId>').addOption(asOption(ROLE_SETS.decide)).addOption(reasonOption()).addOption(keyOption()),
    ['lifeboat veto db-promotion:orders --as bob --reason "east is only slow, not lost"'],
  ).action(async (workflowId: string, o: { as?: string; reason: string; key?: string }, cmd: Command) => {
    const loaded = commandConfig(cmd);
    const result = await vetoRun(await connect(loaded), loaded, { workflowId, as: o.as, reason: o.reason, keyFile: keyFileOf(o) });
    console.log(`vetoed: gate ${result.gate} ${result.state} by ${result.decidedBy} at ${result.decidedAt}`);
  });
}
