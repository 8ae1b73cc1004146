/** `lifeboat lab up|down|reset|status|fault`: the local lab. */
import type { Command } from 'commander';
import { continueHung, formatFault, hangDatabase, killDatabase, killRegion, lagDatabase, unlagAll } from '../../lab/faults';
import { Lab, type LabStatus } from '../../lab/lab';
import { databaseNodes, postgresDatabases, type LoadedConfig } from '../../config/load';
import { UsageError } from '../usage-error';
import { examples } from '../help';
import { commandConfig, say } from './context';
import { jsonOption } from './options';

function printLab(status: LabStatus): void {
  console.log(`Temporal ${status.temporal.address} (${status.temporal.running ? 'running' : 'not running'}), UI ${status.temporal.uiUrl}`);
  const { encryption } = status;
  if (encryption) {
    const codec = encryption.codec;
    console.log(`payloads encrypted, key ring ${encryption.keyFile ?? '(from the environment)'}${codec ? `; codec server ${codec.url} (${codec.running ? 'running' : 'not running'}), CORS ${codec.uiOrigin}${codec.tokenRequired ? '' : ', lab: no token'}` : ''}`);
  }
  const { s3, scratch } = status.backups ?? {};
  if (s3) console.log(`S3 (versitygw) ${s3.endpoint} (${s3.reachable ? 'running' : 'not running'}): ${s3.buckets.join(', ')}`);
  if (scratch) console.log(`restore-test scratch server ${scratch.host}:${scratch.port} (${scratch.reachable ? 'running' : 'not running'})`);
  for (const [name, db] of Object.entries(status.databases)) {
    const node = (n: NonNullable<LabStatus['databases'][string]['primary']>) =>
      `${n.region} ${n.host}:${n.port}${n.reachable ? (n.inRecovery ? ' (in recovery)' : n.readOnly ? ' (read-only)' : '') : ' (down)'}`;
    console.log(`${name}: primary ${db.primary ? node(db.primary) : '-'}; standby ${db.standbys.length ? db.standbys.map(node).join(', ') : '-'}${db.others.length ? `; other ${db.others.map(node).join(', ')}` : ''}`);
  }
  console.log(`state: ${status.stateDir}`);
}

export function register(program: Command): void {
  const lab = examples(
    program.command('lab').description('the local two-region lab (Temporal dev server, PostgreSQL primary and standby per database)'),
    ['lifeboat lab up', 'lifeboat lab status --json'],
  );
  examples(lab.command('up').description('install nothing, start everything: idempotent'), ['lifeboat lab up']).action(async (_o, cmd: Command) => {
    printLab(await new Lab(commandConfig(cmd)).up({ temporal: true, log: say }));
  });
  examples(lab.command('down').description('stop everything the lab started, by pid (data is kept)'), ['lifeboat lab down']).action(async (_o, cmd: Command) => {
    await new Lab(commandConfig(cmd)).down(say);
  });
  examples(lab.command('reset').description('back to the initial topology with fresh data, so a drill can be repeated'), [
    'lifeboat lab reset && lifeboat start regional-evacuation region=east --as alice --drill',
  ]).action(async (_o, cmd: Command) => {
    printLab(await new Lab(commandConfig(cmd)).reset({ log: say }));
  });
  const fault = examples(lab.command('fault').description('inject a fault on purpose (a drill, a sentinel test): each prints what it did and when, the time a recovery is measured from'), [
    'lifeboat lab fault kill orders',
    'lifeboat lab fault heal',
  ]);
  examples(fault.command('kill').description("SIGKILL a database's writable node, or a region's writable nodes and its service").argument('<target>', 'a database, or a region'), [
    'lifeboat lab fault kill orders',
    'lifeboat lab fault kill east',
  ]).action(async (target: string, _o, cmd: Command) => {
    const loaded = commandConfig(cmd);
    const lab = new Lab(loaded);
    const records = isDatabase(loaded, target) ? [await killDatabase(lab, loaded, target)] : await killRegion(lab, loaded, regionOf(loaded, target), lab.daemonPid(`service-${target}`));
    for (const r of records) console.log(formatFault(r));
  });
  examples(fault.command('hang').description("SIGSTOP a database's writable node: its port accepts, nothing answers").argument('<database>'), ['lifeboat lab fault hang orders']).action(
    async (database: string, _o, cmd: Command) => {
      const loaded = commandConfig(cmd);
      if (!isDatabase(loaded, database)) throw new UsageError(`${database} is not a lab database of ${loaded.file} (databases: ${postgresDatabases(loaded.config).map(([n]) => n).join(', ')})`);
      console.log(formatFault(await hangDatabase(new Lab(loaded), loaded, database)));
    },
  );
  examples(fault.command('lag').description("every standby of a database applies WAL N seconds late (recovery_min_apply_delay): it receives every byte, its replay falls behind").argument('<database>').requiredOption('--seconds <n>', 'the delay, 1 to 3600'), ['lifeboat lab fault lag orders --seconds 30']).action(
    async (database: string, o: { seconds: string }, cmd: Command) => {
      const loaded = commandConfig(cmd);
      if (!isDatabase(loaded, database)) throw new UsageError(`${database} is not a lab database of ${loaded.file} (databases: ${postgresDatabases(loaded.config).map(([n]) => n).join(', ')})`);
      if (!/^\d+$/.test(o.seconds)) throw new UsageError(`--seconds must be a whole number of seconds from 1 to 3600, got '${o.seconds}'`);
      for (const r of await lagDatabase(new Lab(loaded), loaded, database, Number(o.seconds))) console.log(formatFault(r));
    },
  );
  examples(fault.command('heal').description('continue every hung node and lift every lag; a killed node stays down (a failback brings it back as a standby, never a second primary)'), ['lifeboat lab fault heal']).action(
    async (_o, cmd: Command) => {
      const loaded = commandConfig(cmd);
      const lab = new Lab(loaded);
      const records = [...continueHung(lab, loaded), ...(await unlagAll(lab, loaded))];
      for (const r of records) console.log(formatFault(r));
      if (records.length === 0) console.log('nothing was hung or lagged');
    },
  );
  examples(lab.command('status').description('endpoints, read live from the servers').addOption(jsonOption()), ['lifeboat lab status', 'lifeboat lab status --json | jq .databases.orders']).action(
    async (o: { json?: boolean }, cmd: Command) => {
      const status = await new Lab(commandConfig(cmd)).status();
      if (o.json) console.log(JSON.stringify(status, null, 2));
      else printLab(status);
    },
  );
}

function isDatabase(loaded: LoadedConfig, name: string): boolean {
  return postgresDatabases(loaded.config).some(([n]) => n === name);
}

function regionOf(loaded: LoadedConfig, name: string): string {
  const regions = new Set([...postgresDatabases(loaded.config).flatMap(([, db]) => databaseNodes(db).map((n) => n.region)), ...Object.keys(loaded.config.services)]);
  if (!regions.has(name)) throw new UsageError(`${name} is neither a database nor a region of ${loaded.file} (databases: ${postgresDatabases(loaded.config).map(([n]) => n).join(', ')}; regions: ${[...regions].join(', ')})`);
  return name;
}
