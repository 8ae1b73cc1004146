/** Direct checks of the lab's real PostgreSQL nodes, independent of the code under test. */
import { Client } from 'pg';
import type { PostgresDatabaseConfig } from '../../config/schema';

type Node = PostgresDatabaseConfig['primary'];

export async function sql<T extends Record<string, unknown>>(node: Node, database: string, text: string, values: unknown[] = []): Promise<T[]> {
  const client = new Client({ host: node.host, port: node.port, user: 'postgres', database, connectionTimeoutMillis: 3000 });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return (await client.query<T>(text, values)).rows;
  } finally {
    await client.end();
  }
}

export async function inRecovery(node: Node): Promise<boolean> {
  const [row] = await sql<{ r: boolean }>(node, 'postgres', 'SELECT pg_is_in_recovery() AS r');
  return row?.r === true;
}

/** Timeline of a primary, from its current WAL file name (1 before any promotion). */
export async function timeline(node: Node): Promise<number> {
  const [row] = await sql<{ tli: string }>(node, 'postgres', 'SELECT substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8) AS tli');
  return Number.parseInt(row?.tli ?? '0', 16);
}

/** Writes a row through a fresh session; returns the error message when the node refuses. */
export async function tryWrite(node: Node, database: string, payload: string): Promise<string | undefined> {
  try {
    await sql(node, database, 'INSERT INTO lab_records (payload) VALUES ($1)', [payload]);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

export async function countRows(node: Node, database: string): Promise<number> {
  const [row] = await sql<{ n: string }>(node, database, 'SELECT count(*)::text AS n FROM lab_records');
  return Number(row?.n ?? -1);
}
