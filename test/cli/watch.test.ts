/** The live view's rendering, from a status as the workflow's query returns it. */
import { describe, expect, it } from 'vitest';
import { describeChanges, progressBar, renderLive } from '../../cli/watch';
import type { RunbookStatus } from '../../contract/runbook';

function status(overrides: Partial<RunbookStatus> = {}): RunbookStatus {
  return {
    workflowId: 'regional-evacuation:east',
    runbook: 'regional-evacuation',
    phase: 'gate drain-traffic',
    state: 'waiting-approval',
    initiator: 'alice',
    detectedAt: '2026-11-23T03:00:00.000Z',
    drill: false,
    target: 'east',
    steps: [
      { id: 'declare', title: 'Declare', state: 'done', irreversible: false, budgetBreached: false, pastPointOfNoReturn: false, startedAt: '2026-11-23T03:00:01.000Z', endedAt: '2026-11-23T03:00:02.000Z' },
      { id: 'freeze-writes', title: 'Freeze', state: 'skipped', irreversible: false, budgetBreached: false, pastPointOfNoReturn: false, note: 'service unreachable' },
      { id: 'drain-traffic', title: 'Drain', state: 'pending', irreversible: false, budgetBreached: false, pastPointOfNoReturn: false },
      { id: 'promote-databases', title: 'Promote', state: 'pending', irreversible: true, budgetBreached: false, pastPointOfNoReturn: false },
    ],
    gates: [{ id: 'drain-traffic', title: 'Drain?', state: 'waiting', approvers: ['bob', 'carol'], required: 1, approvals: [] }],
    rto: { budgetSeconds: 600, elapsedSeconds: 0, remainingSeconds: 600, breached: false, onBreach: 'continue' },
    rpo: { targetSeconds: 5 },
    pointOfNoReturnPassed: false,
    rollbackAvailable: true,
    events: [],
    children: [],
    notifications: { delivered: 2, pending: 0, failedRounds: 0 },
    ...overrides,
  } as RunbookStatus;
}

describe('status --watch rendering', () => {
  it('a progress bar of settled steps, the RTO counting down in green, the command to approve', () => {
    const view = renderLive(status(), Date.parse('2026-11-23T03:01:40.000Z'));
    expect(progressBar(status(), 8)).toBe('[####....] 2/4 steps');
    expect(view).toContain('\x1b[32mRTO 500s left of 600s\x1b[0m');
    expect(view).toContain('lifeboat approve regional-evacuation:east --gate drain-traffic --as <approver>');
  });

  it('turns red once the budget is gone', () => {
    const view = renderLive(status(), Date.parse('2026-11-23T03:12:00.000Z'));
    expect(view).toContain('\x1b[31m\x1b[1mRTO BREACHED by 120s of 600s\x1b[0m');
  });

  it('appends one line per change: state, steps, gates, breach', () => {
    const before = status();
    const after = status({
      state: 'running',
      phase: 'drain-traffic',
      steps: before.steps.map((s) => (s.id === 'drain-traffic' ? { ...s, state: 'running' as const } : s)),
      gates: [{ ...before.gates[0]!, state: 'approved', decidedBy: 'bob' }],
      rto: { ...before.rto, breached: true },
    });
    const lines = describeChanges(before, after, new Date('2026-11-23T03:02:03.000Z'));
    expect(lines).toEqual([
      '03:02:03 running: drain-traffic',
      '03:02:03   step drain-traffic: running',
      '03:02:03   gate drain-traffic: approved by bob',
      '03:02:03   RTO budget of 600s BREACHED',
    ]);
    expect(describeChanges(after, after)).toEqual([]);
  });
});
