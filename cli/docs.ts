/**
 * Runbook docs that cannot drift: the block between the `generated` markers in
 * runbooks/<runbook>.md is rendered from the runbook's plan (steps, gates,
 * irreversible points, undos) and the config (budgets, gate timers, who may
 * approve). `lifeboat docs` rewrites it; `lifeboat docs --check` and a test fail
 * when the committed docs differ.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { LoadedConfig } from '../config/load';
import type { RunbookPlan } from '../contract/definition';
import { hasRole, ROLE_SETS } from '../contract/runbook';
import type { CliRunbook, RunbookPolicy } from './runbooks/common';
import { CLI_RUNBOOK_LIST } from './runbooks/index';

const START = '<!-- generated from the workflow plan and the config: edit the code or runbooks/lab.yaml, then run `npm run docs` -->';
const END = '<!-- end of generated section -->';

/** Every registered runbook's doc: its name, its plan and its configured policy. */
export const DOCUMENTED_RUNBOOKS: ReadonlyArray<{ runbook: string; plan: RunbookPlan; policy: (loaded: LoadedConfig) => RunbookPolicy | undefined }> = documented(CLI_RUNBOOK_LIST);

function documented(runbooks: readonly CliRunbook[]) {
  return runbooks.map((r) => ({ runbook: r.definition.name, plan: r.definition.plan, policy: (loaded: LoadedConfig) => r.policy(loaded) }));
}

/** The generated section of one runbook's doc. */
export function renderRunbookSection(loaded: LoadedConfig, plan: RunbookPlan, policy: RunbookPolicy | undefined): string {
  const approvers = Object.entries(loaded.config.people).filter(([, p]) => hasRole(p.roles, ROLE_SETS.decide)).map(([name]) => name);
  const lines = [
    START,
    '',
    `Plan and policy as configured in \`${path.basename(loaded.file)}\`.`,
    '',
    '| # | step | irreversible | undo on rollback | budget |',
    '|---|---|---|---|---|',
  ];
  plan.steps.forEach((step, i) => {
    for (const gate of plan.gates.filter((g) => g.before === step.id)) {
      const g = policy?.gates[gate.id];
      const timers = g ? `escalates after ${g.escalateAfterSeconds}s, rejected after ${g.timeoutSeconds}s${g.twoPerson ? ', two approvers' : ''}` : '';
      lines.push(`| gate | \`${gate.id}\`: ${gate.title} | | | ${timers} |`);
    }
    const budget = policy?.steps[step.id]?.budgetSeconds;
    lines.push(`| ${i + 1} | \`${step.id}\`: ${step.title} | ${step.irreversible ? '**point of no return**' : ''} | ${step.undo ?? ''} | ${budget !== undefined ? `${budget}s` : ''} |`);
  });
  lines.push('');
  if (policy) lines.push(`RTO budget ${policy.rto.budgetSeconds}s from detection; on breach: ${policy.rto.onBreach}.`);
  else lines.push('Not configured in this config file.');
  if (plan.gates.length > 0) lines.push(`May approve its gates: ${approvers.join(', ') || 'nobody'} (the \`approver\` role), never the person who started the run.`);
  else lines.push('No gates: the runbook changes nothing in production that needs a person\'s approval.');
  lines.push('', END);
  return lines.join('\n');
}

/** Replaces (or appends) the generated section of each runbook's doc (runbooks/<name>.md); returns the files whose content changed. */
export function syncRunbookDocs(loaded: LoadedConfig, docsDir: string, write: boolean, runbooks: readonly CliRunbook[] = CLI_RUNBOOK_LIST): string[] {
  const changed: string[] = [];
  for (const { runbook, plan, policy } of documented(runbooks)) {
    const file = path.join(docsDir, `${runbook}.md`);
    // A new runbook's doc starts as its name; the generated section is appended below it.
    const current = existsSync(file) ? readFileSync(file, 'utf8') : `# ${runbook}\n`;
    const section = renderRunbookSection(loaded, plan, policy(loaded));
    const start = current.indexOf(START);
    const end = current.indexOf(END);
    const next = start >= 0 && end > start
      ? `${current.slice(0, start)}${section}${current.slice(end + END.length)}`
      : `${current.trimEnd()}\n\n## Plan (generated)\n\n${section}\n`;
    if (next !== current) {
      changed.push(file);
      if (write) writeFileSync(file, next);
    }
  }
  return changed;
}
