/**
 * `lifeboat start … --dry-run`: validates the start like a real one, runs the
 * read-only preflight checks directly against the providers (nothing is
 * started, nothing changes; the clients come from the CLI's own read-only
 * root, cli/readers.ts), prints the plan and estimates the RTO from the
 * per-step budgets and from the measured RTO of past runs on the same targets.
 */
import type { Client } from '@temporalio/client';
import type { LoadedConfig } from '../config/load';
import { buildCliReaders, type CliReaders, type EvidenceReader } from './readers';
import type { PreflightCheck } from './runbooks/common';
import { cliRunbookNamed, type StartRequest } from './start';
import { readMemo, runMemoSchema } from './memo';
import { outcomeSeconds, readOutcome } from '../contract/outcome';

export type { PreflightCheck } from './runbooks/common';

export interface DryRunStep {
  id: string;
  title: string;
  irreversible: boolean;
  undo?: string;
  budgetSeconds?: number;
  /** Measured durations of this step in the last completed runs on the same targets (from their evidence). */
  measured?: { runs: number; medianSeconds: number; worstSeconds: number };
  /** The gate a person must approve before this step. */
  gate?: { id: string; escalateAfterSeconds?: number; timeoutSeconds?: number; twoPerson?: boolean };
}

export interface DryRunReport {
  runbook: string;
  workflowId: string;
  targets: string[];
  summary: string;
  steps: DryRunStep[];
  preflight: PreflightCheck[];
  rto: {
    targetSeconds: number;
    /** Sum of the per-step budgets, when every step has one (gates are people's time and not included). */
    fromBudgetsSeconds?: number;
    budgetedSteps: number;
    pastRuns: { count: number; medianSeconds?: number; worstSeconds?: number; workflowIds: string[] };
    /** The worst past run when there are any, else the budgets' sum. */
    estimateSeconds?: number;
    exceedsTarget: boolean;
    method: string;
  };
  /** Zero when every preflight check passed and the estimate is within the target. */
  exitCode: number;
}

const PAST_RUNS = 5;

/** Measured RTO (or duration) of the newest completed runs of the runbook on the same targets. */
interface PastRun {
  workflowId: string;
  seconds: number;
  /** Measured step durations from the run's evidence chain (step-done records). */
  steps: Record<string, number>;
}

async function pastDurations(client: Client, runbook: string, targets: readonly string[], evidence: EvidenceReader): Promise<PastRun[]> {
  const found: PastRun[] = [];
  const want = JSON.stringify([...targets].sort());
  for await (const wf of client.workflow.list({ query: `LifeboatRunbook = '${runbook}' AND ExecutionStatus = 'Completed'` })) {
    const memo = readMemo(runMemoSchema, wf.memo);
    if (JSON.stringify([...(memo?.lifeboat.targets ?? [])].sort()) !== want) continue;
    const seconds = outcomeSeconds(readOutcome(await client.workflow.getHandle(wf.workflowId, wf.runId).result()));
    if (seconds === undefined) continue;
    const steps: Record<string, number> = {};
    // Without its evidence a past run still counts for the RTO estimate, only not for the step durations.
    for (const r of await evidence.read(wf.workflowId, wf.runId).catch(() => [])) {
      const o = r.outcome as { startedAt?: string; endedAt?: string } | undefined;
      if (r.kind === 'step-done' && r.step && o?.startedAt && o.endedAt) steps[r.step] = (Date.parse(o.endedAt) - Date.parse(o.startedAt)) / 1000;
    }
    found.push({ workflowId: wf.workflowId, seconds, steps });
    if (found.length >= PAST_RUNS) break;
  }
  return found;
}

