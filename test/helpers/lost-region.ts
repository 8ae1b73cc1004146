/**
 * The loss of the lab's east region as the tests cause it, and the unplanned
 * evacuation a person would run then: one procedure, shared by the tests that
 * start from a lost region (test/workflows/regional-evacuation.test.ts,
 * test/workflows/failback-divergence.test.ts).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Client, WorkflowHandle } from '@temporalio/client';
import { decideGate, startRun } from '../../cli/runs';
import { dbPromotionWorkflowId } from '../../contract/db-promotion';
import type { RunbookStatus } from '../../contract/runbook';
import { stopCluster } from '../../lab/postgres';
import { stopPid } from '../../lib/processes';
import type { regionalEvacuation } from '../../workflows';
import type { TestLab } from './lab';
import { gateWaiting, waitForStatus } from './temporal';

/** The lab's daemons by name (lab.json in its state directory), with their pids. */
export function labDaemons(lab: TestLab): Record<string, { pid: number }> {
  return (JSON.parse(readFileSync(path.join(lab.loaded.stateDir, 'lab.json'), 'utf8')) as { daemons: Record<string, { pid: number }> }).daemons;
}

/** Waits for `gate` and approves it as bob. */
export async function approveAsBob(client: Client, lab: TestLab, handle: WorkflowHandle, gate: string, timeoutMs = 240_000): Promise<RunbookStatus> {
  const status = await waitForStatus(handle, gateWaiting(gate), `gate ${gate}`, timeoutMs);
  await decideGate(client, lab.loaded, { workflowId: handle.workflowId, gate, as: 'bob', comment: 'go', decision: 'approve' });
  return status;
}

export interface LostRegionEvacuation {
  handle: WorkflowHandle<typeof regionalEvacuation>;
  /** The detection time the run and its children carry. */
  detectedAt: string;
}

/**
 * SIGKILLs every east primary of `databases` and east's service, then evacuates east unplanned (run id
 * `workflowId`) with both parent gates approved by bob. Each child db-promotion ends promoted or waits
 * at its own gate (its RPO after a kill is an upper bound that may exceed the target); `inspect` sees
 * each child's status first, then a waiting child is approved by carol, as the on-call would.
 */
export async function evacuateLostEast(
  client: Client,
  lab: TestLab,
  databases: readonly string[],
  workflowId: string,
  inspect: (database: string, status: RunbookStatus) => Promise<void> | void = () => undefined,
): Promise<LostRegionEvacuation> {
  for (const name of databases) await stopCluster(lab.lab.clusters(name).primary, 'kill');
  const east = labDaemons(lab)['service-east'];
  if (east) await stopPid(east.pid, 'SIGKILL');
  const detectedAt = new Date().toISOString();
  const started = await startRun(client, lab.loaded, {
    runbook: 'regional-evacuation', params: ['region=east', 'mode=unplanned'], as: 'alice', id: workflowId, drill: true, detectedAt,
  });
  const handle = client.workflow.getHandle<typeof regionalEvacuation>(started.workflowId);
  await approveAsBob(client, lab, handle, 'drain-traffic');
  await approveAsBob(client, lab, handle, 'promote-databases');
  for (const name of databases) {
    const child = client.workflow.getHandle(dbPromotionWorkflowId(name));
    // This evacuation's child (it inherits the run's detection time), not an earlier run with the same id.
    const at = await waitForStatus(child, (s) => s.detectedAt === detectedAt && (s.state === 'completed' || gateWaiting('promote')(s)), `${name}: promoted or waiting at its own gate`, 120_000);
    await inspect(name, at);
    if (at.state !== 'completed') await decideGate(client, lab.loaded, { workflowId: child.workflowId, gate: 'promote', as: 'carol', comment: 'east is gone', decision: 'approve' });
  }
  return { handle, detectedAt };
}
