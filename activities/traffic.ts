/** Traffic and application activities used by the evacuation and failback runbooks. */
import { ApplicationFailure } from '@temporalio/common';
import { FailureType } from '../contract/failures';
import type { NodeEndpoint } from '../contract/database';
import type { Route53Traffic, TrafficWeights } from './route53';
import type { ServiceControl } from './service';

function required<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw ApplicationFailure.nonRetryable(`${what} is not configured for this worker`, FailureType.NotConfigured);
  return value;
}

export function createTrafficActivities(deps: { traffic?: Route53Traffic; services?: ServiceControl }) {
  return {
    async readTrafficWeights(): Promise<TrafficWeights> {
      return required(deps.traffic, 'DNS (dns:)').readWeights();
    },
    async shiftTraffic({ weights, comment }: { weights: TrafficWeights; comment: string }): Promise<{ changeId: string }> {
      return required(deps.traffic, 'DNS (dns:)').setWeights(weights, comment);
    },
    /** Points `database`'s DNS failover pair at its primary in `region` (`standbyRegion`: the other record). */
    async pointDatabaseRecord({ database, region, standbyRegion }: { database: string; region: string; standbyRegion: string }): Promise<{ changeId: string }> {
      return required(deps.traffic, 'DNS (dns:)').pointDatabase(database, region, standbyRegion, `lifeboat: ${database} primary in ${region}`);
    },
    /** `skipIfUnreachable`: a service that does not answer is reported skipped (a lost region), not an error. */
    async setWriteFreeze({ region, frozen, reason, skipIfUnreachable }: { region: string; frozen: boolean; reason: string; skipIfUnreachable: boolean }) {
      return required(deps.services, 'services:').setWriteFreeze(region, frozen, reason, skipIfUnreachable);
    },
    async setMaintenance({ region, databases, on, reason }: { region: string; databases: string[]; on: boolean; reason: string }): Promise<void> {
      const services = required(deps.services, 'services:');
      for (const database of databases) await services.setMaintenance(region, database, on, reason);
    },
    async repointDatabases({ region, routes }: { region: string; routes: Record<string, NodeEndpoint> }): Promise<void> {
      return required(deps.services, 'services:').repointDatabases(region, routes);
    },
    async syntheticCheck({ region, databases, runId }: { region: string; databases: string[]; runId: string }) {
      return required(deps.services, 'services:').syntheticCheck(region, databases, runId);
    },
  };
}

export type TrafficActivities = ReturnType<typeof createTrafficActivities>;
