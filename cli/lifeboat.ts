/**
 * `lifeboat`: the incident commander's and approver's command line.
 * Exit codes: 0 done, 1 refused or failed (the message says why), 2 usage.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { Command, CommanderError, Option } from 'commander';
import { ConfigError, loadConfig, nodeRegions, type LoadedConfig } from '../config/load';
import { Lab, LAB_ENVIRONMENT, type LabStatus } from '../lab/lab';
import { hostTaskQueue } from '../contract/queues';
import { CommandError, GiveUp } from '../lib/processes';
import { connectClient, connectWorker, dataConverter, temporalTarget, TemporalUnreachableError } from '../lib/temporal';
import { buildActivityDependencies } from '../workers/dependencies';
import { createLifeboatWorker, type WorkflowSource } from '../workers/worker';
import { formatStatus } from './format';
import { cancelRun, decideGate, resolveRun, RunRefusedError, runStatus, startRun } from './runs';
import { requirePerson, UsageError } from './start';
import { ROLE_SETS } from '../contract/runbook';
import { runDemo } from './demo';
import { syncRunbookDocs } from './docs';
import { formatRuns, listRuns } from './runs-list';
import { dryRun, formatDryRun } from './dry-run';
import { watchRun } from './watch';
import { addExamples, bashCompletion, zshCompletion } from './help';
import { writeReport, type ReportFormat } from './report';
import { exportRunEvidence, formatEvidenceReport, verifyBundle, verifyRunEvidence } from './evidence';
import { generateApprovalKey } from '../lib/approval-keys';
import { auditExitCode, renderAuditTable, runAudit } from './audit';
import { applySchedules, changeSchedule, formatSchedules, listSchedules } from './schedules';
import { AesGcmCodec, loadKeyRing } from '../lib/codec';
import { createCodecServer } from '../lib/codec-server';

const PROJECT_ROOT = findProjectRoot();

function findProjectRoot(): string {
  // Compiled: dist/cli/lifeboat.js; from source: cli/lifeboat.ts.
  const up = path.resolve(__dirname, '..');
  return path.basename(up) === 'dist' ? path.dirname(up) : up;
}

/** --config, else LIFEBOAT_CONFIG, else ./runbooks/lab.yaml, else the project's runbooks/lab.yaml. */
export function configPath(explicit?: string): string {
  if (explicit) return explicit;
  if (process.env.LIFEBOAT_CONFIG) return process.env.LIFEBOAT_CONFIG;
  const local = path.resolve('runbooks/lab.yaml');
  return existsSync(local) ? local : path.join(PROJECT_ROOT, 'runbooks', 'lab.yaml');
}

const say = (line: string) => process.stderr.write(`${line}\n`);

function config(cmd: Command): LoadedConfig {
  const opts = cmd.optsWithGlobals<{ config?: string }>();
  return loadConfig(configPath(opts.config));
}

function printLab(status: LabStatus): void {
  console.log(`Temporal ${status.temporal.address} (${status.temporal.running ? 'running' : 'not running'}), UI ${status.temporal.uiUrl}`);
  const { s3, scratch } = status.backups ?? {};
  if (s3) console.log(`S3 (versitygw) ${s3.endpoint} (${s3.reachable ? 'running' : 'not running'}): ${s3.buckets.join(', ')}`);
  if (scratch) console.log(`restore-test scratch server ${scratch.host}:${scratch.port} (${scratch.reachable ? 'running' : 'not running'})`);
  for (const [name, db] of Object.entries(status.databases)) {
    const node = (n: NonNullable<LabStatus['databases'][string]['primary']>) =>
      `${n.region} ${n.host}:${n.port}${n.reachable ? (n.inRecovery ? ' (in recovery)' : n.readOnly ? ' (read-only)' : '') : ' (down)'}`;
    console.log(`${name}: primary ${db.primary ? node(db.primary) : '-'}; standby ${db.standby ? node(db.standby) : '-'}${db.others.length ? `; other ${db.others.map(node).join(', ')}` : ''}`);
  }
  console.log(`state: ${status.stateDir}`);
}

