/**
 * Traffic and DNS through Route 53 (`@aws-sdk/client-route-53`): weighted
 * records send users to a region (or to the maintenance page), a failover pair
 * names each database's primary. Every change waits for INSYNC.
 */
import {
  ChangeResourceRecordSetsCommand,
  GetChangeCommand,
  ListHostedZonesByNameCommand,
  ListResourceRecordSetsCommand,
  type Change,
  type Route53Client,
} from '@aws-sdk/client-route-53';
import { ApplicationFailure } from '@temporalio/common';

export interface TrafficConfig {
  /** Hosted zone name, e.g. lifeboat.lab */
  zone: string;
  /** Weighted record users resolve, e.g. app.lifeboat.lab */
  record: string;
  ttl: number;
  /** CNAME target per weighted set: one per region, plus `maintenance`. */
  targets: Readonly<Record<string, string>>;
  /** How often to poll GetChange; 30 s suits AWS, a fraction of a second the lab. */
  syncPollMs: number;
  syncTimeoutMs: number;
}

export type TrafficWeights = Record<string, number>;

const fqdn = (name: string) => (name.endsWith('.') ? name : `${name}.`);

/** `<database>.db.<zone>`: the failover pair applications connect through. */
export function databaseRecordName(zone: string, database: string): string {
  return fqdn(`${database}.db.${zone.replace(/\.$/, '')}`);
}

/** The per-region name a database endpoint record points at. */
export function databaseNodeName(zone: string, database: string, region: string): string {
  return fqdn(`${database}.${region}.db.${zone.replace(/\.$/, '')}`);
}

export function createRoute53Traffic(client: Route53Client, config: TrafficConfig) {
  let zoneId: string | undefined;

  async function hostedZoneId(): Promise<string> {
    if (zoneId) return zoneId;
    const found = await client.send(new ListHostedZonesByNameCommand({ DNSName: fqdn(config.zone), MaxItems: 1 }));
    const zone = found.HostedZones?.find((z) => z.Name === fqdn(config.zone));
    if (!zone?.Id) throw ApplicationFailure.nonRetryable(`hosted zone ${config.zone} not found in Route 53`, 'HostedZoneNotFound');
    zoneId = zone.Id.replace('/hostedzone/', '');
    return zoneId;
  }

  async function waitInSync(changeId: string): Promise<void> {
    const deadline = Date.now() + config.syncTimeoutMs;
    for (;;) {
      const change = await client.send(new GetChangeCommand({ Id: changeId }));
      if (change.ChangeInfo?.Status === 'INSYNC') return;
      if (Date.now() > deadline) throw new Error(`Route 53 change ${changeId} not INSYNC after ${config.syncTimeoutMs} ms`);
      await new Promise((r) => setTimeout(r, config.syncPollMs));
    }
  }

  async function apply(changes: Change[], comment: string): Promise<string> {
    const result = await client.send(
      new ChangeResourceRecordSetsCommand({ HostedZoneId: await hostedZoneId(), ChangeBatch: { Comment: comment, Changes: changes } }),
    );
    const id = result.ChangeInfo?.Id;
    if (!id) throw new Error('Route 53 returned no change id');
    await waitInSync(id);
    return id;
  }

  return {
    /** The weights of the app's weighted record sets, read back from Route 53. */
    async readWeights(): Promise<TrafficWeights> {
      const sets = await client.send(
        new ListResourceRecordSetsCommand({ HostedZoneId: await hostedZoneId(), StartRecordName: fqdn(config.record), StartRecordType: 'CNAME' }),
      );
      const weights: TrafficWeights = {};
      for (const set of sets.ResourceRecordSets ?? []) {
        if (set.Name === fqdn(config.record) && set.Type === 'CNAME' && set.SetIdentifier !== undefined && set.Weight !== undefined) {
          weights[set.SetIdentifier] = set.Weight;
        }
      }
      return weights;
    },

    /** Sets every given weighted set at once (one change batch) and waits for INSYNC. */
    async setWeights(weights: TrafficWeights, comment: string): Promise<{ changeId: string }> {
      const changes: Change[] = Object.entries(weights).map(([set, weight]) => {
        const target = config.targets[set];
        if (!target) throw ApplicationFailure.nonRetryable(`no DNS target configured for '${set}' (dns.app.targets)`, 'TrafficTargetUnknown');
        return {
          Action: 'UPSERT',
          ResourceRecordSet: {
            Name: fqdn(config.record),
            Type: 'CNAME',
            SetIdentifier: set,
            Weight: weight,
            TTL: config.ttl,
            ResourceRecords: [{ Value: target }],
          },
        };
      });
      return { changeId: await apply(changes, comment) };
    },

    /** Points a database's PRIMARY failover record at the node in `region` (the SECONDARY at `standbyRegion`). */
    async pointDatabase(database: string, region: string, standbyRegion: string, comment: string): Promise<{ changeId: string }> {
      const name = databaseRecordName(config.zone, database);
      const record = (failover: 'PRIMARY' | 'SECONDARY', at: string): Change => ({
        Action: 'UPSERT',
        ResourceRecordSet: {
          Name: name,
          Type: 'CNAME',
          SetIdentifier: `${database}-${failover.toLowerCase()}`,
          Failover: failover,
          TTL: config.ttl,
          ResourceRecords: [{ Value: databaseNodeName(config.zone, database, at) }],
        },
      });
      return { changeId: await apply([record('PRIMARY', region), record('SECONDARY', standbyRegion)], comment) };
    },

    /** The region the PRIMARY failover record of a database names. */
    async databasePrimaryRegion(database: string): Promise<string | undefined> {
      const name = databaseRecordName(config.zone, database);
      const sets = await client.send(new ListResourceRecordSetsCommand({ HostedZoneId: await hostedZoneId(), StartRecordName: name, StartRecordType: 'CNAME' }));
      const primary = sets.ResourceRecordSets?.find((s) => s.Name === name && s.Failover === 'PRIMARY');
      const value = primary?.ResourceRecords?.[0]?.Value;
      return value?.split('.')[1];
    },
  };
}

export type Route53Traffic = ReturnType<typeof createRoute53Traffic>;
