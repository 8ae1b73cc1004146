/** What the two backup runbooks' CLI modules share: the database named by `database=`, which must be configured with `backup:`. */
import type { LoadedConfig } from '../../config/load';
import { lookup } from '../../contract/records';
import { UsageError } from './common';

/** A database configured with `backup:`, and its data category. */
export function backedUpDatabase(loaded: LoadedConfig, runbook: string, database: string | undefined) {
  const { config } = loaded;
  const candidates = Object.entries(config.databases).filter(([, d]) => d.backup).map(([n]) => n);
  if (!database) throw new UsageError(`${runbook} needs database=NAME (databases with backup: ${candidates.join(', ') || 'none'})`);
  const db = lookup(config.databases, database);
  if (!db) throw new UsageError(`unknown database '${database}': configured databases are ${Object.keys(config.databases).join(', ')}`);
  const category = db.backup ? lookup(config.backups?.categories ?? {}, db.backup.category) : undefined;
  if (!db.backup || !category) throw new UsageError(`database '${database}' has no backup: in ${loaded.file} (databases with backup: ${candidates.join(', ') || 'none'})`);
  return { database, db, backup: db.backup, category };
}
