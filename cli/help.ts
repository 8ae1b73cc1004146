/**
 * `--help` examples for every command, and `lifeboat completion bash|zsh`:
 * a completion script generated from the command tree itself, so it cannot
 * fall behind the commands.
 */
import type { Command } from 'commander';
import { RUNBOOKS } from './start';

/** Examples per command path ("schedules apply"); every command has some (a test checks). */
export const EXAMPLES: Readonly<Record<string, readonly string[]>> = {
  lab: ['lifeboat lab up', 'lifeboat lab status --json'],
  'lab up': ['lifeboat lab up'],
  'lab down': ['lifeboat lab down'],
  'lab reset': ['lifeboat lab reset && lifeboat start regional-evacuation region=east --as alice --drill'],
  'lab status': ['lifeboat lab status', 'lifeboat lab status --json | jq .databases.orders'],
  worker: ['lifeboat worker', 'NODE_ENV=production lifeboat worker --workflows bundle'],
  start: [
    'lifeboat start db-promotion database=orders mode=planned --as alice --dry-run',
    'lifeboat start regional-evacuation region=east mode=unplanned --detected-at 2026-11-23T03:12:00Z --incident INC-7 --as alice',
    'lifeboat start failback region=east --as alice',
    'lifeboat start backup-restore-test database=orders --as alice --drill',
  ],
  approve: [
    'lifeboat approve regional-evacuation:east --gate drain-traffic --as bob --comment "east down 6 min, confirmed"',
    'lifeboat approve db-promotion:orders --gate promote --as bob --key ~/.lifeboat/bob.pem',
  ],
  reject: ['lifeboat reject db-promotion:orders --gate promote --as bob --reason "east is back"'],
  status: ['lifeboat status regional-evacuation:east --as dave', 'lifeboat status regional-evacuation:east --watch --as dave'],
  runs: ['lifeboat runs --as dave', 'lifeboat runs --runbook regional-evacuation --drill --since 30d --as dave', 'lifeboat runs --state failed --json --as dave'],
  cancel: ['lifeboat cancel regional-evacuation:east --reason "false alarm" --as alice'],
  resolve: ['lifeboat resolve db-promotion:orders --action retry --comment "primary reachable again" --as alice'],
  keys: ['lifeboat keys generate --out ~/.lifeboat/bob.pem'],
  'keys generate': ['lifeboat keys generate --out ~/.lifeboat/bob.pem'],
  report: [
    'lifeboat report regional-evacuation:east --as dave',
    'lifeboat report regional-evacuation:east --format html --out east.html --as dave',
    'lifeboat report db-promotion:orders --no-store --as dave',
  ],
  evidence: ['lifeboat evidence verify db-promotion:orders --as dave'],
  'evidence verify': ['lifeboat evidence verify db-promotion:orders --as dave', 'lifeboat evidence verify --bundle orders-evidence.json'],
  'evidence export': ['lifeboat evidence export db-promotion:orders --out orders-evidence.json --as dave'],
  audit: ['lifeboat audit --as dave', 'lifeboat audit --json --as-of 2026-12-31T23:59:59Z --as dave'],
  schedules: ['lifeboat schedules list --as dave'],
  'schedules apply': ['lifeboat schedules apply --as erin', 'lifeboat schedules apply --prune --as erin'],
  'schedules list': ['lifeboat schedules list --as dave', 'lifeboat schedules list --json --as dave'],
  'schedules pause': ['lifeboat schedules pause lifeboat:database-backup:orders --note "storage migration" --as erin'],
  'schedules unpause': ['lifeboat schedules unpause lifeboat:database-backup:orders --as erin'],
  'schedules trigger': ['lifeboat schedules trigger lifeboat:backup-restore-test:orders --as erin'],
  'schedules delete': ['lifeboat schedules delete lifeboat:regional-evacuation:east --as erin'],
  'codec-server': ['LIFEBOAT_CODEC_TOKEN=… lifeboat codec-server --port 8888 --ui-origin http://127.0.0.1:8233'],
  docs: ['lifeboat docs', 'lifeboat docs --check'],
  demo: ['lifeboat demo'],
  completion: ['lifeboat completion bash > /etc/bash_completion.d/lifeboat', 'source <(lifeboat completion bash)', 'lifeboat completion zsh > "${fpath[1]}/_lifeboat"'],
};

/** Every command below the root with its path ("schedules apply"). */
export function commandPaths(program: Command): Array<{ path: string; command: Command }> {
  const walk = (cmd: Command, prefix: string): Array<{ path: string; command: Command }> =>
    cmd.commands.flatMap((c) => {
      const p = prefix ? `${prefix} ${c.name()}` : c.name();
      return [{ path: p, command: c }, ...walk(c, p)];
    });
  return walk(program, '');
}

export function addExamples(program: Command): void {
  for (const { path, command } of commandPaths(program)) {
    const examples = EXAMPLES[path];
    if (examples) command.addHelpText('after', `\nExamples:\n${examples.map((e) => `  ${e}`).join('\n')}`);
  }
}

const optionFlags = (cmd: Command) => [...cmd.options.flatMap((o) => [o.long, o.short].filter((f): f is string => f !== undefined)), '--help'];

/** A bash completion script: subcommands at each level, that level's options, runbook names after `start`. */
export function bashCompletion(program: Command): string {
  const entries = commandPaths(program);
  const cases = entries.map(({ path, command }) => {
    const words = [...command.commands.map((c) => c.name()), ...optionFlags(command), ...(path === 'start' ? RUNBOOKS : [])];
    return `    "${path}") words="${words.join(' ')}" ;;`;
  });
  const top = [...program.commands.map((c) => c.name()), ...optionFlags(program)];
  return `# bash completion for lifeboat (generated by \`lifeboat completion bash\`)
_lifeboat() {
  local cur path word i
  cur="\${COMP_WORDS[COMP_CWORD]}"
  path=""
  for ((i = 1; i < COMP_CWORD; i++)); do
    word="\${COMP_WORDS[i]}"
    [[ "$word" == -* ]] && continue
    case "$path \${word}" in
${entries.map(({ path }) => `      " ${path}"|"${path}") path="${path}" ;;`).join('\n')}
    esac
  done
  local words="${top.join(' ')}"
  case "$path" in
${cases.join('\n')}
  esac
  COMPREPLY=( $(compgen -W "$words" -- "$cur") )
}
complete -F _lifeboat lifeboat
`;
}

/** zsh: reuse the bash function through bashcompinit. */
export function zshCompletion(program: Command): string {
  return `#compdef lifeboat\nautoload -U +X bashcompinit && bashcompinit\n${bashCompletion(program)}`;
}
