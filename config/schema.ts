/**
 * The runbook configuration (e.g. runbooks/lab.yaml), validated at the edge:
 * everything after `loadConfig` is typed. Durations are seconds.
 */
import { z } from 'zod';
import { ROLES } from '../contract/runbook';
import { dbPromotionPlan } from '../contract/db-promotion';

/** A runbook's step ids as a non-empty tuple, for z.enum. */
function planStepIds<const Id extends string>(plan: { readonly steps: readonly { readonly id: Id }[] }): [Id, ...Id[]] {
  const [first, ...rest] = plan.steps.map((s) => s.id);
  if (first === undefined) throw new Error('a runbook plan needs at least one step');
  return [first, ...rest];
}

const name = z
  .string()
  .regex(/^[a-z][a-z0-9_-]{0,62}$/, 'use lower-case letters, digits, "-" or "_", starting with a letter');
const seconds = z.number().positive('must be a positive number of seconds');
const port = z.number().int().min(1).max(65535);

const person = z.strictObject({
  name: z.string().optional(),
  roles: z.array(z.enum(ROLES)).min(1, 'give at least one role'),
  email: z.string().optional(),
  phone: z.string().optional(),
});

const node = z.strictObject({
  region: name,
  host: z.string().min(1),
  port,
});

const postgresDatabase = z.strictObject({
  provider: z.literal('postgres'),
  /** Name of the database inside the cluster, used by the write check. */
  database: z.string().min(1),
  user: z.string().min(1).default('postgres'),
  /** Name of the environment variable holding the password (never the password itself). */
  passwordEnv: z.string().optional(),
  primary: node,
  standby: node,
  /** Replication slot the standby streams through (one cluster pair per database). */
  slot: name.default('lifeboat_standby'),
  rpoTargetSeconds: z.number().min(0, 'must be 0 or a positive number of seconds'),
  tier: z.number().int().min(1).max(3).default(1),
});

const gate = z
  .strictObject({
    escalateAfterSeconds: seconds,
    timeoutSeconds: seconds,
  })
  .refine((g) => g.escalateAfterSeconds <= g.timeoutSeconds, {
    message: 'escalateAfterSeconds must not exceed timeoutSeconds',
  });

const rto = z.strictObject({
  budgetSeconds: seconds,
  onBreach: z.enum(['continue', 'rollback']).default('continue'),
});

const dbPromotionRunbook = z.strictObject({
  rto,
  steps: z.partialRecord(z.enum(planStepIds(dbPromotionPlan)), z.strictObject({ budgetSeconds: seconds })).default({}),
  gates: z.strictObject({ promote: gate }),
  catchUpTimeoutSeconds: seconds.default(120),
  compensationAttempts: z.number().int().min(1).max(100).default(5),
});

export const configSchema = z
  .strictObject({
    temporal: z
      .strictObject({
        address: z.string().default('127.0.0.1:7233'),
        namespace: z.string().default('default'),
        taskQueue: z.string().default('lifeboat'),
        uiUrl: z.string().url().optional(),
      })
      .prefault({}),
    lab: z
      .strictObject({
        /** Relative to the config file. */
        stateDir: z.string().default('../.lifeboat/lab'),
        temporal: z.strictObject({ port, uiPort: port }).prefault({ port: 7233, uiPort: 8233 }),
      })
      .prefault({}),
    notifications: z
      .strictObject({
        /** JSON-lines journal every notification is appended to, relative to the config file. */
        journal: z.string().default('../.lifeboat/lab/notifications.jsonl'),
      })
      .prefault({}),
    people: z.record(name, person).refine((p) => Object.keys(p).length > 0, 'configure at least one person'),
    databases: z.record(name, postgresDatabase),
    runbooks: z.strictObject({
      'db-promotion': dbPromotionRunbook,
    }),
  })
  .superRefine((config, ctx) => {
    for (const [db, spec] of Object.entries(config.databases)) {
      if (spec.primary.region === spec.standby.region) {
        ctx.addIssue({ code: 'custom', path: ['databases', db, 'standby', 'region'], message: 'the standby must be in another region than the primary' });
      }
      if (spec.primary.host === spec.standby.host && spec.primary.port === spec.standby.port) {
        ctx.addIssue({ code: 'custom', path: ['databases', db, 'standby', 'port'], message: 'primary and standby must be different servers' });
      }
    }
    const approvers = Object.entries(config.people).filter(([, p]) => p.roles.includes('approver'));
    if (approvers.length === 0) {
      ctx.addIssue({ code: 'custom', path: ['people'], message: 'no person has the approver role: no gate could ever be approved' });
    }
  });

export type LifeboatConfig = z.infer<typeof configSchema>;
export type PostgresDatabaseConfig = LifeboatConfig['databases'][string];
export type DbPromotionRunbookConfig = LifeboatConfig['runbooks']['db-promotion'];
