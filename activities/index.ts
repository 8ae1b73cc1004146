/** All activities a Lifeboat worker registers, built from injected providers and channels. */
import { createDatabaseActivities, type DatabaseProvider } from './database';
import { createNotificationActivities, type NotificationChannel } from './notify';

export interface ActivityDependencies {
  databases: ReadonlyMap<string, DatabaseProvider>;
  channels: readonly NotificationChannel[];
}

export function createActivities(deps: ActivityDependencies) {
  return {
    ...createDatabaseActivities({ providers: deps.databases }),
    ...createNotificationActivities({ channels: deps.channels }),
  };
}

export type LifeboatActivities = ReturnType<typeof createActivities>;
