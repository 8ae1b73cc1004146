/**
 * The CLI side of db-promotion: `database=NAME mode=planned|unplanned [to=REGION]` becomes a promotion of
 * that database's standby: the one the run chooses among several, or the one in REGION.
 */
import { databaseNodes, standbyRegion } from '../../config/load';
import type { PromotionTarget } from '../../contract/database';
import { dbPromotionRunbook } from '../../contract/db-promotion';
import { lookup } from '../../contract/records';
import { replicationChecks } from './checks';
import { cliRunbook, commonStart, initiatorLine, promotionPolicy, startEnvelope, UsageError } from './common';

export const dbPromotionCli = cliRunbook({
  definition: dbPromotionRunbook,
  plan(loaded, request) {
    const { config } = loaded;
    const { initiator, context, mode, params } = commonStart(loaded, request, ['database', 'mode', 'to']);
    const database = params.database;
    if (!database) throw new UsageError(`db-promotion needs database=NAME (configured: ${Object.keys(config.databases).join(', ')})`);
    const db = lookup(config.databases, database);
    if (!db) throw new UsageError(`unknown database '${database}': configured databases are ${Object.keys(config.databases).join(', ')}`);
    if (db.provider === 'cloudsql' && mode === 'planned' && db.promotion !== 'switchover') {
      // promoteReplica leaves the old primary writable: a planned move could lose the writes it takes meanwhile.
      throw new UsageError(`a planned promotion of Cloud SQL database '${database}' needs promotion: switchover (zero data loss) in ${loaded.file}; with promote-replica use mode=unplanned`);
    }
    const runbook = config.runbooks['db-promotion'];
    const standbys = db.provider === 'postgres' ? databaseNodes(db).slice(1).map((n) => n.region) : [db.replica.region];
    const to = params.to;
    if (to !== undefined && !standbys.includes(to)) throw new UsageError(`to=${to}: ${database} has no standby in region '${to}' (its standbys are in ${standbys.join(', ')})`);
    // Named: that standby. Not named: the run chooses (several standbys) or promotes the one there is.
    const towards: PromotionTarget | undefined = to === undefined ? undefined : to === standbyRegion(db) ? 'standby' : `standby:${to}`;
    const where = to ?? (standbys.length > 1 ? `chosen by the run among ${standbys.join(', ')}` : standbyRegion(db));
    return {
      ...startEnvelope(dbPromotionRunbook, request, database),
      input: { database, mode, run: context, policy: promotionPolicy(config, db), ...(towards ? { towards } : {}) },
      targets: [database],
      staticSummary: `${request.drill ? 'DRILL: ' : ''}promote ${database} standby (${where}) in ${mode} mode`,
      staticDetails: [
        `**Runbook** db-promotion, **database** ${database}, **mode** ${mode}`,
        initiatorLine(initiator, request),
        `**Detected** ${context.detectedAt}, **RTO budget** ${runbook.rto.budgetSeconds}s (${runbook.rto.onBreach} on breach), **RPO target** ${db.rpoTargetSeconds}s`,
        db.provider === 'postgres'
          ? `**Primary** ${db.primary.region} ${db.primary.host}:${db.primary.port} → **standby** ${databaseNodes(db).slice(1).filter((n) => to === undefined || n.region === to).map((n) => `${n.region} ${n.host}:${n.port}`).join(', ')}${to === undefined && standbys.length > 1 ? ' (the run chooses)' : ''}`
          : `**Cloud SQL** ${db.project}: **primary** ${db.primary.instance} (${db.primary.region}) → **replica** ${db.replica.instance} (${db.replica.region}), ${db.promotion}`,
      ].join('\n'),
    };
  },
  preflight: (readers, targets, mode) => replicationChecks(readers, targets, mode, { reversed: false }),
  policy: (loaded) => loaded.config.runbooks['db-promotion'],
});
