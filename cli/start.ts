/**
 * Turns `lifeboat start <runbook> key=value...` into a validated workflow
 * start: who may start, which target, which policy. Each runbook's own rules
 * are in its CLI module (cli/runbooks/<runbook>.ts), found through the
 * registry (cli/runbooks/index.ts). Pure, so it is tested without Temporal.
 */
import type { LoadedConfig } from '../config/load';
import type { AnyRunbookDefinition } from '../contract/definition';
import type { TargetRef } from '../contract/holds';
import type { CliRunbook, PlannedStartOf, StartRequest } from './runbooks/common';
import { UsageError } from './runbooks/common';
import { CLI_RUNBOOK_LIST, CLI_RUNBOOKS, definitionOf, type PlannedStart } from './runbooks/index';

export { parseParams, promotionPolicy, requirePerson, UsageError, type PlannedStartOf, type StartRequest } from './runbooks/common';
export { RUNBOOKS, type PlannedStart } from './runbooks/index';

/** The targets the run will hold (the same functions the workflows use), so `start` can refuse early with the holder named. */
export function plannedHolds(plan: PlannedStartOf<AnyRunbookDefinition>, runbooks: readonly CliRunbook[] = CLI_RUNBOOK_LIST): TargetRef[] {
  return definitionOf(plan, runbooks)?.holds(plan.input) ?? [];
}

/** The run's memo: which runbook and targets, so audits find the runs of a database without reading results. */
export function runMemo(plan: Pick<PlannedStartOf<AnyRunbookDefinition>, 'targets'>, runbook: string): Record<string, unknown> {
  return { lifeboat: { runbook, targets: plan.targets } };
}

/** The runbook's CLI module, or a UsageError naming the known ones. */
export function cliRunbookNamed(name: string, runbooks: readonly CliRunbook[] = CLI_RUNBOOK_LIST): CliRunbook {
  const found = runbooks.find((r) => r.definition.name === name);
  if (!found) throw new UsageError(`unknown runbook '${name}': known runbooks are ${runbooks.map((r) => r.definition.name).join(', ')}`);
  return found;
}

/** Plans a start of a registered runbook (or, given `runbooks`, of one of those: a test's registry). */
export function planStart(loaded: LoadedConfig, request: StartRequest): PlannedStart;
export function planStart(loaded: LoadedConfig, request: StartRequest, runbooks: readonly CliRunbook[]): PlannedStartOf<AnyRunbookDefinition>;
export function planStart(loaded: LoadedConfig, request: StartRequest, runbooks: readonly CliRunbook[] = CLI_RUNBOOK_LIST): PlannedStartOf<AnyRunbookDefinition> {
  return cliRunbookNamed(request.runbook, runbooks).plan(loaded, request);
}

/** A db-promotion start (the bench and the tests plan one directly). */
export function planDbPromotion(loaded: LoadedConfig, request: StartRequest): PlannedStartOf<(typeof CLI_RUNBOOKS)['db-promotion']['definition']> {
  return CLI_RUNBOOKS['db-promotion'].plan(loaded, request);
}
