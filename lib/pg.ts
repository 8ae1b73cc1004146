/** One short-lived PostgreSQL session: connect, work, always end. No pools: every call sees the node's current state. */
import { Client, type ClientConfig } from 'pg';

export async function withPgSession<T>(config: ClientConfig, work: (client: Client) => Promise<T>): Promise<T> {
  const client = new Client(config);
  // A dropped connection must reject the pending query, not crash the process with an unhandled 'error' event.
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}
