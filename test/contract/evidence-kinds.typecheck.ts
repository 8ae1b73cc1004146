/**
 * A type-level test, checked by `tsc -p tsconfig.test.json` and never run: an
 * evidence record is discriminated by its kind, so a gate's record names its
 * gate and a step's its step, both where the kernel records them and where a
 * reader narrows them.
 */
import type { EvidenceRecord } from '../../contract/evidence';
import type { RunLedger } from '../../workflows/kernel/ledger';

export function recording(ledger: RunLedger): void {
  ledger.record('gate-opened', 'gate promote waits', { gate: 'promote' });
  ledger.record('step-failed', 'step promote failed', { step: 'promote' });
  ledger.record('escalation', 'still waiting');
  // @ts-expect-error a gate's record must name its gate
  ledger.record('gate-approved', 'approved by bob', { by: 'bob' });
  // @ts-expect-error a step's record must name its step
  ledger.record('compensation-failed', 'undo failed');
}

export function reading(record: EvidenceRecord): string | undefined {
  if (record.kind === 'gate-approved') {
    const gate: string = record.gate;
    return gate;
  }
  if (record.kind === 'step-done') {
    const step: string = record.step;
    return step;
  }
  // @ts-expect-error a run-level record need not name a gate
  const gate: string = record.gate;
  return gate;
}
