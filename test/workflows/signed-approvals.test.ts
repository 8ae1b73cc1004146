/**
 * Signed gate decisions end to end: with approvals.signatures required, the run
 * (real workflow, real Temporal) accepts only a decision signed with the
 * approver's configured Ed25519 key, refuses unsigned ones from the CLI and from
 * a raw signal alike, and records who signed.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { decideGate, startRun } from '../../cli/runs';
import { planStart } from '../../cli/start';
import { FailureType } from '../../contract/failures';
import { approveSignal, statusQuery } from '../../contract/runbook';
import { generateApprovalKey } from '../../lib/approval-keys';
import { createTestLab, TEST_PEOPLE, type TestLab } from '../helpers/lab';
import { gateWaiting, startTestTemporal, waitForStatus, type TestTemporal } from '../helpers/temporal';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';

const keys = mkdtempSync(path.join(os.tmpdir(), 'lifeboat-keys-'));
const aliceKey = path.join(keys, 'alice.pem');
const bobKey = path.join(keys, 'bob.pem');
const carolKey = path.join(keys, 'carol.pem');
const alicePublic = generateApprovalKey(aliceKey);
const bobPublic = generateApprovalKey(bobKey);
const carolPublic = generateApprovalKey(carolKey);

let lab: TestLab;
let temporal: TestTemporal;

beforeAll(async () => {
  lab = await createTestLab('signed', {
    extra: {
      people: { ...TEST_PEOPLE, alice: { ...TEST_PEOPLE.alice, publicKey: alicePublic }, bob: { roles: ['approver'], publicKey: bobPublic }, carol: { ...TEST_PEOPLE.carol, publicKey: carolPublic } },
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
    const started = await startRun(temporal.client, lab.loaded, { runbook: 'db-promotion', params: ['database=orders'], as: 'alice', drill: true, id: `signed-${process.pid}`, keyFile: aliceKey });
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

  it('a start must be signed by its initiator: the CLI says so first, the worker refuses a raw or a borrowed-key start', async () => {
    const request = { runbook: 'db-promotion', params: ['database=orders'], as: 'alice', drill: true } as const;
    await expect(startRun(temporal.client, lab.loaded, { ...request, id: `unsigned-${process.pid}` }))
      .rejects.toThrow(`a start must be signed (approvals.signatures: required in ${lab.loaded.file}): pass --key <your private key file> or set LIFEBOAT_APPROVAL_KEY`);

    // A raw start (what `temporal workflow start` sends): the input the CLI would build, unsigned. The worker refuses it.
    const plan = planStart(lab.loaded, { ...request, id: `raw-${process.pid}` });
    const raw = await temporal.client.workflow.start(plan.workflowType, { taskQueue: lab.loaded.config.temporal.taskQueue, workflowId: plan.workflowId, args: [plan.input] });
    const refused = await raw.result().then(() => undefined, (err: unknown) => (err as WorkflowFailedError).cause as ApplicationFailure);
    expect(refused?.type).toBe(FailureType.RunRefused);
    expect(refused?.message).toBe("refused: this worker requires signed starts (approvals.signatures: required): start it with 'lifeboat start … --as alice --key <alice's private key>'");
    expect((await raw.query(statusQuery)).state).toBe('refused');

    // carol is a commander too; she starts as alice with her own key: not alice's signature.
    const borrowed = await startRun(temporal.client, lab.loaded, { ...request, id: `borrowed-${process.pid}`, keyFile: carolKey });
    const handle = temporal.client.workflow.getHandle(borrowed.workflowId);
    const failure = await handle.result().then(() => undefined, (err: unknown) => (err as WorkflowFailedError).cause as ApplicationFailure);
    expect(failure?.type).toBe(FailureType.RunRefused);
    expect(failure?.message).toMatch(/^refused: the start signature is not alice's signature of this start/);
    // Refused at admission: the database was never touched, and no cooldown starts.
    expect((await handle.query(statusQuery)).steps.every((s) => s.state === 'pending')).toBe(true);
  });
});
