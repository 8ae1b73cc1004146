/**
 * A type-level test, checked by `tsc -p tsconfig.test.json` and never run: a
 * RunbookRun is typed by its plan, so a step or gate the plan does not name,
 * a budget for no step and a gate without a policy do not compile. Each
 * `@ts-expect-error` fails the type-check when the line under it compiles.
 */
import { dbPromotionPlan } from '../../../contract/db-promotion';
import type { GatePolicy, RunContext } from '../../../contract/runbook';
import { RunbookRun, type RunbookRunOptions } from '../../../workflows/kernel/runbook-run';

declare const context: RunContext;
declare const gate: GatePolicy;

type Promotion = typeof dbPromotionPlan;

const options = {
  runbook: 'db-promotion',
  target: 'orders',
  plan: dbPromotionPlan,
  context,
  rto: { budgetSeconds: 600, onBreach: 'continue' },
  rpoTargetSeconds: 5,
  stepBudgets: { promote: 60 },
  gates: { promote: gate },
} satisfies RunbookRunOptions<Promotion>;

export function stepsAndGates(run: RunbookRun<Promotion>): void {
  void run.step('fence-primary', async () => undefined);
  // @ts-expect-error 'fence-primray' is not a step of the plan
  void run.step('fence-primray', async () => undefined);
  run.skipped('fence-primary', 'the old primary was unreachable');
  // @ts-expect-error 'fence' is not a step of the plan
  run.skipped('fence', 'the old primary was unreachable');
  run.note('catch-up', 'replayed');
  // @ts-expect-error 'catchup' is not a step of the plan
  run.note('catchup', 'replayed');
  run.attach({ name: 'report', kind: 'report', title: 'a report', digest: '0', locations: [], summary: {}, step: 'verify-write' });
  // @ts-expect-error 'verify' is not a step of the plan
  run.attach({ name: 'report', kind: 'report', title: 'a report', digest: '0', locations: [], summary: {}, step: 'verify' });

  void run.gate('promote');
  // @ts-expect-error 'promotion' is not a gate of the plan
  void run.gate('promotion');
  // @ts-expect-error a step id is not a gate id
  void run.gate('verify-write');
}

/** Never called: a RunbookRun is built only inside a workflow. The plan types the run it builds. */
export function built(): void {
  const run = new RunbookRun(options);
  void run.gate('promote');
  // @ts-expect-error the run's type comes from its plan
  void run.gate('drain-traffic');

  new RunbookRun({
    ...options,
    // @ts-expect-error a budget for a step the plan does not name
    stepBudgets: { 'verify-writes': 30 },
  });
  new RunbookRun({
    ...options,
    // @ts-expect-error every gate of the plan needs a policy
    gates: {},
  });
  new RunbookRun({
    ...options,
    // @ts-expect-error a policy for a gate the plan does not name
    gates: { promote: gate, promot: gate },
  });
}
