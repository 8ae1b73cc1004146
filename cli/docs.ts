/**
 * Runbook docs that cannot drift: the block between the `generated` markers in
 * runbooks/<runbook>.md is rendered from the runbook's plan (steps, gates,
 * irreversible points, undos) and the config (budgets, gate timers, who may
 * approve). `lifeboat docs` rewrites it; `lifeboat docs --check` and a test fail
 * when the committed docs differ.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { LoadedConfig } from '../config/load';
import { DB_PROMOTION_RUNBOOK, dbPromotionPlan } from '../contract/db-promotion';
import { FAILBACK_RUNBOOK, failbackPlan } from '../contract/failback';
import { REGIONAL_EVACUATION_RUNBOOK, regionalEvacuationPlan } from '../contract/regional-evacuation';
import { hasRole, ROLE_SETS, type GatePolicy, type RtoPolicy } from '../contract/runbook';
import { BACKUP_RESTORE_TEST_RUNBOOK, backupRestoreTestPlan, DATABASE_BACKUP_RUNBOOK, databaseBackupPlan } from '../contract/backup';

const START = '<!-- generated from the workflow plan and the config: edit the code or runbooks/lab.yaml, then run `npm run docs` -->';
const END = '<!-- end of generated section -->';

interface Plan {
  readonly steps: readonly { readonly id: string; readonly title: string; readonly irreversible?: boolean; readonly undo?: string }[];
  readonly gates: readonly { readonly id: string; readonly title: string; readonly before?: string }[];
}

interface RunbookPolicy {
  rto: RtoPolicy;
  steps: Partial<Record<string, { budgetSeconds: number }>>;
  gates: Record<string, GatePolicy>;
}

export const DOCUMENTED_RUNBOOKS: ReadonlyArray<{ runbook: string; plan: Plan; policy: (loaded: LoadedConfig) => RunbookPolicy | undefined }> = [
  { runbook: DB_PROMOTION_RUNBOOK, plan: dbPromotionPlan, policy: (l) => l.config.runbooks['db-promotion'] },
  { runbook: REGIONAL_EVACUATION_RUNBOOK, plan: regionalEvacuationPlan, policy: (l) => l.config.runbooks['regional-evacuation'] },
  { runbook: FAILBACK_RUNBOOK, plan: failbackPlan, policy: (l) => l.config.runbooks.failback },
  { runbook: DATABASE_BACKUP_RUNBOOK, plan: databaseBackupPlan, policy: (l) => ({ ...l.config.runbooks['database-backup'], gates: {} }) },
  { runbook: BACKUP_RESTORE_TEST_RUNBOOK, plan: backupRestoreTestPlan, policy: (l) => ({ ...l.config.runbooks['backup-restore-test'], gates: {} }) },
];

/** The generated section of one runbook's doc. */
export function renderRunbookSection(loaded: LoadedConfig, plan: Plan, policy: RunbookPolicy | undefined): string {
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

/** Replaces (or appends) the generated section of each runbook doc; returns the files whose content changed. */
export function syncRunbookDocs(loaded: LoadedConfig, docsDir: string, write: boolean): string[] {
  const changed: string[] = [];
  for (const { runbook, plan, policy } of DOCUMENTED_RUNBOOKS) {
    const file = path.join(docsDir, `${runbook}.md`);
    const current = readFileSync(file, 'utf8');
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
