/**
 * The CLI's registry: one line per runbook, pairing each definition of
 * contract/registry.ts with its CLI module. `start`, `--dry-run`, `docs`,
 * `--help` and completion read it; a definition without a module here does
 * not compile.
 */
import type { AnyRunbookDefinition } from '../../contract/definition';
import { RUNBOOK_DEFINITIONS, type DefinitionOf, type RunbookName } from '../../contract/registry';
import { backupRestoreTestCli } from './backup-restore-test';
import type { CliRunbook, PlannedStartOf } from './common';
import { databaseBackupCli } from './database-backup';
import { dbPromotionCli } from './db-promotion';
import { failbackCli } from './failback';
import { regionalEvacuationCli } from './regional-evacuation';

export const CLI_RUNBOOKS = {
  'db-promotion': dbPromotionCli,
  'regional-evacuation': regionalEvacuationCli,
  failback: failbackCli,
  'database-backup': databaseBackupCli,
  'backup-restore-test': backupRestoreTestCli,
} as const satisfies { readonly [N in RunbookName]: CliRunbook<DefinitionOf<N>> };

/** Every runbook's CLI module, in the registry's order. */
export const CLI_RUNBOOK_LIST: readonly CliRunbook[] = RUNBOOK_DEFINITIONS.map((d) => CLI_RUNBOOKS[d.name]);

/** The runbook names, as `start` takes them. */
export const RUNBOOKS: readonly RunbookName[] = RUNBOOK_DEFINITIONS.map((d) => d.name);

/** A start of one of the registered runbooks: each workflow type paired with its input type. */
export type PlannedStart = { [N in RunbookName]: PlannedStartOf<DefinitionOf<N>> }[RunbookName];

/** The definition whose workflow a planned start starts. */
export function definitionOf(plan: Pick<PlannedStartOf<AnyRunbookDefinition>, 'workflowType'>, runbooks: readonly CliRunbook[] = CLI_RUNBOOK_LIST): AnyRunbookDefinition | undefined {
  return runbooks.find((r) => r.definition.workflowType === plan.workflowType)?.definition;
}
