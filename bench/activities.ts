/**
 * The activities a bench worker registers: every real Lifeboat activity through
 * the real `createActivities` (databases: the SIMULATED provider; notifications:
 * the journal channel, a no-op, with no journal file; evidence: the local mirror
 * store every production worker has, in the bench's temp dir, no bucket;
 * admission: the bench config's policy), plus two bench-only ones.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { createActivities } from '../activities';
import type { DatabaseProvider } from '../activities/database';
import { mirrorEvidenceStore } from '../activities/evidence';
import { journalChannel } from '../activities/notify';
import type { Client } from '@temporalio/client';
import { workerGovernance } from '../workers/dependencies';
import { benchConfig } from './lib';

export const benchOnlyActivities = {
  /** The unit of work of the overhead benchmark: sleeps `ms` and returns. */
  async benchSleep(ms: number): Promise<void> {
    if (ms > 0) await delay(ms);
  },
  /** When it started (epoch ms, sub-ms precision, this process's clock): the approval benchmark's end mark. */
  async benchMark(): Promise<number> {
    return performance.timeOrigin + performance.now();
  },
};

export type BenchOnlyActivities = typeof benchOnlyActivities;

/**
 * Admission runs as in production: the bench config's policy (the people `planContext` starts as), and
 * `temporal`, the client a child's parent is checked with (benchEvacuation counts as a runbook here).
 */
export function benchActivities(databases: ReadonlyMap<string, DatabaseProvider>, evidenceDir: string, temporal?: Client) {
  const channel = journalChannel();
  return {
    ...createActivities({
      databases,
      backups: new Map(),
      evidence: [mirrorEvidenceStore(evidenceDir)],
      notifications: { routes: { incident: [channel], oncall: [channel] }, record: async () => undefined },
      governance: workerGovernance(benchConfig('127.0.0.1:7233', 0), ['benchEvacuation']),
      temporal,
    }),
    ...benchOnlyActivities,
  };
}
