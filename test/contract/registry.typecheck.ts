/**
 * A type-level test, checked by `tsc -p tsconfig.test.json` and never run:
 * every registered definition names a workflow the bundle exports, with the
 * definition's input and result, so the CLI can start it typed from the
 * definition alone (cli/runs.ts `startPlanned`) without importing workflow code.
 */
import type { WorkflowOf } from '../../contract/definition';
import type { DefinitionOf, RunbookName } from '../../contract/registry';
import type * as workflows from '../../workflows';

type Bundle = typeof workflows;

/** Each registered runbook's workflow, looked up by the definition's workflow type. */
export type RegisteredWorkflows = { [N in RunbookName]: Bundle[DefinitionOf<N>['workflowType']] };

/** The bundle's workflow is exactly the definition's signature, both ways. */
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;

/** The names of the runbooks whose workflow does not match their definition (never, when all do). */
type Mismatched = { [N in RunbookName]: Same<RegisteredWorkflows[N], WorkflowOf<DefinitionOf<N>>> extends true ? never : N }[RunbookName];

/** Fails to compile, naming the runbook, when one registered workflow does not match its definition. */
export const everyWorkflowMatches: [Mismatched] extends [never] ? true : Mismatched = true;
