/**
 * The parts every generated config shares: the test labs' (test/helpers/lab.ts)
 * and the bench's (bench/lab.ts, bench/lib.ts). One builder, so a schema change
 * is made here once. No vitest import: the bench runs it outside the tests.
 */

/** Where a database's two nodes listen on loopback: the port of its primary and of its standby. */
export interface LabPorts {
  primary: number;
  standby: number;
}

/** The config entry of a lab PostgreSQL database: its primary in `regions.primary`, its standby in `regions.standby`, an RPO target of 5 s. */
export function labDatabase(database: string, regions: { primary: string; standby: string }, ports: LabPorts): Record<string, unknown> {
  return {
    provider: 'postgres',
    database,
    primary: { region: regions.primary, host: '127.0.0.1', port: ports.primary },
    standby: { region: regions.standby, host: '127.0.0.1', port: ports.standby },
    rpoTargetSeconds: 5,
  };
}

/**
 * The db-promotion policy of the generated configs: an RTO that continues on a breach, the promote
 * gate's escalation and timeout (seconds), and the catch-up and compensation bounds.
 */
export function labDbPromotionPolicy(rtoSeconds = 600, gate = { escalateAfterSeconds: 120, timeoutSeconds: 300 }): Record<string, unknown> {
  return {
    rto: { budgetSeconds: rtoSeconds, onBreach: 'continue' },
    gates: { promote: gate },
    catchUpTimeoutSeconds: 30,
    compensationAttempts: 3,
  };
}

/** Where a generated config's notification journal and evidence mirror go: under its own state directory (the schema has no default). */
export const LAB_RECORDS = {
  journal: './state/notifications.jsonl',
  mirrorDir: './state/evidence',
} as const;
