/** Builds the real provider clients once, from the validated config, for the activities. */
import type { LoadedConfig } from '../config/load';
import type { DatabaseProvider } from '../activities/database';
import { journalChannel, type NotificationChannel } from '../activities/notify';
import { createPostgresProvider } from '../activities/postgres';
import type { ActivityDependencies } from '../activities';

export function buildActivityDependencies(loaded: LoadedConfig, env: NodeJS.ProcessEnv = process.env): ActivityDependencies {
  const databases = new Map<string, DatabaseProvider>();
  for (const [name, spec] of Object.entries(loaded.config.databases)) {
    const password = spec.passwordEnv ? env[spec.passwordEnv] : undefined;
    if (spec.passwordEnv && password === undefined) {
      throw new Error(`databases.${name}.passwordEnv names ${spec.passwordEnv}, which is not set in the worker's environment`);
    }
    databases.set(name, createPostgresProvider(name, spec, { user: spec.user, password }));
  }
  const channels: NotificationChannel[] = [journalChannel(loaded.journalPath)];
  return { databases, channels };
}
