/** Renders a run's status as Markdown for the Temporal UI's "current details". */
import type { RunbookStatus, StepState, GateState } from '../../contract/runbook';
import { describeRpo, replicationCells } from '../../contract/rpo';

const STEP_MARK: Record<StepState, string> = {
  pending: '·',
  running: '▶',
  done: '✔',
  failed: '✖',
  compensated: '↺',
  skipped: '–',
};

const GATE_MARK: Record<GateState, string> = {
  pending: '·',
  waiting: '⏸',
  approved: '✔',
  rejected: '✖',
  'timed-out': '⌛',
  cancelled: '–',
};

export function renderStatusMarkdown(status: RunbookStatus): string {
  const rto = status.rto;
  const lines = [
    `**${status.runbook}** on \`${status.target}\`${status.drill ? ' (drill)' : ''}: **${status.state}**, phase _${status.phase}_`,
    `Initiator ${status.initiator}${status.incident ? `, incident ${status.incident}` : ''}, detected ${status.detectedAt}`,
    `RTO budget ${rto.budgetSeconds}s: ${rto.breached ? `**BREACHED** at ${rto.breachedAt ?? '?'}` : `${Math.round(rto.remainingSeconds)}s left`}` +
      (rto.measuredSeconds !== undefined ? `, measured ${rto.measuredSeconds.toFixed(1)}s` : ''),
    `RPO ${describeRpo(status.rpo)}`,
    ...replicationTable(status),
    '',
    '| | step | state |',
    '|---|---|---|',
    ...status.steps.map(
      (s) => `| ${STEP_MARK[s.state]} | ${s.title}${s.irreversible ? ' **(point of no return)**' : ''} | ${s.state}${s.budgetBreached ? ' (over budget)' : ''}${s.note ? `: ${s.note}` : ''} |`,
    ),
    '',
    ...status.gates.map(
      (g) => `${GATE_MARK[g.state]} gate **${g.id}**: ${g.state}${g.decidedBy ? ` by ${g.decidedBy}` : ''}${g.state === 'waiting' ? ` (approvers: ${g.approvers.join(', ')})` : ''}`,
    ),
  ];
  for (const a of status.artifacts ?? []) lines.push('', `📄 ${a.title} (${a.kind} \`${a.name}\`, sha256 ${a.digest.slice(0, 12)}…)`);
  if (status.error) lines.push('', `Error (${status.error.type}): ${status.error.message}`);
  return lines.join('\n');
}

/** A parent run's per-database reading, taken before its point-of-no-return gate. */
function replicationTable(status: RunbookStatus): string[] {
  const rows = status.replication ?? [];
  if (rows.length === 0) return [];
  return [
    '',
    `RPO per database, read before the gate (${rows[0]?.inspectedAt ?? '?'}):`,
    '',
    '| database | standby | streaming | WAL not replayed | lag | RPO |',
    '|---|---|---|---|---|---|',
    ...rows.map((r) => {
      const c = replicationCells(r);
      return `| ${r.database} | ${c.standby} | ${c.streaming} | ${c.bytes} | ${c.seconds} | ${c.verdict}: ${r.verdict} |`;
    }),
  ];
}
