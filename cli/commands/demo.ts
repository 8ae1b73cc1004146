/** `lifeboat demo` (`npm run demo`): the lab, its workers, a planned evacuation and a failback, each gate approved by a second person. */
import type { Command } from 'commander';
import { runDemo } from '../demo';
import { examples } from '../help';
import { commandConfig, PROJECT_ROOT, say } from './context';

export function register(program: Command): void {
  examples(
    program
      .command('demo')
      .description('bring the lab up with its workers, evacuate the region of the first database (planned), then fail back; a second person approves every gate, and the lab stays up'),
    ['lifeboat demo'],
  ).action(async (_o, cmd: Command) => {
    await runDemo(commandConfig(cmd), { projectRoot: PROJECT_ROOT, log: say });
  });
}
