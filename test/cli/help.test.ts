/** Every command has --help examples, and the completion script is generated from the command tree and works in bash. */
import { execFileSync } from 'node:child_process';
import { writeFileSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildProgram } from '../../cli/lifeboat';
import { bashCompletion, commandPaths, examplesOf } from '../../cli/help';

describe('help and completion', () => {
  it('every command, nested ones included, has examples; every example names its command', () => {
    const commands = commandPaths(buildProgram());
    expect(commands.filter(({ command }) => !examplesOf(command)?.length).map((c) => c.path)).toEqual([]);
    expect(commands.flatMap(({ path, command }) => (examplesOf(command) ?? []).filter((e) => !e.includes(`lifeboat ${path}`)))).toEqual([]);
    let startHelp = '';
    buildProgram().commands.find((c) => c.name() === 'start')?.configureOutput({ writeOut: (text) => (startHelp += text) }).outputHelp();
    expect(startHelp).toMatch(/\nExamples:\n {2}lifeboat start db-promotion database=orders mode=planned --as alice --dry-run\n/);
    const help = buildProgram().commands.find((c) => c.name() === 'schedules')?.commands.find((c) => c.name() === 'apply')?.helpInformation() ?? '';
    expect(help).toContain('--prune');
  });

  it('demo --help names what the demo runs: an evacuation, then a failback', () => {
    const help = (buildProgram().commands.find((c) => c.name() === 'demo')?.helpInformation() ?? '').replace(/\s+/g, ' ');
    expect(help).toMatch(/evacuate .*then fail back/);
    expect(help).not.toContain('db-promotion');
  });

  it('bash completes commands, subcommands, options and runbook names', () => {
    const script = bashCompletion(buildProgram());
    const dir = mkdtempSync(path.join(os.tmpdir(), 'lifeboat-completion-'));
    writeFileSync(path.join(dir, 'lifeboat.bash'), script);
    const complete = (...words: string[]) =>
      execFileSync('bash', ['-c', `source ${path.join(dir, 'lifeboat.bash')}; COMP_WORDS=(lifeboat ${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length}; _lifeboat; printf '%s\\n' "\${COMPREPLY[@]}"`]).toString().trim().split('\n');
    expect(complete('sch')).toEqual(['schedules']);
    expect(complete('schedules', 'p')).toEqual(['pause']);
    expect(complete('schedules', 'apply', '--p')).toEqual(['--prune']);
    expect(complete('start', 'backup')).toEqual(['backup-restore-test']);
    expect(complete('status', 'db-promotion:orders', '--w')).toEqual(['--watch']);
  });
});
