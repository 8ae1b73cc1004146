/**
 * The kernel tests' workflow bundle: a small runbook written on the real
 * kernel (RunbookRun), whose steps are activities the test fakes, and the
 * real runbooks, run with fake activities too.
 */
import { ParentClosePolicy, proxyActivities, startChild, workflowInfo, type ActivityOptions } from '@temporalio/workflow';
import type { PreApproval } from '../../../contract/governance';
import type { GatePolicy, RtoPolicy, RunContext } from '../../../contract/runbook';
import { RunbookRun } from '../../../workflows/kernel/runbook-run';
import { parentApproval } from '../../../workflows/procedures';

export * from '../../../workflows';

export const REHEARSAL_RUNBOOK = 'rehearsal';

/** Two undoable changes, a gate, a point of no return and a check: the shape of a promotion. */
export const rehearsalPlan = {
  steps: [
    { id: 'freeze', title: 'Freeze writes' },
    { id: 'drain', title: 'Drain traffic' },
    { id: 'promote', title: 'Promote (point of no return)', irreversible: true },
    { id: 'verify', title: 'Verify the service' },
  ],
  gates: [{ id: 'promote', title: 'Approve the promotion', before: 'promote' }],
} as const;

export type RehearsalStepId = (typeof rehearsalPlan.steps)[number]['id'];

/** What the rehearsal's steps do, answered by the test's fakes. */
export interface RehearsalActivities {
  /** The change a step makes. */
  change(input: { step: RehearsalStepId }): Promise<{ step: RehearsalStepId }>;
  /** Undoes a step's change; idempotent. */
  undo(input: { step: RehearsalStepId }): Promise<void>;
}

export interface RehearsalInput {
  run: RunContext;
  rto: RtoPolicy;
  gate: GatePolicy;
  stepBudgets?: Partial<Record<RehearsalStepId, number>>;
  /** Attempts of each undo before the run asks a person. */
  compensationAttempts: number;
  /** A parent run's decision on its own gate (checked with that parent at admission). */
  preApproved?: PreApproval;
}

/** A change fails at its first error (the test says which); it heartbeats, so a cancel reaches it. */
const changeOptions = {
  startToCloseTimeout: '1 minute',
  heartbeatTimeout: '2 seconds',
  retry: { maximumAttempts: 1 },
} as const satisfies ActivityOptions;

const rehearse = proxyActivities<RehearsalActivities>(changeOptions);

/** Freeze and drain (each with its undo), the gate, the promotion, the check. */
export async function rehearsal(input: RehearsalInput): Promise<{ changed: RehearsalStepId[] }> {
  const run = new RunbookRun({
    runbook: REHEARSAL_RUNBOOK,
    target: 'the lab',
    plan: rehearsalPlan,
    context: input.run,
    rto: input.rto,
    rpoTargetSeconds: 60,
    stepBudgets: input.stepBudgets ?? {},
    gates: { promote: input.gate },
    input,
    preApproved: input.preApproved,
  });
  const undoOptions = {
    startToCloseTimeout: '30 seconds',
    retry: { initialInterval: '100 milliseconds', maximumAttempts: input.compensationAttempts },
  } as const satisfies ActivityOptions;
  const change = (step: RehearsalStepId) => () => rehearse.change.executeWithOptions({ ...changeOptions, summary: `change: ${step}` }, [{ step }]);
  const undo = (step: RehearsalStepId) => () => rehearse.undo.executeWithOptions({ ...undoOptions, summary: `undo: ${step}` }, [{ step }]);

  return run.execute(async () => {
    const changed: RehearsalStepId[] = [];
    changed.push((await run.step('freeze', change('freeze'), { compensate: () => undo('freeze') })).step);
    // The drain can half-apply: its undo is registered before it runs.
    changed.push((await run.step('drain', change('drain'), { undoIfInterrupted: undo('drain'), compensate: () => undo('drain') })).step);
    await run.gate('promote', { preApproved: input.preApproved });
    changed.push((await run.step('promote', change('promote'))).step);
    changed.push((await run.step('verify', change('verify'))).step);
    return { changed };
  });
}

export const rehearsalParentPlan = {
  steps: [{ id: 'child', title: 'Rehearse as a child run, pre-approved by this run' }],
  gates: [{ id: 'go', title: 'Approve the child run' }],
} as const;

export interface RehearsalParentInput {
  run: RunContext;
  gate: GatePolicy;
  child: Omit<RehearsalInput, 'run' | 'preApproved'>;
}

/** A parent on the kernel: its gate, then a child rehearsal told of that gate's decision (as an evacuation tells its promotions). */
export async function rehearsalParent(input: RehearsalParentInput): Promise<{ child: { changed: RehearsalStepId[] } }> {
  const run = new RunbookRun({
    runbook: 'rehearsal-parent',
    target: 'the lab',
    plan: rehearsalParentPlan,
    context: input.run,
    rto: { budgetSeconds: 3600, onBreach: 'continue' },
    rpoTargetSeconds: 60,
    stepBudgets: {},
    gates: { go: input.gate },
    input,
  });
  return run.execute(async () => {
    const approval = await run.gate('go');
    const child = await run.step('child', async () => {
      const workflowId = `${workflowInfo().workflowId}-child`;
      // Abandoned like an evacuation's promotions: the child outlives its parent.
      const handle = await startChild(rehearsal, { workflowId, args: [{ ...input.child, run: run.context, preApproved: parentApproval(approval) }], parentClosePolicy: ParentClosePolicy.ABANDON });
      // A parent lists the children it waits on: a child checks its pre-approval against that list.
      run.trackChild({ workflowId, runbook: REHEARSAL_RUNBOOK, target: 'the lab', state: 'running' });
      const result = await handle.result();
      run.trackChild({ workflowId, runbook: REHEARSAL_RUNBOOK, target: 'the lab', state: 'completed' });
      return result;
    });
    return { child };
  });
}