export async function dryRun(client: Client, loaded: LoadedConfig, request: StartRequest, readers: CliReaders = buildCliReaders(loaded)): Promise<DryRunReport> {
  const runbook = cliRunbookNamed(request.runbook);
  const plan = runbook.plan(loaded, request);
  const policy = runbook.policy(loaded);
  const { plan: definitionPlan } = runbook.definition;
  const steps: DryRunStep[] = definitionPlan.steps.map((s) => {
    const gate = definitionPlan.gates.find((g) => g.before === s.id);
    const gatePolicy = gate ? policy?.gates[gate.id] : undefined;
    return {
      id: s.id,
      title: s.title,
      irreversible: s.irreversible === true,
      undo: s.undo,
      budgetSeconds: policy?.steps[s.id]?.budgetSeconds,
      gate: gate ? { id: gate.id, escalateAfterSeconds: gatePolicy?.escalateAfterSeconds, timeoutSeconds: gatePolicy?.timeoutSeconds, twoPerson: gatePolicy?.twoPerson } : undefined,
    };
  });
  const mode = request.params.find((p) => p.startsWith('mode='))?.slice(5) ?? 'planned';
  const checks = await Promise.all(runbook.preflight(readers, plan.targets, mode));
  const past = await pastDurations(client, request.runbook, plan.targets, readers.evidence);
  for (const step of steps) {
    const measured = past.map((p) => p.steps[step.id]).filter((v): v is number => v !== undefined).sort((a, b) => a - b);
    if (measured.length > 0) step.measured = { runs: measured.length, medianSeconds: measured[Math.floor((measured.length - 1) / 2)] ?? 0, worstSeconds: measured.at(-1) ?? 0 };
  }
  const sorted = past.map((p) => p.seconds).sort((a, b) => a - b);
  const median = sorted.length > 0 ? sorted[Math.floor((sorted.length - 1) / 2)] : undefined;
  const worst = sorted.at(-1);
  const budgeted = steps.filter((s) => s.budgetSeconds !== undefined);
  const fromBudgets = budgeted.length === steps.length ? budgeted.reduce((sum, s) => sum + (s.budgetSeconds ?? 0), 0) : undefined;
  const targetSeconds = policy?.rto.budgetSeconds ?? 0;
  const estimate = worst ?? fromBudgets;
  const exceeds = estimate !== undefined && estimate > targetSeconds;
  const method = worst !== undefined
    ? `worst measured RTO of the last ${past.length} completed runs on ${plan.targets.join(', ')}`
    : fromBudgets !== undefined
      ? 'sum of the per-step budgets (no completed run on these targets yet); gate waits not included'
      : `no estimate: ${steps.length - budgeted.length} of ${steps.length} steps have no budget and no run on these targets has completed`;
  return {
    runbook: request.runbook,
    workflowId: plan.workflowId,
    targets: plan.targets,
    summary: plan.staticSummary,
    steps,
    preflight: checks,
    rto: { targetSeconds, fromBudgetsSeconds: fromBudgets, budgetedSteps: budgeted.length, pastRuns: { count: past.length, medianSeconds: median, worstSeconds: worst, workflowIds: past.map((p) => p.workflowId) }, estimateSeconds: estimate, exceedsTarget: exceeds, method },
    exitCode: checks.some((c) => !c.ok) || exceeds ? 1 : 0,
  };
}

export function formatDryRun(r: DryRunReport): string {
  const lines = [`DRY RUN (nothing started): ${r.summary}`, `workflow id ${r.workflowId}`, '', 'plan:'];
  r.steps.forEach((s, i) => {
    if (s.gate) lines.push(`   gate ${s.gate.id}: an approver decides${s.gate.twoPerson ? ' (two people)' : ''}; escalates after ${s.gate.escalateAfterSeconds ?? '?'}s, rejected after ${s.gate.timeoutSeconds ?? '?'}s`);
    const measured = s.measured ? `  measured median ${s.measured.medianSeconds.toFixed(1)}s, worst ${s.measured.worstSeconds.toFixed(1)}s (${s.measured.runs} runs)` : '';
    lines.push(`  ${String(i + 1).padStart(2)}. ${s.id}${s.irreversible ? '  [POINT OF NO RETURN]' : ''}${s.budgetSeconds !== undefined ? `  budget ${s.budgetSeconds}s` : ''}${measured}${s.undo ? `  undo: ${s.undo}` : ''}`);
  });
  lines.push('', 'preflight (read-only):');
  for (const c of r.preflight) lines.push(`  ${c.ok ? 'ok  ' : 'FAIL'} ${c.check}: ${c.detail}`);
  if (r.preflight.length === 0) lines.push('  (no read-only checks for this runbook)');
  const { rto } = r;
  lines.push(
    '',
    `RTO target ${rto.targetSeconds}s; estimate ${rto.estimateSeconds !== undefined ? `${rto.estimateSeconds.toFixed(1)}s` : 'unknown'} (${rto.method})` +
      (rto.pastRuns.count > 0 ? `; past runs: median ${rto.pastRuns.medianSeconds?.toFixed(1)}s, worst ${rto.pastRuns.worstSeconds?.toFixed(1)}s of ${rto.pastRuns.count}` : '') +
      (rto.fromBudgetsSeconds !== undefined ? `; budgets sum ${rto.fromBudgetsSeconds}s` : `; ${rto.budgetedSteps}/${r.steps.length} steps budgeted`),
  );
  if (rto.exceedsTarget) lines.push(`ESTIMATE EXCEEDS THE RTO TARGET by ${((rto.estimateSeconds ?? 0) - rto.targetSeconds).toFixed(1)}s`);
  lines.push(r.exitCode === 0 ? 'ready: run the same command without --dry-run' : 'NOT ready: fix the failed checks or the budgets first');
  return lines.join('\n');
}
