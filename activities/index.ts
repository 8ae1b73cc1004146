/** All activities a Lifeboat worker registers, built from injected providers and channels. */
import { createBackupActivities, type BackupProvider } from './backup';
import { createDatabaseActivities, type DatabaseProvider } from './database';
import type { Client } from '@temporalio/client';
import { createGovernanceActivities, type GovernanceDependencies } from './governance';
import { createHoldActivities } from './holds';
import { createDivergenceActivities, type DivergenceProvider } from './divergence';
import { createEvidenceActivities, type EvidenceLedger, type EvidenceStore } from './evidence';
import { createNotificationActivities, type NotificationRoutes } from './notify';
import type { Route53Traffic } from './route53';
import type { ServiceControl } from './service';
import { createTrafficActivities } from './traffic';
import { createSentinelActivities, type SentinelDependencies } from './sentinel';

export interface ActivityDependencies {
  databases: ReadonlyMap<string, DatabaseProvider>;
  /** Self-managed PostgreSQL databases: the checks that keep what a rebuild would discard (host-bound). */
  divergence?: ReadonlyMap<string, DivergenceProvider>;
  /** Databases with `backup:` in the config. */
  backups: ReadonlyMap<string, BackupProvider>;
  /** Where runs' evidence chains are stored (bucket, local mirror). */
  evidence?: readonly EvidenceStore[];
  /** Where runs' final heads are anchored under Object Lock (evidence.ledger). */
  evidenceLedger?: EvidenceLedger;
  /** Run once before the worker polls (e.g. resolve cloud credentials), so a misconfigured worker fails at start. */
  startupChecks?: ReadonlyArray<() => Promise<void>>;
  notifications: { routes: NotificationRoutes; record: (entry: Record<string, unknown>) => Promise<void> };
  traffic?: Route53Traffic;
  services?: ServiceControl;
  /** The worker's Temporal client (target holds read the server); set by createLifeboatWorker. */
  temporal?: Client;
  /** The worker's trusted policy (people, keys, gate rules) that runs are admitted with. */
  governance?: GovernanceDependencies;
  /** Sentinels' rules, probes and starts (the worker's config); the probes' region is `region`. */
  sentinel?: Omit<SentinelDependencies, 'region'>;
  /** The region of a host worker (`lifeboat worker --region`); set by createLifeboatWorker. */
  region?: string;
}

export function createActivities(deps: ActivityDependencies) {
  return {
    ...createDatabaseActivities({ providers: deps.databases }),
    ...createDivergenceActivities({ providers: deps.divergence ?? new Map() }),
    ...createBackupActivities({ providers: deps.backups }),
    ...createEvidenceActivities({ stores: deps.evidence ?? [], ledger: deps.evidenceLedger }),
    ...createNotificationActivities(deps.notifications),
    ...createTrafficActivities({ traffic: deps.traffic, services: deps.services }),
    ...createHoldActivities({ client: deps.temporal }),
    ...createGovernanceActivities({ governance: deps.governance, client: deps.temporal }),
    ...createSentinelActivities({ sentinel: deps.sentinel ? { ...deps.sentinel, region: deps.region } : undefined, client: deps.temporal }),
  };
}

export type LifeboatActivities = ReturnType<typeof createActivities>;
