/** Plain-text rendering of a run's status for the terminal. */
import { isFinalState, type RunbookStatus } from '../contract/runbook';
import { describeReplication, describeRpo } from '../contract/rpo';

const pad = (s: string, n: number) => (s.length >= n ? s : s + ' '.repeat(n - s.length));

function duration(startedAt?: string, endedAt?: string, now = Date.now()): string {
  if (!startedAt) return '';
  const end = endedAt ? Date.parse(endedAt) : now;
  return `${((end - Date.parse(startedAt)) / 1000).toFixed(1)}s`;
}

/** Elapsed RTO is computed here for a live run: the workflow only knows its last activation's time. */
export function formatStatus(status: RunbookStatus, now = Date.now()): string {
  const live = !isFinalState(status.state);
  const elapsed = live ? (now - Date.parse(status.detectedAt)) / 1000 : status.rto.elapsedSeconds;
  const remaining = status.rto.budgetSeconds - elapsed;
  const lines = [
    `${status.workflowId}  ${status.runbook} on ${status.target}${status.drill ? ' (drill)' : ''}`,
    `state: ${status.state}   phase: ${status.phase}   initiator: ${status.initiator}${status.incident ? `   incident: ${status.incident}` : ''}`,
    `RTO: budget ${status.rto.budgetSeconds}s, elapsed ${elapsed.toFixed(1)}s, ${status.rto.breached ? `BREACHED at ${status.rto.breachedAt ?? '?'}` : `${remaining.toFixed(1)}s left`}` +
      (status.rto.measuredSeconds !== undefined ? `, measured ${status.rto.measuredSeconds.toFixed(1)}s` : ''),
    `RPO: ${describeRpo(status.rpo)}${status.rpo.verdict ? `: ${status.rpo.verdict}` : ''}`,
    ...(status.replication ?? []).map((r) => `  ${describeReplication(r)}: ${r.verdict}`),
    `rollback: ${status.rollbackAvailable ? 'available' : 'no longer offered (past the point of no return)'}`,
    '',
    'steps:',
    ...status.steps.map(
      (s) =>
        `  ${pad(s.state, 12)} ${pad(s.id, 22)} ${pad(duration(s.startedAt, s.endedAt, now), 8)} ${s.title}${s.irreversible ? '  [point of no return]' : ''}` +
        `${s.budgetBreached ? '  [over budget]' : ''}${s.note ? `\n${' '.repeat(16)}${s.note}` : ''}`,
    ),
    'gates:',
    ...status.gates.map((g) => {
      const decided = g.decidedBy ? ` by ${g.decidedBy} at ${g.decidedAt ?? '?'}${g.comment ? ` (${g.comment})` : ''}` : '';
      const waiting = g.state === 'waiting'
        ? `\n${' '.repeat(16)}approvers: ${g.approvers.join(', ')}\n${' '.repeat(16)}lifeboat approve ${status.workflowId} --gate ${g.id} --as <approver>`
        : '';
      return `  ${pad(g.state, 12)} ${pad(g.id, 22)}${decided}${waiting}`;
    }),
  ];
  if (status.error) lines.push('', `error (${status.error.type}): ${status.error.message}`);
  const recent = status.events.slice(-8);
  if (recent.length > 0) {
    lines.push('', 'recent events:', ...recent.map((e) => `  ${e.at}  ${pad(e.kind, 18)} ${e.by ? `${e.by}: ` : ''}${e.detail}`));
  }
  return lines.join('\n');
}
