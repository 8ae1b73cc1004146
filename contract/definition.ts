/**
 * What every runbook declares once, sandbox-safe (no Node built-ins, no
 * clients): its name, its workflow type, its plan with the typed step and gate
 * ids, the workflow id built from the business key and the targets a run
 * holds. Workflows, workers and the CLI read the same object; its input and
 * result types travel with it, so a start is typed from the definition.
 */
import type { TargetRef } from './holds';

/** A runbook's steps and gates in order, declared `as const` so their ids are types. */
export interface RunbookPlan {
  readonly steps: readonly { readonly id: string; readonly title: string; readonly irreversible?: boolean; readonly undo?: string }[];
  readonly gates: readonly { readonly id: string; readonly title: string; readonly before?: string }[];
}

export interface RunbookDefinition<I, R, N extends string = string, W extends string = string, P extends RunbookPlan = RunbookPlan> {
  /** The runbook's name on the command line, in search attributes and in runbooks/<name>.md. */
  readonly name: N;
  /** The workflow function's name, as exported by workflows/index.ts. */
  readonly workflowType: W;
  readonly plan: P;
  /** The workflow id from the business key: two runs on one target cannot race. */
  readonly workflowId: (...key: string[]) => string;
  /** What a run may change, claimed before its first step (none for a runbook that changes no topology). */
  holds(input: I): TargetRef[];
  /** Types only, never set: the workflow's input and result. */
  readonly types?: { readonly input: I; readonly result: R };
}

/** Any definition, for lists of them (`holds` is a method, so a definition of any input fits). */
export type AnyRunbookDefinition = RunbookDefinition<unknown, unknown>;

type TypesOf<D> = D extends { readonly types?: infer T } ? NonNullable<T> : never;
export type InputOf<D> = TypesOf<D> extends { readonly input: infer I } ? I : never;
export type ResultOf<D> = TypesOf<D> extends { readonly result: infer R } ? R : never;

/** The signature the workflow of a definition has: one input object, one result. */
export type WorkflowOf<D> = (input: InputOf<D>) => Promise<ResultOf<D>>;

/**
 * Declares a definition with its input and result types given and the rest inferred from the object
 * (`defineRunbook<In, Out>()({ ... })`: TypeScript cannot infer some type arguments and take others).
 */
export function defineRunbook<I, R>() {
  return <const N extends string, const W extends string, const P extends RunbookPlan>(definition: RunbookDefinition<I, R, N, W, P>): RunbookDefinition<I, R, N, W, P> => definition;
}
