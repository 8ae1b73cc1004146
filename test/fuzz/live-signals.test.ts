/**
 * Generated bad input sent to a LIVE run on the real server: approve, reject and
 * resolve signals and decide and cancel Updates with wrong types, huge strings,
 * unknown gates and people, stale nonces. Each Update is refused with a reason,
 * each signal is refused and recorded, no workflow task fails, and the run's
 * state does not move: afterwards a proper approval still completes it.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decideGate, startRun } from '../../cli/runs';
import { approveSignal, decideUpdate, rejectSignal, requestCancelUpdate, resolveSignal, statusQuery } from '../../contract/runbook';
import { createTestLab, type TestLab } from '../helpers/lab';
import { gateWaiting, startTestTemporal, waitForStatus, type TestTemporal } from '../helpers/temporal';

const SEED = Number(process.env.LIFEBOAT_FUZZ_SEED ?? 20261123);
const INPUTS = 120;

let lab: TestLab;
let temporal: TestTemporal;

beforeAll(async () => {
  lab = await createTestLab('live-fuzz');
  temporal = await startTestTemporal(lab.loaded);
});

afterAll(async () => {
  await temporal?.close();
  await lab?.destroy();
});

/** Who may never decide this run's gate or cancel it: the initiator, a viewer, unknown names, junk. */
const notAllowed = fc.oneof(fc.constantFrom('alice', 'dave', 'mallory', '', ' ', '__proto__', 'constructor', 'x'.repeat(10_000)), fc.jsonValue());
const field = fc.oneof(fc.constantFrom('promote', 'nope', '', '__proto__', 'y'.repeat(20_000)), fc.jsonValue());
const payload = fc.oneof(
  fc.record({ gate: field, approver: notAllowed, comment: fc.oneof(fc.string(), fc.jsonValue()), nonce: field, decision: field, signature: field }, { requiredKeys: [] }),
  fc.record({ by: fc.oneof(notAllowed, fc.constant('bob')), reason: fc.oneof(fc.string(), fc.jsonValue()), action: field, comment: field }, { requiredKeys: [] }),
  fc.jsonValue(),
);
const channel = fc.constantFrom('approve', 'reject', 'resolve', 'decide', 'cancel');

describe('fuzzing a live run', () => {
  it('bad signals and Updates are refused, recorded, and change nothing; no workflow task fails', async () => {
    const started = await startRun(temporal.client, lab.loaded, { runbook: 'db-promotion', params: ['database=orders'], as: 'alice', drill: true, id: `live-fuzz-${process.pid}` });
    const handle = temporal.client.workflow.getHandle(started.workflowId);
    const before = await waitForStatus(handle, gateWaiting('promote'), 'gate promote');

    const inputs = fc.sample(fc.tuple(channel, payload), { numRuns: INPUTS, seed: SEED });
    let updatesRefused = 0;
    let signalsSent = 0;
    for (const [via, input] of inputs) {
      if (via === 'decide' || via === 'cancel') {
        const update = via === 'decide' ? decideUpdate : requestCancelUpdate;
        const outcome = await handle.executeUpdate(update as typeof decideUpdate, { args: [input as never] }).then(() => 'accepted', (err: Error) => (err.cause as Error | undefined)?.message ?? err.message);
        expect(outcome, JSON.stringify(input).slice(0, 200)).not.toBe('accepted');
        expect(typeof outcome === 'string' && outcome.length > 0).toBe(true);
        updatesRefused++;
      } else {
        const signal = via === 'approve' ? approveSignal : via === 'reject' ? rejectSignal : resolveSignal;
        await handle.signal(signal as typeof approveSignal, input as never);
        signalsSent++;
      }
    }
    expect(updatesRefused + signalsSent).toBe(INPUTS);

    const after = await handle.query(statusQuery);
    expect(after.state).toBe('waiting-approval');
    expect(after.gates).toEqual(before.gates);
    expect(after.steps).toEqual(before.steps);
    const history = await handle.fetchHistory();
    expect((history.events ?? []).filter((e) => e.workflowTaskFailedEventAttributes)).toEqual([]);

    // The run is intact: a proper approval completes it.
    await decideGate(temporal.client, lab.loaded, { workflowId: started.workflowId, gate: 'promote', as: 'bob', decision: 'approve', comment: 'after the fuzz' });
    const result = await handle.result();
    expect(result.database).toBe('orders');
  });
});
