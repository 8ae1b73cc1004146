/** `lifeboat demo` (`npm run demo`): the lab, its workers, a planned evacuation and a failback; or, with --unplanned, a lost region the sentinels recover. */
import type { Command } from 'commander';
import { runDemo } from '../demo';
import { runUnplannedDemo } from '../demo-unplanned';
import { examples } from '../help';
import { commandConfig, PROJECT_ROOT, say } from './context';

export function register(program: Command): void {
  examples(
    program
      .command('demo')
      .description(
        'bring the lab up with its workers, evacuate the region of the first database (planned), then fail back; a second person approves every gate, and the lab stays up. ' +
          "--unplanned: kill that region's primaries instead, and let the sentinels detect it from three regions and recover each database, with the RTO from the fault",
      )
      .option('--unplanned', "the sentinels' demo: a lost region, detected by a quorum, recovered without a person (tier auto)", false),
    ['lifeboat demo', 'lifeboat demo --unplanned'],
  ).action(async (o: { unplanned: boolean }, cmd: Command) => {
    const options = { projectRoot: PROJECT_ROOT, log: say };
    if (o.unplanned) await runUnplannedDemo(commandConfig(cmd), options);
    else await runDemo(commandConfig(cmd), options);
  });
}
