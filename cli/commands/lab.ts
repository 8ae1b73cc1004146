/** `lifeboat lab up|down|reset|status`: the local two-region lab. */
import type { Command } from 'commander';
import { Lab, type LabStatus } from '../../lab/lab';
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
    console.log(`${name}: primary ${db.primary ? node(db.primary) : '-'}; standby ${db.standby ? node(db.standby) : '-'}${db.others.length ? `; other ${db.others.map(node).join(', ')}` : ''}`);
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
  examples(lab.command('status').description('endpoints, read live from the servers').addOption(jsonOption()), ['lifeboat lab status', 'lifeboat lab status --json | jq .databases.orders']).action(
    async (o: { json?: boolean }, cmd: Command) => {
      const status = await new Lab(commandConfig(cmd)).status();
      if (o.json) console.log(JSON.stringify(status, null, 2));
      else printLab(status);
    },
  );
}
