/**
 * One lab per test file whose `orders` has two standbys (west, the configured one, and central), with a
 * worker on the file's own task queue, and a start of db-promotion as alice under a unique id.
 */
import type { WorkflowHandle } from '@temporalio/client';
import { afterAll, beforeAll } from 'vitest';
import { startRun } from '../../cli/runs';
import { postgresDatabase, type PostgresNodeConfig } from '../../config/load';
import type { dbPromotion } from '../../workflows';
import { createTestLab, type TestLab } from './lab';
import { startTestTemporal, type TestTemporal } from './temporal';

export interface SeveralStandbys {
  readonly lab: TestLab;
  readonly temporal: TestTemporal;
  orders(): ReturnType<typeof postgresDatabase>;
  central(): PostgresNodeConfig;
  start(params: string[]): Promise<WorkflowHandle<typeof dbPromotion>>;
}

/** Registers the file's beforeAll/afterAll; the accessors work inside its tests. */
export function severalStandbysLab(name: string): SeveralStandbys {
  let lab: TestLab | undefined;
  let temporal: TestTemporal | undefined;
  let counter = 0;
  beforeAll(async () => {
    lab = await createTestLab(name, { standbys: ['central'] });
    temporal = await startTestTemporal(lab.loaded);
  }, 240_000);
  afterAll(async () => {
    await temporal?.close();
    await lab?.destroy();
  });
  const need = () => {
    if (!lab || !temporal) throw new Error('the lab did not start (see beforeAll)');
    return { lab, temporal };
  };
  return {
    get lab() {
      return need().lab;
    },
    get temporal() {
      return need().temporal;
    },
    orders: () => postgresDatabase(need().lab.loaded.config, 'orders'),
    central: () => postgresDatabase(need().lab.loaded.config, 'orders').standbys[0] as PostgresNodeConfig,
    async start(params) {
      const { lab: l, temporal: t } = need();
      const started = await startRun(t.client, l.loaded, { runbook: 'db-promotion', params: ['database=orders', ...params], as: 'alice', id: `db-promotion:orders:${name}-${process.pid}-${++counter}`, drill: true });
      return t.client.workflow.getHandle<typeof dbPromotion>(started.workflowId);
    },
  };
}
