/**
 * `lifeboat sentinel start|stop|status` and `lifeboat veto`: the sentinels the
 * config asks for (one per watched database and region), started idempotently
 * on the worker's task queue, read through their query.
 */
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import type { LoadedConfig } from '../config/load';
import { ROLE_SETS, sentinelStatusQuery, statusQuery, stopSentinelSignal } from '../contract/runbook';
import { describeVotes, quorumOf, sentinelId, type SentinelStatus, type SentinelTarget } from '../contract/sentinel';
import { temporalTarget } from '../lib/temporal';
import { requirePerson, UsageError } from './runbooks/common';
import { decideGate, RunRefusedError } from './runs';
import type { DecideResult } from '../contract/runbook';

/** The targets the config's sentinels watch, or those of them named (`orders`, `region:east`). */
export function sentinelTargets(loaded: LoadedConfig, names: readonly string[] = []): SentinelTarget[] {
  const s = loaded.config.sentinels;
  if (!s) throw new UsageError(`no sentinels: in ${loaded.file}: configure sentinels (identity, regions, databases, services) first`);
  const all: SentinelTarget[] = [
    ...s.databases.map((database) => ({ kind: 'database' as const, database })),
    ...s.services.map((region) => ({ kind: 'region' as const, region })),
  ];
  if (names.length === 0) return all;
  return names.map((n) => {
    const found = all.find((t) => (t.kind === 'database' ? t.database === n : `region:${t.region}` === n));
    if (!found) throw new UsageError(`'${n}' is not watched: the config's sentinels watch ${all.map((t) => (t.kind === 'database' ? t.database : `region:${t.region}`)).join(', ')}`);
    return found;
  });
}

export async function startSentinels(client: Client, loaded: LoadedConfig, as: string | undefined, names: readonly string[] = []): Promise<Array<{ workflowId: string; runId: string; started: boolean }>> {
  requirePerson(loaded, as, ROLE_SETS.sentinels, 'start sentinels');
  const { taskQueue } = temporalTarget(loaded);
  const out = [];
  for (const target of sentinelTargets(loaded, names)) {
    const workflowId = sentinelId(target);
    const running = await client.workflow.getHandle(workflowId).describe().then((d) => d.status.name === 'RUNNING', (err: unknown) => {
      if (err instanceof WorkflowNotFoundError) return false;
      throw err;
    });
    const handle = await client.workflow.start('sentinel', {
      taskQueue,
      workflowId,
      args: [{ target }],
      // One sentinel per target: starting again keeps the running one.
      workflowIdConflictPolicy: 'USE_EXISTING',
      staticSummary: `sentinel of ${target.kind === 'database' ? `database ${target.database}` : `region ${target.region}`}`,
    });
    out.push({ workflowId, runId: handle.firstExecutionRunId, started: !running });
  }
  return out;
}

export async function stopSentinels(client: Client, loaded: LoadedConfig, as: string | undefined, reason: string | undefined, names: readonly string[] = []): Promise<string[]> {
  const by = requirePerson(loaded, as, ROLE_SETS.sentinels, 'stop sentinels');
  const stopped: string[] = [];
  for (const target of sentinelTargets(loaded, names)) {
    const id = sentinelId(target);
    try {
      await client.workflow.getHandle(id).signal(stopSentinelSignal, { by, ...(reason ? { reason } : {}) });
      stopped.push(id);
    } catch (err) {
      if (!(err instanceof WorkflowNotFoundError)) throw err; // not running: nothing to stop
    }
  }
  return stopped;
}

export type SentinelReading = { workflowId: string; target: SentinelTarget } & ({ running: true; status: SentinelStatus } | { running: false; why: string });

export async function readSentinels(client: Client, loaded: LoadedConfig, names: readonly string[] = []): Promise<SentinelReading[]> {
  const out: SentinelReading[] = [];
  for (const target of sentinelTargets(loaded, names)) {
    const workflowId = sentinelId(target);
    try {
      const handle = client.workflow.getHandle(workflowId);
      const description = await handle.describe();
      if (description.status.name !== 'RUNNING') out.push({ workflowId, target, running: false, why: `not running (${description.status.name.toLowerCase()})` });
      else out.push({ workflowId, target, running: true, status: await handle.query(sentinelStatusQuery) });
    } catch (err) {
      if (!(err instanceof WorkflowNotFoundError)) throw err;
      out.push({ workflowId, target, running: false, why: "not started: 'lifeboat sentinel start'" });
    }
  }
  return out;
}

export function formatSentinels(readings: readonly SentinelReading[]): string {
  const lines: string[] = [];
  for (const r of readings) {
    if (!r.running) {
      lines.push(`${r.workflowId}: ${r.why}`);
      continue;
    }
    const s = r.status;
    lines.push(`${r.workflowId}: ${s.state}${s.holding ? ` (${s.holding})` : ''}; policy ${s.rules.policy}, every ${s.rules.healthCheckIntervalSeconds}s, threshold ${s.rules.failoverThresholdSeconds}s, quorum ${quorumOf(s.rules.regions.length)} of ${s.rules.regions.length}; ${s.rounds} rounds`);
    for (const v of Object.values(s.views)) {
      lines.push(`  ${v.region.padEnd(10)} ${v.last.padEnd(9)} ${v.failingSince ? `failing since ${v.failingSince} ` : ''}${v.lastProbeAt ? `probed ${v.lastProbeAt}` : ''}${v.lastDetail ? ` — ${v.lastDetail}` : ''}`);
    }
    const last = s.declarations.at(-1);
    if (last) lines.push(`  last declaration ${last.trigger.declaredAt}: ${last.workflowId ? `started ${last.workflowId}` : last.refused === 'notify' ? 'paged only (notify)' : `refused: ${last.refused ?? 'starting'}`}; ${describeVotes(last.trigger)}`);
  }
  return lines.join('\n');
}

/** `lifeboat veto`: rejects the run's waiting gate (a sentinel's veto window, or any gate) with the reason. */
export async function vetoRun(client: Client, loaded: LoadedConfig, command: { workflowId: string; as?: string; reason: string; keyFile?: string }): Promise<DecideResult> {
  let status;
  try {
    status = await client.workflow.getHandle(command.workflowId).query(statusQuery);
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) throw new RunRefusedError(`no run with id '${command.workflowId}': check the id (the sentinel's page names it)`);
    throw err;
  }
  const waiting = status.gates.find((g) => g.state === 'waiting');
  if (!waiting) {
    throw new RunRefusedError(`no gate of ${command.workflowId} is waiting (state ${status.state}): nothing to veto; to stop the run use 'lifeboat cancel ${command.workflowId}'`);
  }
  return decideGate(client, loaded, { workflowId: command.workflowId, gate: waiting.id, as: command.as, comment: `veto: ${command.reason}`, decision: 'reject', keyFile: command.keyFile });
}