/** `exit.code`: a command that succeeded but must report a non-zero exit (the audit with a tier-1 finding). */
export function buildProgram(exit: { code: number } = { code: 0 }): Command {
  const program = new Command('lifeboat')
    .description('Disaster-recovery runbooks as durable Temporal workflows')
    .option('-c, --config <file>', 'runbook config (default: runbooks/lab.yaml)')
    .showHelpAfterError()
    .exitOverride();

  const lab = program.command('lab').description('the local two-region lab (Temporal dev server, PostgreSQL primary and standby per database)');
  lab.command('up').description('install nothing, start everything: idempotent').action(async (_o, cmd: Command) => {
    printLab(await new Lab(config(cmd)).up({ temporal: true, log: say }));
  });
  lab.command('down').description('stop everything the lab started, by pid (data is kept)').action(async (_o, cmd: Command) => {
    await new Lab(config(cmd)).down(say);
  });
  lab.command('reset').description('back to the initial topology with fresh data, so a drill can be repeated').action(async (_o, cmd: Command) => {
    printLab(await new Lab(config(cmd)).reset({ log: say }));
  });
  lab.command('status').description('endpoints, read live from the servers').option('--json', 'print JSON').action(async (o: { json?: boolean }, cmd: Command) => {
    const status = await new Lab(config(cmd)).status();
    if (o.json) console.log(JSON.stringify(status, null, 2));
    else printLab(status);
  });

  program
    .command('worker')
    .description('run a worker: the runbook workflows and provider activities, or (--region) the host-bound work of one region')
    .addOption(new Option('--workflows <source>', 'pre-built bundle or sources').choices(['bundle', 'source']))
    .option('--region <name>', "serve only the host-bound work (fence by shutdown, rewind, rebuild) of this region's database nodes, on its own task queue; run it on those nodes' host")
    .action(async (o: { workflows?: WorkflowSource; region?: string }, cmd: Command) => {
      const loaded = config(cmd);
      const target = temporalTarget(loaded);
      if (o.region !== undefined && !nodeRegions(loaded).includes(o.region)) {
        throw new UsageError(`--region ${o.region}: no database node of ${loaded.file} is in that region (regions: ${nodeRegions(loaded).join(', ')})`);
      }
      const connection = await connectWorker(target);
      // A lab's own stand-in credentials (never in a production config) fill in what the environment leaves unset.
      const env = loaded.isLab ? { ...LAB_ENVIRONMENT, ...process.env } : process.env;
      const worker = await createLifeboatWorker({
        connection,
        namespace: target.namespace,
        taskQueue: target.taskQueue,
        region: o.region,
        dependencies: buildActivityDependencies(loaded, env),
        workflows: o.workflows,
        dataConverter: dataConverter(target),
      });
      say(`worker polling task queue '${o.region ? hostTaskQueue(target.taskQueue, o.region) : target.taskQueue}' at ${target.address} (namespace ${target.namespace})`);
      await worker.run();
      await connection.close();
    });

  program
    .command('start')
    .description('start a runbook')
    .argument('<runbook>', 'db-promotion, regional-evacuation, failback, database-backup or backup-restore-test')
    .argument('[params...]', 'key=value, e.g. database=orders mode=planned')
    .option('--as <user>', 'who you are (default: LIFEBOAT_USER)')
    .option('--id <workflowId>', 'workflow id (default: <runbook>:<target>)')
    .option('--detected-at <iso>', 'when the incident was detected; the RTO clock starts here (default: now)')
    .option('--incident <id>', 'incident id, searchable as LifeboatIncident')
    .option('--drill', 'mark the run as a drill (LifeboatDrill)', false)
    .option('--force', 'start within the runbook\'s cooldown (admins only)', false)
    .option('--dry-run', 'only the read-only preflight checks, the plan and the estimated RTO; exit 1 when a check fails or the estimate exceeds the target', false)
    .action(async (runbook: string, params: string[], o: { as?: string; id?: string; detectedAt?: string; incident?: string; drill: boolean; force: boolean; dryRun: boolean }, cmd: Command) => {
      const loaded = config(cmd);
      const client = await connectClient(temporalTarget(loaded));
      if (o.dryRun) {
        const report = await dryRun(client, loaded, { runbook, params, as: o.as, id: o.id, detectedAt: o.detectedAt, incident: o.incident, drill: o.drill, force: o.force });
        console.log(formatDryRun(report));
        exit.code = report.exitCode;
        return;
      }
      const started = await startRun(client, loaded, { runbook, params, as: o.as, id: o.id, detectedAt: o.detectedAt, incident: o.incident, drill: o.drill, force: o.force });
      console.log(`started ${started.workflowId} (run ${started.runId})`);
      console.log(`status:  lifeboat status ${started.workflowId}`);
      console.log(`web UI:  ${started.url}`);
    });

  program
    .command('approve')
    .description('approve a gate that is waiting')
    .argument('<workflowId>')
    .requiredOption('--gate <gate>', 'gate id, e.g. promote')
    .option('--as <user>', 'who you are (default: LIFEBOAT_USER)')
    .option('--comment <text>')
    .option('--key <file>', 'sign the decision with your Ed25519 private key (LIFEBOAT_APPROVAL_KEY); required when approvals.signatures is required')
    .action(async (workflowId: string, o: { gate: string; as?: string; comment?: string; key?: string }, cmd: Command) => {
      const loaded = config(cmd);
      const keyFile = o.key ?? process.env.LIFEBOAT_APPROVAL_KEY;
      const result = await decideGate(await connectClient(temporalTarget(loaded)), loaded, { workflowId, gate: o.gate, as: o.as, comment: o.comment, decision: 'approve', keyFile });
      console.log(
        result.state === 'waiting'
          ? `gate ${result.gate}: your approval is recorded; it needs a second, different approver`
          : `gate ${result.gate} ${result.state} by ${result.decidedBy} at ${result.decidedAt}`,
      );
    });

  program
    .command('reject')
    .description('reject a gate that is waiting: the run rolls back')
    .argument('<workflowId>')
    .requiredOption('--gate <gate>', 'gate id, e.g. promote')
    .requiredOption('--reason <text>', 'why (recorded)')
    .option('--as <user>', 'who you are (default: LIFEBOAT_USER)')
    .option('--key <file>', 'sign the decision with your Ed25519 private key (LIFEBOAT_APPROVAL_KEY)')
    .action(async (workflowId: string, o: { gate: string; as?: string; reason: string; key?: string }, cmd: Command) => {
      const loaded = config(cmd);
      const keyFile = o.key ?? process.env.LIFEBOAT_APPROVAL_KEY;
      const result = await decideGate(await connectClient(temporalTarget(loaded)), loaded, { workflowId, gate: o.gate, as: o.as, comment: o.reason, decision: 'reject', keyFile });
      console.log(`gate ${result.gate} ${result.state} by ${result.decidedBy} at ${result.decidedAt}`);
    });

  program
    .command('status')
    .description("a run's steps, gates, RTO and RPO")
    .argument('<workflowId>')
    .option('--json', 'print the status query result as JSON')
    .option('--watch', 'follow the run until it ends: redraws on a terminal, one line per change otherwise; exit 0 only if it completed')
    .option('--as <user>', 'who you are (default: LIFEBOAT_USER); any configured role may read')
    .action(async (workflowId: string, o: { json?: boolean; watch?: boolean; as?: string }, cmd: Command) => {
      const loaded = config(cmd);
      requirePerson(loaded, o.as, ROLE_SETS.read, 'read run status');
      if (o.watch) {
        exit.code = await watchRun(await connectClient(temporalTarget(loaded)), workflowId, { tty: process.stdout.isTTY === true, write: (t) => process.stdout.write(t) });
        return;
      }
      const status = await runStatus(await connectClient(temporalTarget(loaded)), workflowId);
      console.log(o.json ? JSON.stringify(status, null, 2) : formatStatus(status));
    });

  program
    .command('runs')
    .description('recent runs from Temporal visibility (search attributes), newest first')
    .option('--runbook <name>', 'only this runbook')
    .option('--state <state>', 'running, completed, failed, canceled, terminated or timed-out')
    .option('--drill', 'only drills')
    .option('--since <age>', 'started within, e.g. 7d, 12h, 30m')
    .option('--json', 'print JSON')
    .option('--as <user>', 'who you are (default: LIFEBOAT_USER); any configured role may read')
    .action(async (o: { runbook?: string; state?: string; drill?: boolean; since?: string; json?: boolean; as?: string }, cmd: Command) => {
      const loaded = config(cmd);
      requirePerson(loaded, o.as, ROLE_SETS.read, 'list runs');
      const rows = await listRuns(await connectClient(temporalTarget(loaded)), { runbook: o.runbook, state: o.state, drill: o.drill, since: o.since });
      console.log(o.json ? JSON.stringify(rows, null, 2) : formatRuns(rows));
    });

  program
    .command('keys')
    .description("approvers' Ed25519 keys for signed gate decisions")
    .command('generate')
    .description('write a new private key to a file (keep it on your machine) and print the public key for people.<you>.publicKey')
    .requiredOption('--out <file>', 'where to write the private key (PEM, mode 0600; never overwritten)')
    .action((o: { out: string }) => {
      const publicKey = generateApprovalKey(o.out);
      console.log(`private key written to ${o.out} (mode 0600): keep it secret; approve with --key ${o.out}`);
      console.log(`add to your entry under people: in the config:\n  publicKey: ${publicKey}`);
    });

  program
    .command('report')
    .description('the record of a run for the post-mortem and the auditor (timeline, RTO/RPO, decisions, breaches, evidence head; an SVG Gantt in HTML)')
    .argument('<workflowId>')
    .addOption(new Option('--format <format>', 'output format').choices(['md', 'html', 'json']).default('md'))
    .option('--out <file>', 'where to write it (default: <lab state>/reports/<id>.<format>)')
    .option('--no-store', 'only the local file: no copy under reports/ in the evidence bucket (for a read-only S3 key)')
    .option('--as <user>', 'who you are (default: LIFEBOAT_USER); any configured role may read')
    .action(async (workflowId: string, o: { format: ReportFormat; out?: string; store: boolean; as?: string }, cmd: Command) => {
      const loaded = config(cmd);
      requirePerson(loaded, o.as, ROLE_SETS.read, 'read reports');
      const written = await writeReport(await connectClient(temporalTarget(loaded)), loaded, workflowId, o.format, o.out, { store: o.store });
      console.log(`report written to ${written.file}${written.stored ? ` and ${written.stored}` : ''}`);
    });

  const evidence = program.command('evidence').description("a run's tamper-evident evidence chain");
  evidence
    .command('verify')
    .description('recompute the chain from its stored log and check it against the run\'s result; exit 1 where it breaks')
    .argument('[workflowId]')
    .option('--bundle <file>', 'verify an exported bundle offline instead (no Temporal, no bucket)')
    .option('--json', 'print JSON')
    .option('--as <user>', 'who you are (default: LIFEBOAT_USER); any configured role may read')
    .action(async (workflowId: string | undefined, o: { bundle?: string; json?: boolean; as?: string }, cmd: Command) => {
      let report;
      if (o.bundle) report = verifyBundle(o.bundle);
      else {
        if (!workflowId) throw new UsageError('give a workflow id, or --bundle <file>');
        const loaded = config(cmd);
        requirePerson(loaded, o.as, ROLE_SETS.read, 'verify evidence');
        report = await verifyRunEvidence(await connectClient(temporalTarget(loaded)), loaded, workflowId);
      }
      console.log(o.json ? JSON.stringify(report, null, 2) : formatEvidenceReport(report));
      exit.code = report.ok ? 0 : 1;
    });
  evidence
    .command('export')
    .description('write a bundle (chain, history, final status, result) an auditor verifies offline with `evidence verify --bundle`')
    .argument('<workflowId>')
    .requiredOption('--out <file>', 'where to write the bundle (JSON)')
    .option('--as <user>', 'who you are (default: LIFEBOAT_USER); any configured role may read')
    .action(async (workflowId: string, o: { out: string; as?: string }, cmd: Command) => {
      const loaded = config(cmd);
      requirePerson(loaded, o.as, ROLE_SETS.read, 'export evidence');
      const bundle = await exportRunEvidence(await connectClient(temporalTarget(loaded)), loaded, workflowId, o.out);
      console.log(`wrote ${o.out}: ${bundle.chain.length} evidence records, ${(bundle.history as { events?: unknown[] }).events?.length ?? 0} history events`);
    });

  program
    .command('audit')
    .description('redundancy audit from the config and the runs in Temporal: failover, drills, RTO, backups, restore tests')
    .option('--json', 'print JSON')
    .option('--as-of <time>', 'audit as of this ISO 8601 time (default: now)')
    .option('--as <user>', 'who you are (default: LIFEBOAT_USER); any configured role may read')
    .addHelpText('after', '\nFindings: NO_FAILOVER, TEST_OVERDUE, RTO_EXCEEDED, BACKUP_OVERDUE, FAILED_TEST.\nExit code 1 when a tier-1 finding exists.')
    .action(async (o: { json?: boolean; asOf?: string; as?: string }, cmd: Command) => {
      const loaded = config(cmd);
      requirePerson(loaded, o.as, ROLE_SETS.read, 'run the audit');
      const asOf = o.asOf === undefined ? undefined : new Date(o.asOf);
      if (asOf && Number.isNaN(asOf.getTime())) throw new UsageError(`--as-of must be an ISO 8601 time such as 2026-12-31T23:59:59Z, not '${o.asOf}'`);
      const report = await runAudit(await connectClient(temporalTarget(loaded)), loaded, { asOf });
      console.log(o.json ? JSON.stringify(report, null, 2) : renderAuditTable(report));
      exit.code = auditExitCode(report);
    });

  const schedules = program.command('schedules').description('drills and backups on Temporal Schedules, from the config (admins change them)');
  schedules
    .command('apply')
    .description('create or update the schedules the config asks for; idempotent')
    .option('--prune', 'also delete Lifeboat schedules no longer in the config')
    .option('--as <user>', 'who you are (default: LIFEBOAT_USER); needs the admin role')
    .action(async (o: { prune?: boolean; as?: string }, cmd: Command) => {
      const loaded = config(cmd);
      const outcome = await applySchedules(await connectClient(temporalTarget(loaded)), loaded, { as: o.as, prune: o.prune === true });
      for (const [what, ids] of Object.entries(outcome)) for (const id of ids as string[]) console.log(`${what.padEnd(11)} ${id}`);
      if (outcome.notInConfig.length > 0) console.log('schedules not in the config are kept: `lifeboat schedules apply --prune` deletes them');
    });
  schedules
    .command('list')
    .description('the Lifeboat schedules: state, next and recent runs')
    .option('--json', 'print JSON')
    .option('--as <user>', 'who you are (default: LIFEBOAT_USER); any configured role may read')
    .action(async (o: { json?: boolean; as?: string }, cmd: Command) => {
      const loaded = config(cmd);
      const rows = await listSchedules(await connectClient(temporalTarget(loaded)), loaded, o.as);
      console.log(o.json ? JSON.stringify(rows, null, 2) : formatSchedules(rows));
    });
  for (const action of ['pause', 'unpause', 'trigger', 'delete'] as const) {
    schedules
      .command(action)
      .description({ pause: 'pause a schedule (say why with --note)', unpause: 'resume a paused schedule', trigger: 'start a run of a schedule now', delete: 'delete a schedule (apply recreates it while it is in the config)' }[action])
      .argument('<scheduleId>', 'e.g. lifeboat:backup-restore-test:orders')
      .option('--note <text>', 'why (recorded on the schedule)')
      .option('--as <user>', 'who you are (default: LIFEBOAT_USER); needs the admin role')
      .action(async (scheduleId: string, o: { note?: string; as?: string }, cmd: Command) => {
        const loaded = config(cmd);
        await changeSchedule(await connectClient(temporalTarget(loaded)), loaded, action, scheduleId, { as: o.as, note: o.note });
        console.log(`${action}: ${scheduleId}`);
      });
  }

  program
    .command('cancel')
    .description('cancel a run: the undos run in reverse (refused past the point of no return)')
    .argument('<workflowId>')
    .requiredOption('--reason <text>', 'why (recorded)')
    .option('--as <user>', 'who you are (default: LIFEBOAT_USER)')
    .action(async (workflowId: string, o: { as?: string; reason: string }, cmd: Command) => {
      const loaded = config(cmd);
      await cancelRun(await connectClient(temporalTarget(loaded)), loaded, workflowId, o.as, o.reason);
      console.log(`cancellation requested for ${workflowId}: the undos run now ('lifeboat status ${workflowId}')`);
    });

  program
    .command('resolve')
    .description('unblock a run in needs-attention after dealing with a failed undo')
    .argument('<workflowId>')
    .addOption(new Option('--action <action>', 'retry the undo, or record it as done by hand').choices(['retry', 'done-by-hand']).makeOptionMandatory())
    .requiredOption('--comment <text>', 'what was done (recorded)')
    .option('--as <user>', 'who you are (default: LIFEBOAT_USER)')
    .action(async (workflowId: string, o: { as?: string; action: 'retry' | 'done-by-hand'; comment: string }, cmd: Command) => {
      const loaded = config(cmd);
      const status = await resolveRun(await connectClient(temporalTarget(loaded)), loaded, workflowId, o);
      console.log(formatStatus(status));
    });

  program
    .command('codec-server')
    .description('decode encrypted payloads for the Temporal UI (--ui-codec-endpoint) and CLI; the server keeps only ciphertext')
    .option('--port <port>', 'port on 127.0.0.1', '8888')
    .option('--ui-origin <url...>', 'origins allowed by CORS (the Temporal UI)', ['http://127.0.0.1:8233', 'http://localhost:8233'])
    .option('--token-env <var>', 'environment variable holding the access token requests must carry', 'LIFEBOAT_CODEC_TOKEN')
    .action(async (o: { port: string; uiOrigin: string[]; tokenEnv: string }, cmd: Command) => {
      const loaded = config(cmd);
      const target = temporalTarget(loaded);
      if (!target.encryption) throw new UsageError(`payload encryption is not configured: set temporal.encryption in ${loaded.file}`);
      const token = process.env[o.tokenEnv];
      if (!token) throw new UsageError(`set ${o.tokenEnv} to the access token callers must send (Authorization: Bearer <token>)`);
      const server = createCodecServer({ codec: new AesGcmCodec(loadKeyRing(target.encryption)), allowedOrigins: o.uiOrigin, token, namespaces: [target.namespace], log: say });
      await new Promise<void>((resolve, reject) => server.once('error', reject).listen(Number(o.port), '127.0.0.1', resolve));
      say(`codec server on http://127.0.0.1:${o.port} for namespace ${target.namespace}, origins ${o.uiOrigin.join(', ')}`);
      await new Promise<void>((resolve) => process.once('SIGTERM', resolve).once('SIGINT', resolve));
      server.close();
    });

  program
    .command('docs')
    .description('regenerate the plan tables of runbooks/*.md from the workflow plans and the config')
    .option('--check', 'only check: exit 1 when a doc differs from what the code generates')
    .action((o: { check?: boolean }, cmd: Command) => {
      const loaded = config(cmd);
      const changed = syncRunbookDocs(loaded, path.join(PROJECT_ROOT, 'runbooks'), !o.check);
      if (o.check && changed.length > 0) throw new UsageError(`runbook docs are out of date: ${changed.join(', ')}; run 'npm run docs'`);
      console.log(changed.length > 0 ? `updated ${changed.join(', ')}` : 'runbook docs are up to date');
    });

  program
    .command('demo')
    .description('bring the lab up with its workers, evacuate the region of the first database (planned), then fail back; a second person approves every gate, and the lab stays up')
    .action(async (_o, cmd: Command) => {
      await runDemo(config(cmd), { projectRoot: PROJECT_ROOT, log: say });
    });

  program
    .command('completion')
    .description('print a shell completion script generated from these commands')
    .argument('<shell>', 'bash or zsh')
    .action((shell: string) => {
      if (shell === 'bash') process.stdout.write(bashCompletion(program));
      else if (shell === 'zsh') process.stdout.write(zshCompletion(program));
      else throw new UsageError(`completion for '${shell}' is not available: use bash or zsh`);
    });

  addExamples(program);
  return program;
}

/** Runs the CLI; returns the exit code instead of exiting, for tests. */
export async function main(argv: readonly string[]): Promise<number> {
  const exit = { code: 0 };
  const program = buildProgram(exit);
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return exit.code;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    if (err instanceof ConfigError || err instanceof UsageError || err instanceof RunRefusedError || err instanceof TemporalUnreachableError || err instanceof CommandError || err instanceof GiveUp) {
      process.stderr.write(`lifeboat: ${err.message}\n`);
      return 1;
    }
    process.stderr.write(`lifeboat: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    return 1;
  }
}

if (require.main === module) {
  // Exit explicitly: open Temporal connections would keep the process alive (stdout is synchronous on Linux).
  void main(process.argv.slice(2)).then((code) => process.exit(code));
}
