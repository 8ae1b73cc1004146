/**
 * What the two regional runbooks (regional-evacuation and failback) plan
 * alike: the databases whose primary is in the named region, the one region
 * their standbys are in, each database's child promotion policy, and their
 * shared preflight (replication and DNS).
 */
import { postgresDatabases, type LoadedConfig } from '../../config/load';
import type { PostgresDatabaseConfig } from '../../config/schema';
import type { DbPromotionPolicy } from '../../contract/db-promotion';
import type { RtoPolicy } from '../../contract/runbook';
import type { CliReaders } from '../readers';
import { dnsCheck, replicationChecks } from './checks';
import { commonStart, promotionPolicy, UsageError, type CommonStart, type PreflightCheck, type StartRequest } from './common';

export interface RegionalStart<C> extends CommonStart {
  /** The runbook's configuration. */
  runbook: C;
  /** The region named by `region=`. */
  region: string;
  /** The one region the other node of every database is in. */
  other: string;
  databases: Array<{ name: string; config: PostgresDatabaseConfig; promotion: DbPromotionPolicy }>;
  names: string[];
}

/**
 * Validates a regional start: `region=` names a region with primaries whose standbys are all in one
 * other region, and the runbook is configured. Each child promotion runs against the parent's RTO.
 */
export function regionalStart<C extends { rto: RtoPolicy }>(
  loaded: LoadedConfig,
  request: StartRequest,
  how: { runbook: string; allowedParams: readonly string[]; configured: C | undefined; meaning: string; otherwise: string },
): RegionalStart<C> {
  const { config } = loaded;
  const common = commonStart(loaded, request, how.allowedParams);
  const runbook = how.configured;
  if (!runbook) throw new UsageError(`${how.runbook} is not configured: add runbooks.${how.runbook} to ${loaded.file}`);
  // The lab's regional runbooks re-point services at host:port endpoints: self-managed PostgreSQL pairs.
  const pairs = postgresDatabases(config);
  const regions = [...new Set(pairs.map(([, d]) => d.primary.region))];
  const region = common.params.region;
  if (!region) throw new UsageError(`${how.runbook} needs region=NAME, ${how.meaning} (regions with primaries: ${regions.join(', ')})`);
  const databases = pairs.filter(([, d]) => d.primary.region === region);
  if (databases.length === 0) throw new UsageError(`no database has its primary in region '${region}': regions with primaries are ${regions.join(', ')}`);
  const others = [...new Set(databases.map(([, d]) => d.standby.region))];
  const other = others[0];
  if (others.length !== 1 || !other) throw new UsageError(`the databases of ${region} have standbys in several regions (${others.join(', ')}): ${how.otherwise}`);
  return {
    ...common,
    runbook,
    region,
    other,
    databases: databases.map(([name, d]) => ({ name, config: d, promotion: { ...promotionPolicy(config, d), rto: runbook.rto } })),
    names: databases.map(([name]) => name),
  };
}

/** Replication of each database (`reversed` for a failback, which promotes the original primaries), then the DNS weights. */
export function regionalPreflight(readers: CliReaders, targets: readonly string[], mode: string | undefined, reversed: boolean): Array<Promise<PreflightCheck>> {
  return [...replicationChecks(readers, targets, mode, { reversed }), dnsCheck(readers)];
}
