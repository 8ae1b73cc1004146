/** `lifeboat audit`: the redundancy audit from the config and the runs in Temporal. */
import type { Command } from 'commander';
import { ROLE_SETS } from '../../contract/runbook';
import { auditExitCode, FINDING_CODES, renderAuditTable, runAudit } from '../audit';
import { examples } from '../help';
import { requirePerson, UsageError } from '../start';
import { commandConfig, connect, type CliContext } from './context';
import { asOption, jsonOption } from './options';

export function register(program: Command, { exit }: CliContext): void {
  examples(
    program
      .command('audit')
      .description('redundancy audit from the config and the runs in Temporal: failover, drills, RTO, backups, restore tests')
      .addOption(jsonOption())
      .option('--as-of <time>', 'audit as of this ISO 8601 time (default: now)')
      .addOption(asOption(ROLE_SETS.read))
      .addHelpText('after', `\nFindings: ${FINDING_CODES.join(', ')}.\nExit code 1 when a tier-1 finding exists.`),
    ['lifeboat audit --as dave', 'lifeboat audit --json --as-of 2026-12-31T23:59:59Z --as dave'],
  ).action(async (o: { json?: boolean; asOf?: string; as?: string }, cmd: Command) => {
    const loaded = commandConfig(cmd);
    requirePerson(loaded, o.as, ROLE_SETS.read, 'run the audit');
    const asOf = o.asOf === undefined ? undefined : new Date(o.asOf);
    if (asOf && Number.isNaN(asOf.getTime())) throw new UsageError(`--as-of must be an ISO 8601 time such as 2026-12-31T23:59:59Z, not '${o.asOf}'`);
    const report = await runAudit(await connect(loaded), loaded, { asOf });
    console.log(o.json ? JSON.stringify(report, null, 2) : renderAuditTable(report));
    exit.code = auditExitCode(report);
  });
}
