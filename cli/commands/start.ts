/** `lifeboat start <runbook> [key=value...]`: start a runbook, or (--dry-run) only check it and estimate its RTO. */
import type { Command } from 'commander';
import { ROLE_SETS } from '../../contract/runbook';
import { dryRun, formatDryRun } from '../dry-run';
import { examples } from '../help';
import { startRun } from '../runs';
import { RUNBOOKS } from '../runbooks/index';
import type { StartRequest } from '../start';
import { commandConfig, connect, type CliContext } from './context';
import { asOption, keyFileOf, keyOption } from './options';

type StartOptions = Omit<StartRequest, 'runbook' | 'params' | 'keyFile'> & { dryRun: boolean; key?: string };

export function register(program: Command, { exit }: CliContext): void {
  examples(
    program
      .command('start')
      .description('start a runbook')
      .argument('<runbook>', RUNBOOKS.join(', '))
      .argument('[params...]', 'key=value, e.g. database=orders mode=planned')
      .addOption(asOption(ROLE_SETS.start))
      .addOption(keyOption('; required when approvals.signatures is required: the worker refuses an unsigned start', 'the start'))
      .option('--id <workflowId>', 'workflow id (default: <runbook>:<target>)')
      .option('--detected-at <iso>', 'when the incident was detected; the RTO clock starts here (default: now)')
      .option('--incident <id>', 'incident id, searchable as LifeboatIncident')
      .option('--drill', 'mark the run as a drill (LifeboatDrill)', false)
      .option('--force', "start within the runbook's cooldown (admins only)", false)
      .option('--dry-run', 'only the read-only preflight checks, the plan and the estimated RTO; exit 1 when a check fails or the estimate exceeds the target', false),
    [
      'lifeboat start db-promotion database=orders mode=planned --as alice --dry-run',
      'lifeboat start regional-evacuation region=east mode=unplanned --detected-at 2026-11-23T03:12:00Z --incident INC-7 --as alice',
      'lifeboat start failback region=east --as alice',
      'lifeboat start db-promotion database=orders --as alice --key ~/.lifeboat/alice.pem',
      'lifeboat start backup-restore-test database=orders --as alice --drill',
    ],
  ).action(async (runbook: string, params: string[], { dryRun: dry, key, ...o }: StartOptions, cmd: Command) => {
    const loaded = commandConfig(cmd);
    const client = await connect(loaded);
    const request: StartRequest = { runbook, params, ...o, keyFile: keyFileOf({ key }) };
    if (dry) {
      const report = await dryRun(client, loaded, request);
      console.log(formatDryRun(report));
      exit.code = report.exitCode;
      return;
    }
    const started = await startRun(client, loaded, request);
    console.log(`started ${started.workflowId} (run ${started.runId})`);
    console.log(`status:  lifeboat status ${started.workflowId}`);
    console.log(`web UI:  ${started.url}`);
  });
}
