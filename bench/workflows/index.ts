/**
 * Bench-only workflows (the bench worker's workflowsPath), written on the real
 * RunbookRun kernel, plus the real `dbPromotion` for the fan-out's child runs.
 * Never registered by a production worker.
 */
import { proxyActivities } from '@temporalio/workflow';
import type { BenchOnlyActivities } from '../activities';
import type { DatabaseEvacuationOutcome } from '../../contract/regional-evacuation';
import type { DbPromotionPolicy, PromotionMode } from '../../contract/db-promotion';
import type { RunContext } from '../../contract/runbook';
import { RunbookRun, type Plan } from '../../workflows/kernel/runbook-run';
import { parentApproval, promoteInParallel } from '../../workflows/procedures';

// The real promotion and the kernel's own workflows it starts (its target hold, return watch, evidence keeper, pager).
export { dbPromotion, evidenceKeeper, pager, returnWatch, targetHold } from '../../workflows';

const bench = proxyActivities<BenchOnlyActivities>({ startToCloseTimeout: '30 seconds' });

const RTO = { budgetSeconds: 3600, onBreach: 'continue' } as const;

function plan(steps: number, gate?: string): Plan {
  return {
    steps: Array.from({ length: steps }, (_, i) => ({ id: `s${i + 1}`, title: `bench step ${i + 1}` })),
    gates: gate ? [{ id: gate, title: `bench gate ${gate}` }] : [],
  };
}

export interface BenchStepsInput {
  run: RunContext;
  steps: number;
  sleepMs: number;
}

/** Benchmark 1 (and 5, with drill=true and short steps): N kernel steps, each one activity that sleeps. */
export async function benchSteps(input: BenchStepsInput): Promise<{ steps: number }> {
  const run = new RunbookRun({
    runbook: 'bench-steps',
    target: `${input.steps} steps`,
    plan: plan(input.steps),
    context: input.run,
    rto: RTO,
    rpoTargetSeconds: 60,
    stepBudgets: {},
    gates: {},
  });
  return run.execute(async () => {
    for (let i = 1; i <= input.steps; i++) {
      await run.step(`s${i}`, () => bench.benchSleep.executeWithOptions({ startToCloseTimeout: '30 seconds', summary: `sleep ${input.sleepMs} ms` }, [input.sleepMs]));
    }
    return { steps: input.steps };
  });
}

/** Benchmark 1's Temporal-only baseline: the same N activities in a plain workflow, no kernel. */
export async function benchRawSteps(input: Pick<BenchStepsInput, 'steps' | 'sleepMs'>): Promise<{ steps: number }> {
  for (let i = 1; i <= input.steps; i++) {
    await bench.benchSleep.executeWithOptions({ startToCloseTimeout: '30 seconds', summary: `sleep ${input.sleepMs} ms` }, [input.sleepMs]);
  }
  return { steps: input.steps };
}

export interface BenchGateInput {
  run: RunContext;
}

/** Benchmark 3: a gate, then one step whose activity returns the time it started. */
export async function benchGate(input: BenchGateInput): Promise<{ activityStartedAt: number }> {
  const run = new RunbookRun({
    runbook: 'bench-gate',
    target: 'approval latency',
    plan: plan(1, 'approve'),
    context: input.run,
    rto: RTO,
    rpoTargetSeconds: 60,
    stepBudgets: {},
    gates: { approve: { escalateAfterSeconds: 3600, timeoutSeconds: 7200 } },
  });
  return run.execute(async () => {
    await run.gate('approve');
    const activityStartedAt = await run.step('s1', () => bench.benchMark());
    return { activityStartedAt };
  });
}

export interface BenchEvacuationInput {
  run: RunContext;
  databases: string[];
  mode: PromotionMode;
  policy: DbPromotionPolicy;
}

/**
 * Benchmark 2: evacuation-like fan-out. A gate (the bench approves it as soon as it
 * opens), then one kernel step that promotes every database as a child `dbPromotion`
 * run through the real `promoteInParallel` (the regional evacuation's procedure),
 * pre-approved by that gate, so no child waits at its own: each child checks the
 * approval with this run at admission, as an evacuation's children do.
 */
export async function benchEvacuation(input: BenchEvacuationInput): Promise<{ outcomes: DatabaseEvacuationOutcome[] }> {
  const run = new RunbookRun({
    runbook: 'bench-evacuation',
    target: `${input.databases.length} databases`,
    plan: { steps: [{ id: 'promote-databases', title: 'Promote every database (child runs)' }], gates: [{ id: 'promote-databases', title: 'Approve the promotions' }] },
    context: input.run,
    rto: RTO,
    rpoTargetSeconds: 60,
    stepBudgets: {},
    gates: { 'promote-databases': { escalateAfterSeconds: 600, timeoutSeconds: 600 } },
    input,
  });
  // An object, not the bare array: the kernel may add fields (e.g. evidence) to a run's result.
  return run.execute(async () => {
    const approval = await run.gate('promote-databases');
    const outcomes = await run.step('promote-databases', () =>
      promoteInParallel(
        run,
        run.context,
        parentApproval(approval),
        input.databases.map((database) => ({ database, input: { mode: input.mode, policy: input.policy }, summary: `bench: promote ${database}` })),
      ),
    );
    return { outcomes };
  });
}
