/**
 * A SIMULATED DatabaseProvider for the benchmarks: in memory, every call waits a
 * fixed latency (default 100 ms) and succeeds. It isolates Lifeboat's
 * orchestration cost (Temporal round trips, the kernel, child runs) from
 * PostgreSQL's; it says nothing about how fast a real promotion is.
 * Stateless: every run finds a healthy pair (streaming standby, reachable
 * primary), as if the lab were rebuilt between runs, so runs can repeat.
 */
import { setTimeout as delay } from 'node:timers/promises';
import type { DatabaseProvider, FollowOutcome, RebuildOutcome } from '../activities/database';
import type { FenceResult, NodeEndpoint, PromotionOutcome, ReplicationInspection, RpoMeasurement, WriteCheck } from '../contract/database';

export class SimulatedDatabase implements DatabaseProvider {
  /** Calls made, for a sanity check that the runs really went through the provider. */
  static calls = 0;
  /** The same, by provider method: what a fan-out's children really asked for. */
  static byMethod: Record<string, number> = {};

  constructor(
    readonly name: string,
    readonly latencyMs: number,
    readonly primary: NodeEndpoint = { region: 'east', host: `${name}.east.sim`, port: 5432 },
    readonly standby: NodeEndpoint = { region: 'west', host: `${name}.west.sim`, port: 5432 },
  ) {}

  private async call(method: string): Promise<void> {
    SimulatedDatabase.calls++;
    SimulatedDatabase.byMethod[method] = (SimulatedDatabase.byMethod[method] ?? 0) + 1;
    if (this.latencyMs > 0) await delay(this.latencyMs);
  }

  async inspect(): Promise<ReplicationInspection> {
    await this.call('inspect');
    return {
      database: this.name,
      standby: { ...this.standby, reachable: true, inRecovery: true, streaming: true, replayLsn: '0/3000060', receiveLsn: '0/3000060' },
      primary: { ...this.primary, reachable: true, currentLsn: '0/3000060', readOnly: false },
      lagBytes: 0,
      lagSeconds: 0,
      inspectedAt: new Date().toISOString(),
    };
  }

  async fencePrimary(): Promise<FenceResult> {
    await this.call('fencePrimary');
    return { fenced: true, finalLsn: '0/3000060', terminatedSessions: 0 };
  }

  async unfencePrimary(): Promise<void> {
    await this.call('unfencePrimary');
  }

  async replayedUpTo(lsn: string): Promise<{ caughtUp: boolean; replayLsn: string }> {
    await this.call('replayedUpTo');
    return { caughtUp: true, replayLsn: lsn };
  }

  async measureRpo(): Promise<RpoMeasurement> {
    await this.call('measureRpo');
    return { measuredBytes: 0, measuredSeconds: 0, method: 'simulated provider: no lag' };
  }

  async promoteStandby(): Promise<PromotionOutcome> {
    await this.call('promoteStandby');
    return { alreadyPromoted: false, timeline: 2, promotedAt: new Date().toISOString(), newPrimary: this.standby };
  }

  async verifyWrite(): Promise<WriteCheck> {
    await this.call('verifyWrite');
    return { ok: true, latencyMs: this.latencyMs, node: this.standby };
  }

  reversed(): DatabaseProvider {
    return new SimulatedDatabase(this.name, this.latencyMs, this.standby, this.primary);
  }

  get nodes(): NodeEndpoint[] {
    return [this.primary, this.standby];
  }

  oriented(primaryRegion: string): DatabaseProvider {
    return primaryRegion === this.primary.region ? this : this.reversed();
  }

  async confirmPromotable(): Promise<void> {
    await this.call('confirmPromotable');
  }

  async followNewPrimary(): Promise<FollowOutcome[]> {
    await this.call('followNewPrimary');
    return [];
  }

  async rebuildOldPrimary(): Promise<RebuildOutcome> {
    await this.call('rebuildOldPrimary');
    return { method: 'already-a-standby', node: this.primary, source: this.standby };
  }
}

/** `count` simulated databases named bench-db-001, bench-db-002, ... */
export function simulatedDatabases(count: number, latencyMs: number): Map<string, DatabaseProvider> {
  const map = new Map<string, DatabaseProvider>();
  for (let i = 1; i <= count; i++) {
    const name = databaseName(i);
    map.set(name, new SimulatedDatabase(name, latencyMs));
  }
  return map;
}

export function databaseName(i: number): string {
  return `bench-db-${String(i).padStart(3, '0')}`;
}
