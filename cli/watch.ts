/**
 * `lifeboat status <id> --watch`: follows a run until it ends. On a terminal it
 * redraws in place (progress bar, RTO counting down, red when breached, the
 * command to approve a waiting gate); otherwise it appends one line per change,
 * for logs and CI. The exit code says how the run ended (0: completed).
 */
import type { Client } from '@temporalio/client';
import { isFinalState, statusQuery, type RunbookStatus } from '../contract/runbook';
import { sleep } from '../lib/processes';
import { formatStatus } from './format';
import { runStatus } from './runs';

const RED = '\x1b[31m';
const GREEN = '\x1b[32m';
const BOLD = '\x1b[1m';
const RESET = '\x1b[0m';
const CLEAR = '\x1b[H\x1b[2J';

export function progressBar(status: RunbookStatus, width = 30): string {
  const settled = status.steps.filter((s) => s.state === 'done' || s.state === 'skipped' || s.state === 'compensated').length;
  const filled = Math.round((settled / Math.max(1, status.steps.length)) * width);
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${settled}/${status.steps.length} steps`;
}

/** The full-screen view for a terminal. */
export function renderLive(status: RunbookStatus, now = Date.now()): string {
  const live = !isFinalState(status.state);
  const elapsed = live ? (now - Date.parse(status.detectedAt)) / 1000 : status.rto.elapsedSeconds;
  const left = status.rto.budgetSeconds - elapsed;
  const breached = status.rto.breached || left < 0;
  const clock = `${breached ? RED + BOLD : GREEN}RTO ${breached ? `BREACHED by ${(-left).toFixed(0)}s` : `${left.toFixed(0)}s left`} of ${status.rto.budgetSeconds}s${RESET}`;
  return [`${progressBar(status)}   ${clock}`, '', formatStatus(status, now)].join('\n');
}

/** One line per change, for a log: the phase, each step and gate that changed state, the end. */
export function describeChanges(before: RunbookStatus | undefined, after: RunbookStatus, now = new Date()): string[] {
  const at = now.toISOString().slice(11, 19);
  const lines: string[] = [];
  if (!before || before.state !== after.state || before.phase !== after.phase) lines.push(`${at} ${after.state}: ${after.phase}`);
  for (const step of after.steps) {
    const was = before?.steps.find((s) => s.id === step.id)?.state;
    if (was !== step.state && !(was === undefined && step.state === 'pending')) lines.push(`${at}   step ${step.id}: ${step.state}${step.note ? ` (${step.note})` : ''}`);
  }
  for (const gate of after.gates) {
    const was = before?.gates.find((g) => g.id === gate.id)?.state;
    if (was === gate.state || (was === undefined && gate.state === 'pending')) continue;
    lines.push(
      gate.state === 'waiting'
        ? `${at}   gate ${gate.id} waiting for ${gate.approvers.join(' or ')}: lifeboat approve ${after.workflowId} --gate ${gate.id} --as <approver>`
        : `${at}   gate ${gate.id}: ${gate.state}${gate.decidedBy ? ` by ${gate.decidedBy}` : ''}`,
    );
  }
  if (after.rto.breached && !before?.rto.breached) lines.push(`${at}   RTO budget of ${after.rto.budgetSeconds}s BREACHED`);
  return lines;
}

export interface WatchOptions {
  tty: boolean;
  write: (text: string) => void;
  intervalMs?: number;
}

/** Follows the run until it ends; returns the exit code (0 completed, 1 otherwise). */
export async function watchRun(client: Client, workflowId: string, options: WatchOptions): Promise<number> {
  let previous: RunbookStatus | undefined = await runStatus(client, workflowId);
  if (options.tty) options.write(CLEAR + renderLive(previous) + '\n');
  else options.write(describeChanges(undefined, previous).join('\n') + '\n');
  const handle = client.workflow.getHandle(workflowId);
  while (!isFinalState(previous.state)) {
    await sleep(options.intervalMs ?? 1000);
    let next: RunbookStatus;
    try {
      next = await handle.query(statusQuery);
    } catch {
      continue; // a worker restart or a server hiccup: keep watching
    }
    if (options.tty) options.write(CLEAR + renderLive(next) + '\n');
    else {
      const changes = describeChanges(previous, next);
      if (changes.length > 0) options.write(changes.join('\n') + '\n');
    }
    previous = next;
  }
  const outcome = previous.state === 'completed'
    ? `run ${workflowId} completed; RTO ${previous.rto.measuredSeconds?.toFixed(1) ?? previous.rto.elapsedSeconds.toFixed(1)}s of ${previous.rto.budgetSeconds}s`
    : `run ${workflowId} ended ${previous.state}${previous.error ? `: ${previous.error.message}` : ''}`;
  options.write(`${outcome}\n`);
  return previous.state === 'completed' ? 0 : 1;
}
