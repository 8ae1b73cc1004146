/**
 * The kernel's rehearsal runbook (test/workflows/kernel/workflows.ts) run on a
 * worker of the test's own, against a test lab's Temporal namespace, with the
 * activities the test gives (fakes, or the lab's real stores and channels).
 */
import path from 'node:path';
import type { Client, WorkflowHandle } from '@temporalio/client';
import { bundleWorkflowCode, NativeConnection, Worker } from '@temporalio/worker';
import type { RehearsalInput } from '../workflows/kernel/workflows';
import type { TestLab } from './lab';
import { createGovernanceActivities } from '../../activities/governance';
import { workerGovernance } from '../../workers/dependencies';

let bundle: { code: string } | undefined;
let runs = 0;

/** Starts one rehearsal (alice initiates, bob may approve) on its own task queue and runs `test` while the worker polls. */
export async function withRehearsal(lab: TestLab, client: Client, name: string, activities: object, test: (handle: WorkflowHandle) => Promise<void>): Promise<void> {
  bundle ??= await bundleWorkflowCode({ workflowsPath: path.join(__dirname, '..', 'workflows', 'kernel', 'workflows.ts') });
  const taskQueue = `${name}-${process.pid}-${++runs}`;
  const connection = await NativeConnection.connect({ address: lab.loaded.config.temporal.address });
  // Admission as in production: the lab config's policy, checked by the real activity (the test's activities come on top).
  const admission = createGovernanceActivities({ governance: workerGovernance(lab.loaded), client });
  const worker = await Worker.create({ connection, namespace: lab.loaded.config.temporal.namespace, taskQueue, workflowBundle: bundle, activities: { ...admission, ...activities } });
  const input: RehearsalInput = {
    run: { initiator: 'alice', detectedAt: new Date().toISOString(), drill: true, people: { alice: ['commander'], bob: ['approver'] } },
    rto: { budgetSeconds: 3600, onBreach: 'continue' },
    gate: { escalateAfterSeconds: 600, timeoutSeconds: 1200 },
    compensationAttempts: 1,
  };
  try {
    await worker.runUntil(async () => test(await client.workflow.start('rehearsal', { taskQueue, workflowId: `${taskQueue}-run`, args: [input] })));
  } finally {
    await connection.close();
  }
}
