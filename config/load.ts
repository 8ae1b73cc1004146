/** Reads and validates a runbook config file; the only place YAML is parsed. */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { configSchema, type LifeboatConfig, type PostgresDatabaseConfig } from './schema';

/** A config that does not validate: names the file, the path in it and what is wrong. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(
    readonly file: string,
    readonly problems: string[],
  ) {
    super(`invalid config ${file}:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  }
}

export interface LoadedConfig {
  /** Absolute path of the file it came from. */
  file: string;
  config: LifeboatConfig;
  /** Absolute lab state directory (config's lab.stateDir, relative to the file). */
  stateDir: string;
  /** Absolute path of the notification journal. */
  journalPath: string;
  /** The file describes a lab (it has a `lab:` section): the lab's stand-in credentials may fill in for unset variables. */
  isLab: boolean;
}

export function loadConfig(file: string): LoadedConfig {
  const absolute = path.resolve(file);
  let text: string;
  try {
    text = readFileSync(absolute, 'utf8');
  } catch (err) {
    throw new ConfigError(absolute, [`cannot read the file: ${(err as Error).message}`]);
  }
  return parseConfig(text, absolute);
}

export function parseConfig(text: string, file: string): LoadedConfig {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(file, doc.errors.map((e) => `YAML: ${(e.message.split('\n')[0] ?? e.message).replace(/:$/, '')}`));
  }
  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    // e.g. an alias to an anchor that does not exist, or an alias bomb.
    throw new ConfigError(file, [`YAML: ${(err as Error).message}`]);
  }
  const parsed = configSchema.safeParse(data);
  if (!parsed.success) throw new ConfigError(file, formatIssues(parsed.error.issues));
  const dir = path.dirname(file);
  return {
    file,
    config: parsed.data,
    stateDir: path.resolve(dir, parsed.data.lab.stateDir),
    journalPath: path.resolve(dir, parsed.data.notifications.journal),
    isLab: typeof data === 'object' && data !== null && Object.hasOwn(data, 'lab'),
  };
}

/** `a.b.0`, quoting keys that are not plain names: `people[" "]`. */
function formatPath(segments: readonly PropertyKey[]): string {
  return segments
    .map((segment, i) => {
      const text = String(segment);
      if (/^[\w-]+$/.test(text)) return i === 0 ? text : `.${text}`;
      return `[${JSON.stringify(text)}]`;
    })
    .join('');
}

/** One line per problem; a record key or union issue shows the nested reason, not zod's summary. */
/** A self-managed PostgreSQL database of the config; an error names what it is instead. */
export function postgresDatabase(config: LifeboatConfig, database: string): PostgresDatabaseConfig {
  const spec = Object.hasOwn(config.databases, database) ? config.databases[database] : undefined;
  if (!spec) throw new Error(`unknown database '${database}': configured databases are ${Object.keys(config.databases).join(', ') || 'none'}`);
  if (spec.provider !== 'postgres') throw new Error(`database '${database}' is a ${spec.provider} database, not a self-managed PostgreSQL pair`);
  return spec;
}

/** The self-managed PostgreSQL databases of the config (the lab runs these). */
export function postgresDatabases(config: LifeboatConfig): Array<[string, PostgresDatabaseConfig]> {
  return Object.entries(config.databases).flatMap(([name, spec]) => (spec.provider === 'postgres' ? [[name, spec] as [string, PostgresDatabaseConfig]] : []));
}

/** The region a database fails over to: its standby's or its replica's. */
export function standbyRegion(spec: LifeboatConfig['databases'][string]): string {
  return spec.provider === 'postgres' ? spec.standby.region : spec.replica.region;
}

/** The regions of the self-managed database nodes: each has a host worker (`lifeboat worker --region`). */
export function nodeRegions(loaded: LoadedConfig): string[] {
  const regions = new Set<string>();
  for (const [, db] of postgresDatabases(loaded.config)) for (const n of databaseNodes(db)) regions.add(n.region);
  return [...regions].sort();
}

export type PostgresNodeConfig = PostgresDatabaseConfig['primary'];

/** Every node of a self-managed database: the primary, the standby, then the further standbys (their order is their priority). */
export function databaseNodes(spec: PostgresDatabaseConfig): PostgresNodeConfig[] {
  return [spec.primary, spec.standby, ...spec.standbys];
}

/** The node of a database in `region` (one per region); a clear error when there is none. */
export function nodeIn(spec: PostgresDatabaseConfig, region: string, database = spec.database): PostgresNodeConfig {
  const found = databaseNodes(spec).find((n) => n.region === region);
  if (!found) throw new Error(`database ${database} has no node in region '${region}' (its nodes are in ${databaseNodes(spec).map((n) => n.region).join(', ')})`);
  return found;
}

/** The slot a node streams through while it is a standby. */
export function slotOf(spec: PostgresDatabaseConfig, node: PostgresNodeConfig): string {
  return node.slot ?? spec.slot;
}

/** The regions that run a host worker: every database node's, and every region the sentinels probe from (a witness region may have no node). */
export function workerRegions(loaded: LoadedConfig): string[] {
  return [...new Set([...nodeRegions(loaded), ...(loaded.config.sentinels?.regions ?? [])])].sort();
}

/** Where a database node's cluster lives on this host: its configured dataDir, else the lab's layout. `node`: a role, or the region of one of the database's nodes. */
export function clusterLocation(loaded: LoadedConfig, database: string, node: 'primary' | 'standby' | string): { dataDir: string; logFile: string } {
  const spec = postgresDatabase(loaded.config, database);
  const n = node === 'primary' || node === 'standby' ? spec[node] : nodeIn(spec, node, database);
  return {
    dataDir: n.dataDir ? path.resolve(path.dirname(loaded.file), n.dataDir) : path.join(loaded.stateDir, 'pg', `${database}-${n.region}`),
    logFile: path.join(loaded.stateDir, 'logs', `${database}-${n.region}.log`),
  };
}

function formatIssues(issues: readonly z.core.$ZodIssue[], prefix: readonly PropertyKey[] = []): string[] {
  return issues.flatMap((issue) => {
    const path = [...prefix, ...issue.path];
    if (issue.code === 'invalid_key' && issue.issues.length > 0) return formatIssues(issue.issues, path);
    if (issue.code === 'invalid_union' && issue.errors.length > 0) {
      const first = issue.errors[0];
      if (first && first.length > 0) return formatIssues(first, path);
    }
    const where = path.length > 0 ? formatPath(path) : '(top level)';
    return [`${where}: ${issue.message}`];
  });
}

/** A node's address as a connection from `fromRegion` reaches it: through that region's link when one is configured. */
export function addressFrom(node: { region: string; host: string; port: number; via?: Record<string, { host: string; port: number }> }, fromRegion: string | undefined): { host: string; port: number; link?: string } {
  const link = fromRegion !== undefined && fromRegion !== node.region ? node.via?.[fromRegion] : undefined;
  return link ? { host: link.host, port: link.port, link: `${fromRegion}->${node.region}` } : { host: node.host, port: node.port };
}

/** A region's service URL as seen from `fromRegion` (its link), else its own URL. */
export function serviceUrlFrom(loaded: LoadedConfig, service: string, fromRegion: string | undefined): string | undefined {
  const svc = Object.hasOwn(loaded.config.services, service) ? loaded.config.services[service] : undefined;
  if (!svc) return undefined;
  return (fromRegion !== undefined && fromRegion !== service ? svc.via?.[fromRegion] : undefined) ?? svc.url;
}
