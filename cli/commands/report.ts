/** `lifeboat report <workflowId>`: the record of a run for the post-mortem and the auditor. */
import { Option, type Command } from 'commander';
import { ROLE_SETS } from '../../contract/runbook';
import { examples } from '../help';
import { writeReport, type ReportFormat } from '../report';
import { requirePerson } from '../start';
import { commandConfig, connect } from './context';
import { asOption } from './options';

export function register(program: Command): void {
  examples(
    program
      .command('report')
      .description('the record of a run for the post-mortem and the auditor (timeline, RTO/RPO, decisions, breaches, evidence head; an SVG Gantt in HTML)')
      .argument('<workflowId>')
      .addOption(new Option('--format <format>', 'output format').choices(['md', 'html', 'json']).default('md'))
      .option('--out <file>', 'where to write it (default: <lab state>/reports/<id>.<format>)')
      .option('--no-store', 'only the local file: no copy under reports/ in the evidence bucket (for a read-only S3 key)')
      .addOption(asOption(ROLE_SETS.read)),
    [
      'lifeboat report regional-evacuation:east --as dave',
      'lifeboat report regional-evacuation:east --format html --out east.html --as dave',
      'lifeboat report db-promotion:orders --no-store --as dave',
    ],
  ).action(async (workflowId: string, o: { format: ReportFormat; out?: string; store: boolean; as?: string }, cmd: Command) => {
    const loaded = commandConfig(cmd);
    requirePerson(loaded, o.as, ROLE_SETS.read, 'read reports');
    const written = await writeReport(await connect(loaded), loaded, workflowId, o.format, o.out, { store: o.store });
    console.log(`report written to ${written.file}${written.stored ? ` and ${written.stored}` : ''}`);
  });
}
