/**
 * Signed gate decisions end to end: with approvals.signatures required, the run
 * (real workflow, real Temporal) accepts only a decision signed with the
 * approver's configured Ed25519 key, refuses unsigned ones from the CLI and from
 * a raw signal alike, and records who signed.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decideGate, startRun } from '../../cli/runs';
import { approveSignal, statusQuery } from '../../contract/runbook';
import { generateApprovalKey } from '../../lib/approval-keys';
import { createTestLab, TEST_PEOPLE, type TestLab } from '../helpers/lab';
import { gateWaiting, startTestTemporal, waitForStatus, type TestTemporal } from '../helpers/temporal';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';

const keys = mkdtempSync(path.join(os.tmpdir(), 'lifeboat-keys-'));
const bobKey = path.join(keys, 'bob.pem');
const carolKey = path.join(keys, 'carol.pem');
const bobPublic = generateApprovalKey(bobKey);
const carolPublic = generateApprovalKey(carolKey);

let lab: TestLab;
let temporal: TestTemporal;

beforeAll(async () => {
  lab = await createTestLab('signed', {
    extra: {
      people: { ...TEST_PEOPLE, bob: { roles: ['approver'], publicKey: bobPublic }, carol: { ...TEST_PEOPLE.carol, publicKey: carolPublic } },
      approvals: { signatures: 'required' },
    },
  });
  temporal = await startTestTemporal(lab.loaded);
});

afterAll(async () => {
  await temporal?.close();
  await lab?.destroy();
});

describe('signed approvals', () => {
  it('refuses unsigned and wrongly signed decisions (CLI and raw signal), accepts the approver’s own signature', async () => {
    const started = await startRun(temporal.client, lab.loaded, { runbook: 'db-promotion', params: ['database=orders'], as: 'alice', drill: true, id: `signed-${process.pid}` });
    const handle = temporal.client.workflow.getHandle(started.workflowId);
    await waitForStatus(handle, gateWaiting('promote'), 'gate promote');

    await expect(decideGate(temporal.client, lab.loaded, { workflowId: started.workflowId, gate: 'promote', as: 'bob', decision: 'approve' }))
      .rejects.toThrow("refused: gate decisions on this run must be signed (approvals.signatures: required): sign with 'lifeboat approve --key <file>'");
    // bob claiming to be bob with carol's key: the signature does not verify against bob's public key.
    await expect(decideGate(temporal.client, lab.loaded, { workflowId: started.workflowId, gate: 'promote', as: 'bob', decision: 'approve', keyFile: carolKey }))
      .rejects.toThrow(/the signature is not bob's signature of this decision/);
    // A raw signal cannot bypass the rule: refused and recorded.
    await handle.signal(approveSignal, { gate: 'promote', approver: 'bob', comment: 'raw' });
    const refused = await waitForStatus(handle, (s) => s.events.some((e) => e.kind === 'decision-refused' && /must be signed/.test(e.detail)), 'the refused signal to be recorded');
    expect(refused.gates[0]?.state).toBe('waiting');

    const decided = await decideGate(temporal.client, lab.loaded, { workflowId: started.workflowId, gate: 'promote', as: 'bob', decision: 'approve', comment: 'lag 0', keyFile: bobKey });
    expect(decided).toMatchObject({ gate: 'promote', state: 'approved', decidedBy: 'bob' });
    await handle.result();
    const status = await handle.query(statusQuery);
    expect(status.gates[0]?.approvals).toEqual([expect.objectContaining({ by: 'bob', signed: true, comment: 'lag 0' })]);
    expect(status.events.some((e) => e.kind === 'gate-approved' && e.detail === 'gate promote approved by bob (signed): lag 0')).toBe(true);
  });
});
