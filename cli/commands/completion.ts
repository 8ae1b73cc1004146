/** `lifeboat completion bash|zsh`: a shell completion script generated from the program's own commands. */
import type { Command } from 'commander';
import { bashCompletion, examples, zshCompletion } from '../help';
import { UsageError } from '../start';

export function register(program: Command): void {
  examples(program.command('completion').description('print a shell completion script generated from these commands').argument('<shell>', 'bash or zsh'), [
    'lifeboat completion bash > /etc/bash_completion.d/lifeboat',
    'source <(lifeboat completion bash)',
    'lifeboat completion zsh > "${fpath[1]}/_lifeboat"',
  ]).action((shell: string) => {
    if (shell === 'bash') process.stdout.write(bashCompletion(program));
    else if (shell === 'zsh') process.stdout.write(zshCompletion(program));
    else throw new UsageError(`completion for '${shell}' is not available: use bash or zsh`);
  });
}
