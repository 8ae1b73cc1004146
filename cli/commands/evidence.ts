/** `lifeboat evidence verify|export`: a run's tamper-evident evidence chain, checked or bundled for an auditor. */
import type { Command } from 'commander';
import { ROLE_SETS } from '../../contract/runbook';
import { exportRunEvidence, formatEvidenceReport, verifyBundle, verifyRunEvidence } from '../evidence';
import { examples } from '../help';
import { requirePerson, UsageError } from '../start';
import { commandConfig, connect, type CliContext } from './context';
import { asOption, jsonOption } from './options';

export function register(program: Command, { exit }: CliContext): void {
  const evidence = examples(program.command('evidence').description("a run's tamper-evident evidence chain"), ['lifeboat evidence verify db-promotion:orders --as dave']);
  examples(
    evidence
      .command('verify')
      .description("recompute the chain from its stored log and check it against the run's result and the head anchored in the Object Lock ledger (evidence.ledger, its first version); exit 1 where it breaks or the ledger holds another head. Records or an anchor still held by the run's evidence keeper (the bucket was down) are reported pending, exit 0")
      .argument('[workflowId]')
      .option('--bundle <file>', 'verify an exported bundle offline instead (no Temporal, no bucket)')
      .addOption(jsonOption())
      .addOption(asOption(ROLE_SETS.read)),
    ['lifeboat evidence verify db-promotion:orders --as dave', 'lifeboat evidence verify --bundle orders-evidence.json'],
  ).action(async (workflowId: string | undefined, o: { bundle?: string; json?: boolean; as?: string }, cmd: Command) => {
    let report;
    if (o.bundle) report = verifyBundle(o.bundle);
    else {
      if (!workflowId) throw new UsageError('give a workflow id, or --bundle <file>');
      const loaded = commandConfig(cmd);
      requirePerson(loaded, o.as, ROLE_SETS.read, 'verify evidence');
      report = await verifyRunEvidence(await connect(loaded), loaded, workflowId);
    }
    console.log(o.json ? JSON.stringify(report, null, 2) : formatEvidenceReport(report));
    exit.code = report.ok ? 0 : 1;
  });
  examples(
    evidence
      .command('export')
      .description('write a bundle (chain, history, final status, result) an auditor verifies offline with `evidence verify --bundle`')
      .argument('<workflowId>')
      .requiredOption('--out <file>', 'where to write the bundle (JSON)')
      .addOption(asOption(ROLE_SETS.read)),
    ['lifeboat evidence export db-promotion:orders --out orders-evidence.json --as dave'],
  ).action(async (workflowId: string, o: { out: string; as?: string }, cmd: Command) => {
    const loaded = commandConfig(cmd);
    requirePerson(loaded, o.as, ROLE_SETS.read, 'export evidence');
    const bundle = await exportRunEvidence(await connect(loaded), loaded, workflowId, o.out);
    console.log(`wrote ${o.out}: ${bundle.chain.length} evidence records, ${(bundle.history as { events?: unknown[] }).events?.length ?? 0} history events`);
  });
}
