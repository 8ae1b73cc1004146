/**
 * Every runbook's definition, in the order the CLI lists them. Sandbox-safe:
 * a registry line per runbook, read by the CLI's registry (cli/runbooks/index.ts,
 * which must cover each name here) and by the check that the workflow bundle
 * exports every workflow type with the definition's input and result.
 */
import { backupRestoreTestRunbook, databaseBackupRunbook } from './backup';
import { dbPromotionRunbook } from './db-promotion';
import { failbackRunbook } from './failback';
import { regionalEvacuationRunbook } from './regional-evacuation';

export const RUNBOOK_DEFINITIONS = [dbPromotionRunbook, regionalEvacuationRunbook, failbackRunbook, databaseBackupRunbook, backupRestoreTestRunbook] as const;

export type RegisteredRunbook = (typeof RUNBOOK_DEFINITIONS)[number];
export type RunbookName = RegisteredRunbook['name'];
/** The definition of the runbook named `N`. */
export type DefinitionOf<N extends RunbookName> = Extract<RegisteredRunbook, { name: N }>;

/** The workflow types of the registered runbooks: the only parents whose pre-approvals a child honours. */
export const RUNBOOK_WORKFLOW_TYPES: readonly string[] = RUNBOOK_DEFINITIONS.map((d) => d.workflowType);
