/**
 * The read-only preflight checks the runbooks' `--dry-run` hooks are made of,
 * run directly against the providers through the CLI's read-only readers.
 */
import type { CliReaders } from '../readers';
import type { PreflightCheck } from './common';
import { refusePromotion } from '../../contract/preflight';

/** Runs one read-only check; a thrown error is the check's failure, its message the detail. */
export async function check(name: string, probe: () => Promise<string>): Promise<PreflightCheck> {
  try {
    return { check: name, ok: true, detail: await probe() };
  } catch (err) {
    return { check: name, ok: false, detail: (err as Error).message };
  }
}

/**
 * Each target database's replication, towards the node the run makes primary: the standby, or
 * (`reversed`, a failback) the original primary, which runs writable until it is rebuilt.
 */
export function replicationChecks(readers: CliReaders, targets: readonly string[], mode: string | undefined, { reversed }: { reversed: boolean }): Array<Promise<PreflightCheck>> {
  return targets.flatMap((db) => {
    const provider = readers.databases.get(db);
    if (!provider) return [];
    const p = reversed ? provider.reversed() : provider;
    return [check(`${db}: replication`, async () => {
      const i = await p.inspect();
      // The run's own rule (contract/preflight.ts), so the dry run refuses what the run would.
      const refusal = refusePromotion(i, db, mode === 'planned' ? 'planned' : 'unplanned', { targetMayBeWritable: reversed });
      if (refusal) throw new Error(`target ${i.standby.region} ${i.standby.host}:${i.standby.port}: ${refusal.message}`);
      return `target ${i.standby.region} ${i.standby.host}:${i.standby.port} ${i.standby.inRecovery ? 'in recovery' : 'writable'}${i.standby.streaming ? ', streaming' : ''}; lag ${i.lagBytes ?? '?'} bytes / ${i.lagSeconds ?? '?'} s; primary ${i.primary.reachable ? 'reachable' : 'unreachable'}`;
    })];
  });
}

/** The DNS weights a regional runbook will shift. */
export function dnsCheck(readers: CliReaders): Promise<PreflightCheck> {
  const traffic = readers.traffic;
  return check('DNS weights', async () => {
    if (!traffic) throw new Error('no dns: in the config');
    return Object.entries(await traffic.readWeights()).map(([k, v]) => `${k} ${v}`).join(', ');
  });
}

/** Each target's backups; `needVerified`: a restore test needs one verified backup to test. */
export function backupChecks(readers: CliReaders, targets: readonly string[], { needVerified }: { needVerified: boolean }): Array<Promise<PreflightCheck>> {
  return targets.map((db) => {
    const provider = readers.backups.get(db);
    return check(`${db}: backups`, async () => {
      if (!provider) throw new Error(`no backups configured for ${db}`);
      const backups = await provider.listBackups();
      const verified = backups.filter((b) => b.verified);
      if (needVerified && verified.length === 0) throw new Error(`no verified backup of ${db} to test: run database-backup first`);
      return `${backups.length} backups, ${verified.length} verified; newest ${backups[0]?.backupId ?? 'none'}`;
    });
  });
}
