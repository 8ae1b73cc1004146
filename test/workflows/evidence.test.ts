/**
 * The evidence chain of a real run: stored in the evidence bucket (versitygw,
 * on disk) and the local mirror, verified against the head in the run's
 * result; editing, deleting or truncating records is detected at the right
 * position, also in an exported bundle verified offline. The run's head is
 * anchored in the Object Lock ledger: a chain rewritten consistently, with the
 * ledger entry overwritten too, still fails against the ledger's first version,
 * which the server will not delete.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { DeleteObjectCommand, GetObjectRetentionCommand, ListObjectVersionsCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { ApplicationFailure } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { approveSignal, decideUpdate, statusQuery } from '../../contract/runbook';
import { createNotificationActivities } from '../../activities/notify';
import { stopPid } from '../../lib/processes';
import { buildActivityDependencies } from '../../workers/dependencies';
import type { EvidenceKeeperResult } from '../../contract/evidence';
import { withRehearsal } from '../helpers/rehearsal';
import type { RehearsalActivities } from './kernel/workflows';
import { exportRunEvidence, formatEvidenceReport, verifyBundle, verifyRunEvidence } from '../../cli/evidence';
import { createEvidenceActivities, s3EvidenceLedger } from '../../activities/evidence';
import { createRetainedObjectStore } from '../../activities/s3';
import { decideGate, startRun } from '../../cli/runs';
import { writeReport } from '../../cli/report';
import { dryRun, formatDryRun } from '../../cli/dry-run';
import { canonicalJson, GENESIS, LEDGER_REFUSED, ledgerKey, sealRecord, verifyChain, type EvidenceHead, type EvidenceRecord } from '../../contract/evidence';
import { createTestLab, testConfig, type TestLab } from '../helpers/lab';
import { configSchema } from '../../config/schema';
import { gateWaiting, startTestTemporal, waitForStatus, type TestTemporal } from '../helpers/temporal';

let lab: TestLab;
let temporal: TestTemporal;
let workflowId: string;
let runId: string;
let stored: string;
let original: string;

beforeAll(async () => {
  lab = await createTestLab('evidence', { databases: ['orders'], backups: true, ledger: true });
  temporal = await startTestTemporal(lab.loaded);
  const started = await startRun(temporal.client, lab.loaded, { runbook: 'db-promotion', params: ['database=orders'], as: 'alice', drill: true, id: `evidence-${process.pid}` });
  workflowId = started.workflowId;
  runId = started.runId;
  const handle = temporal.client.workflow.getHandle(workflowId);
  await waitForStatus(handle, gateWaiting('promote'), 'gate promote');
  // A refused decision is evidence too: the initiator approving her own run through a raw signal.
  await handle.signal(approveSignal, { gate: 'promote', approver: 'alice' });
  await waitForStatus(handle, (s) => s.events.some((e) => e.kind === 'decision-refused'), 'the refusal');
  await decideGate(temporal.client, lab.loaded, { workflowId, gate: 'promote', as: 'bob', decision: 'approve', comment: 'go' });
  await handle.result();
  stored = path.join(lab.loaded.stateDir, 's3', 'data', 'lifeboat-evidence', 'evidence', workflowId, `${runId}.jsonl`);
  original = readFileSync(stored, 'utf8');
});

afterAll(async () => {
  await temporal?.close();
  await lab?.destroy();
});

const records = (text = original): EvidenceRecord[] => text.trim().split('\n').map((l) => JSON.parse(l) as EvidenceRecord);
/** Rewrites the stored log through the S3 API, as someone with write access to the bucket could. */
const put = (body: string) => lab.lab.s3Client().send(new PutObjectCommand({ Bucket: 'lifeboat-evidence', Key: `evidence/${workflowId}/${runId}.jsonl`, Body: body }));
const write = (list: readonly EvidenceRecord[]) => put(list.map((r) => JSON.stringify(r)).join('\n') + '\n');

describe('evidence chain', () => {
  it('records every step outcome and decision, with who, when, the gate opening and the measured RTO and RPO; the bucket and the mirror agree', async () => {
    const chain = records();
    const kinds = chain.map((r) => `${r.kind}${r.step ? `:${r.step}` : ''}${r.gate ? `:${r.gate}` : ''}`);
    expect(kinds).toEqual(expect.arrayContaining(['started', 'step-done:preflight', 'step-done:fence-primary', 'gate-opened:promote', 'gate-approved:promote', 'step-done:promote', 'finished']));
    expect(chain.map((r) => r.seq)).toEqual(chain.map((_, i) => i + 1));
    const approved = chain.find((r) => r.kind === 'gate-approved');
    expect(approved).toMatchObject({ by: 'bob', gate: 'promote', nonce: expect.any(String) });
    expect(chain.find((r) => r.kind === 'decision-refused')).toMatchObject({ by: 'alice', gate: 'promote', detail: expect.stringMatching(/'alice' does not have the approver role/) });
    const finished = chain.at(-1);
    expect(finished?.outcome).toMatchObject({ state: 'completed', rto: { met: true }, rpo: { measuredBytes: 0 } });
    const mirror = readFileSync(path.join(lab.dir, 'state', 'evidence', encodeURIComponent(workflowId), `${runId}.jsonl`), 'utf8');
    expect(mirror).toBe(original);

    const result = (await temporal.client.workflow.getHandle(workflowId).result()) as { evidence?: EvidenceHead };
    expect(result.evidence).toEqual({ head: finished?.hash, records: chain.length, anchor: { state: 'anchored', location: `s3://lifeboat-ledger/${ledgerKey(workflowId, runId)}`, retainUntil: expect.any(String), versionId: expect.any(String) } });
    const report = await verifyRunEvidence(temporal.client, lab.loaded, workflowId);
    expect(report).toMatchObject({ ok: true, records: chain.length, head: finished?.hash, source: 's3://lifeboat-evidence' });
  });

  it('an edited record is detected at its position', async () => {
    const chain = records();
    try {
      await write(chain.map((r) => (r.seq === 3 ? { ...r, detail: `${r.detail} (edited)` } : r)));
      const report = await verifyRunEvidence(temporal.client, lab.loaded, workflowId);
      expect(report.ok).toBe(false);
      expect(report.brokenAt).toMatchObject({ position: 3, seq: 3, reason: expect.stringMatching(/does not match its hash.*edited/) });
    } finally {
      await put(original);
    }
  });

  it('a deleted record is detected where it was, and a truncated end against the head in the result', async () => {
    const chain = records();
    try {
      await write(chain.filter((r) => r.seq !== 4));
      const deleted = await verifyRunEvidence(temporal.client, lab.loaded, workflowId);
      expect(deleted.brokenAt).toMatchObject({ position: 4, seq: 5, reason: expect.stringMatching(/missing or out of order/) });

      await write(chain.slice(0, -1));
      const truncated = await verifyRunEvidence(temporal.client, lab.loaded, workflowId);
      expect(truncated.ok).toBe(false);
      expect(truncated.brokenAt?.reason).toMatch(new RegExp(`the run's result says the chain has ${chain.length} records.*the stored log has ${chain.length - 1}`));
    } finally {
      await put(original);
    }
  });

  it('bytes changed behind S3\'s back (on its disk) are refused with the reason', async () => {
    try {
      writeFileSync(stored, original.replace('"kind":"started"', '"kind":"STARTED"'));
      await expect(verifyRunEvidence(temporal.client, lab.loaded, workflowId)).rejects.toThrow(/was changed outside S3.*checksum/);
    } finally {
      await put(original);
    }
  });

  it('an exported bundle verifies offline; a record altered in the bundle is detected', async () => {
    const out = path.join(lab.dir, 'bundle.json');
    const bundle = await exportRunEvidence(temporal.client, lab.loaded, workflowId, out);
    expect(bundle.chain).toHaveLength(records().length);
    expect((bundle.history as { events: unknown[] }).events.length).toBeGreaterThan(10);
    expect(verifyBundle(out)).toMatchObject({ ok: true, records: bundle.chain.length });

    const tampered = JSON.parse(readFileSync(out, 'utf8')) as { chain: EvidenceRecord[] };
    const approved = tampered.chain.find((r) => r.kind === 'gate-approved');
    if (approved) approved.by = 'carol';
    writeFileSync(out, JSON.stringify(tampered));
    expect(verifyBundle(out)).toMatchObject({ ok: false, brokenAt: { position: approved?.seq } });
  });
});

describe('evidence ledger (S3 Object Lock)', () => {
  const key = () => ledgerKey(workflowId, runId);
  const s3 = () => lab.lab.s3Client();
  const versions = async () => (await s3().send(new ListObjectVersionsCommand({ Bucket: 'lifeboat-ledger', Prefix: key() }))).Versions ?? [];

  it("anchors the run's head once, under COMPLIANCE retention for the configured day; verify checks the chain against it", async () => {
    const head = records().at(-1)?.hash ?? '';
    const [version, ...others] = await versions();
    expect(others).toEqual([]);
    const retention = await s3().send(new GetObjectRetentionCommand({ Bucket: 'lifeboat-ledger', Key: key(), VersionId: version?.VersionId }));
    expect(retention.Retention?.Mode).toBe('COMPLIANCE');
    const retainedFor = (retention.Retention?.RetainUntilDate?.getTime() ?? 0) - Date.now();
    expect(retainedFor).toBeGreaterThan(23 * 3600_000);
    expect(retainedFor).toBeLessThanOrEqual(24 * 3600_000);

    const report = await verifyRunEvidence(temporal.client, lab.loaded, workflowId);
    expect(report).toMatchObject({ ok: true, anchor: { state: 'anchored', head, records: records().length, versions: 1, mode: 'COMPLIANCE', location: `s3://lifeboat-ledger/${key()}` } });
    expect(formatEvidenceReport(report)).toContain(`anchored: head ${head} matches the ledger (s3://lifeboat-ledger/${key()}, retained until ${retention.Retention?.RetainUntilDate?.toISOString()})`);
    // Without a ledger in the config, verify says the run is not anchored rather than pretending.
    const withoutLedger = { ...lab.loaded, config: { ...lab.loaded.config, evidence: { ...lab.loaded.config.evidence, ledger: undefined } } };
    const unanchored = await verifyRunEvidence(temporal.client, withoutLedger, workflowId);
    expect(unanchored).toMatchObject({ ok: true, anchor: { state: 'not-configured' } });
    expect(formatEvidenceReport(unanchored)).toContain('not anchored (no evidence.ledger configured)');
  });

  it('a chain rewritten consistently, with the ledger entry overwritten too, fails against the first (anchored) version; the server refuses to delete it', async () => {
    const original_ = records();
    const anchoredHead = original_.at(-1)?.hash ?? '';
    // A forger with write access to both buckets: another approver, every hash recomputed, so the chain itself verifies.
    let prev = GENESIS;
    const forged = original_.map(({ format: _format, prev: _prev, hash: _hash, ...fields }) => {
      const record = sealRecord(fields.kind === 'gate-approved' ? { ...fields, by: 'carol' } : fields, prev);
      prev = record.hash;
      return record;
    });
    expect(verifyChain(forged).ok).toBe(true);
    expect(prev).not.toBe(anchoredHead);
    try {
      await write(forged);
      const overwrite = { workflowId, runId, runbook: 'db-promotion', head: prev, records: forged.length, at: new Date().toISOString() };
      await s3().send(new PutObjectCommand({ Bucket: 'lifeboat-ledger', Key: key(), Body: `${canonicalJson(overwrite)}\n` }));
      expect(await versions()).toHaveLength(2);

      const report = await verifyRunEvidence(temporal.client, lab.loaded, workflowId);
      expect(report.ok).toBe(false);
      expect(report.head).toBe(prev);
      expect(report.anchor).toMatchObject({ state: 'mismatch', head: anchoredHead, records: original_.length, versions: 2 });
      const text = formatEvidenceReport(report);
      expect(text).toContain(`ANCHOR MISMATCH: the ledger (s3://lifeboat-ledger/${key()}, retained until`);
      expect(text).toContain(`the ledger entry was overwritten; the anchored (first) head is ${anchoredHead}`);

      // The anchored version cannot be removed: COMPLIANCE retention binds every account, the root's too.
      const first = (await versions()).at(-1)?.VersionId;
      await expect(s3().send(new DeleteObjectCommand({ Bucket: 'lifeboat-ledger', Key: key(), VersionId: first }))).rejects.toThrow(/Access Denied because object protected by object lock/);
      expect((await versions()).map((v) => v.VersionId)).toContain(first);
    } finally {
      await put(original);
    }
    // The restored chain verifies again: the overwrite is reported, the first version still decides.
    const restored = await verifyRunEvidence(temporal.client, lab.loaded, workflowId);
    expect(restored).toMatchObject({ ok: true, anchor: { state: 'anchored', head: anchoredHead, versions: 2 } });
  });

  it('the config refuses a ledger without backups.storage, or sharing a bucket with the evidence or the backups', async () => {
    const base = (await testConfig('evidence-ledger-config', lab.dir, { backups: true })) as { evidence: Record<string, unknown> };
    const issues = (config: unknown) => {
      const parsed = configSchema.safeParse(config);
      return parsed.success ? [] : parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    };
    expect(issues({ ...base, evidence: { ...base.evidence, ledger: { bucket: 'lifeboat-ledger', retentionDays: 1 } } })).toEqual([]);
    const withoutBackups = await testConfig('evidence-ledger-config', lab.dir);
    expect(issues({ ...withoutBackups, evidence: { mirrorDir: './state/evidence', ledger: { bucket: 'lifeboat-ledger', retentionDays: 1 } } })).toEqual([
      'evidence.ledger: the evidence ledger lives on backups.storage: configure backups: too, or leave out evidence.ledger',
    ]);
    expect(issues({ ...base, evidence: { ...base.evidence, ledger: { bucket: 'lifeboat-evidence', retentionDays: 1 } } })).toEqual([
      "evidence.ledger.bucket: 'lifeboat-evidence' is also the evidence bucket or a backup bucket: the ledger needs a bucket of its own, created with Object Lock",
    ]);
    expect(issues({ ...base, evidence: { ...base.evidence, ledger: { bucket: 'lifeboat-ledger', retentionDays: 0 } } })).toEqual(['evidence.ledger.retentionDays: at least 1 day']);
  });

  it('a bucket without Object Lock is refused, never written plainly', async () => {
    const plain = s3EvidenceLedger(createRetainedObjectStore(s3(), 'lifeboat-evidence'), 1);
    const activities = createEvidenceActivities({ stores: [], ledger: plain });
    const anchor = { workflowId: 'ledger-refusal', runId: 'r1', runbook: 'db-promotion', head: 'a'.repeat(64), records: 3, at: new Date().toISOString() };
    const refusal = await activities.anchorEvidence(anchor).then(() => undefined, (err: unknown) => err);
    expect(refusal).toBeInstanceOf(ApplicationFailure);
    expect(refusal).toMatchObject({ type: LEDGER_REFUSED, nonRetryable: true, message: expect.stringMatching(/s3:\/\/lifeboat-evidence has no Object Lock.*none is written/) });
    expect(existsSync(path.join(lab.loaded.stateDir, 's3', 'data', 'lifeboat-evidence', ledgerKey(anchor.workflowId, anchor.runId)))).toBe(false);
    // And without a ledger the activity says so.
    expect(await createEvidenceActivities({ stores: [] }).anchorEvidence(anchor)).toEqual({ state: 'not-configured' });
  });
});

describe('evidence ledger unreachable at the close', () => {
  it("the run closes within its grace and hands its head to its evidence keeper; verify says the anchor is pending, then anchored once S3 is back", async () => {
    const deps = buildActivityDependencies(lab.loaded);
    const activities = {
      ...createNotificationActivities(deps.notifications),
      // The worker's real evidence stores and ledger, on the lab's versitygw.
      ...createEvidenceActivities({ stores: deps.evidence ?? [], ledger: deps.evidenceLedger }),
      ...({ change: async ({ step }) => ({ step }), undo: async () => undefined } satisfies RehearsalActivities),
    };
    const daemons = (JSON.parse(readFileSync(path.join(lab.loaded.stateDir, 'lab.json'), 'utf8')) as { daemons: Record<string, { pid: number }> }).daemons;
    let restarted = false;
    const restart = async () => {
      restarted = true;
      await lab.lab.up({ temporal: false, databases: false });
    };
    try {
      await withRehearsal(lab, temporal.client, 'evidence-ledger', activities, async (handle) => {
        await waitForStatus(handle, gateWaiting('promote'), 'the promote gate');
        // The S3 server (evidence bucket and ledger) goes down before the run ends.
        await stopPid(daemons.s3?.pid ?? 0, 'SIGKILL');
        await handle.executeUpdate(decideUpdate, { args: [{ gate: 'promote', approver: 'bob', decision: 'approve', comment: 'go' }] });
        const result = (await handle.result()) as { evidence?: EvidenceHead };
        const { runId: rehearsalRun, closeTime } = await handle.describe();
        const keeper = `lifeboat-evidence:${handle.workflowId}:${rehearsalRun}`;
        expect(result.evidence?.anchor).toEqual({ state: 'pending', keeper });
        const finishedAt = Date.parse((await handle.query(statusQuery)).events.find((e) => e.kind === 'finished')?.at ?? '');
        expect((closeTime?.getTime() ?? Number.NaN) - finishedAt, 'from its end to its close').toBeLessThan(15_000);

        // S3 back: the keeper first lets the run's last attempts end (30 s), so the anchor is pending at first.
        await restart();
        const early = await verifyRunEvidence(temporal.client, lab.loaded, handle.workflowId);
        expect(early).toMatchObject({ ok: true, anchor: { state: 'pending', keeper } });
        expect(formatEvidenceReport(early)).toContain(`anchor pending: the evidence keeper ${keeper} holds the head`);

        const anchored = await vi.waitFor(async () => {
          const r = await verifyRunEvidence(temporal.client, lab.loaded, handle.workflowId);
          if (r.anchor?.state !== 'anchored') throw new Error(`anchor still ${r.anchor?.state}`);
          return r;
        }, { timeout: 150_000, interval: 2_000 });
        expect(anchored).toMatchObject({ ok: true, head: result.evidence?.head, anchor: { state: 'anchored', head: result.evidence?.head, records: result.evidence?.records, mode: 'COMPLIANCE', versions: 1 } });
        expect(anchored.stored).toBe(anchored.records);
        const kept = (await temporal.client.workflow.getHandle(keeper).result()) as EvidenceKeeperResult;
        expect(kept.anchor).toMatchObject({ state: 'anchored', location: `s3://lifeboat-ledger/${ledgerKey(handle.workflowId, rehearsalRun)}` });
      });
    } finally {
      if (!restarted) await restart();
    }
  }, 240_000);
});

describe('lifeboat report', () => {
  it('writes the record of the run as md, html (with an SVG Gantt over the RTO budget line) and json, locally and in the evidence bucket', async () => {
    const head = records().at(-1)?.hash;
    const md = await writeReport(temporal.client, lab.loaded, workflowId, 'md');
    expect(md.file).toBe(path.join(lab.loaded.stateDir, 'reports', `${encodeURIComponent(workflowId)}.md`));
    const text = readFileSync(md.file, 'utf8');
    expect(text).toContain(`# Run report: ${workflowId}`);
    expect(text).toMatch(/\| gate \| `promote` Approve promotion \(point of no return\) \| approved \| [\d.]+ \| [\d.]+ \| bob \|/);
    expect(text).toMatch(/\| step \| `promote` Promote the standby \(pg_promote\) \| done \|/);
    expect(text).toContain(`Evidence chain head: ${head}`);
    expect(text).toMatch(/decision-refused by alice: approve refused: 'alice' does not have the approver role/);
    expect(md.stored).toBe(`s3://lifeboat-evidence/reports/${workflowId}.md`);
    expect(readFileSync(path.join(lab.loaded.stateDir, 's3', 'data', 'lifeboat-evidence', 'reports', `${workflowId}.md`), 'utf8')).toBe(text);

    const html = readFileSync((await writeReport(temporal.client, lab.loaded, workflowId, 'html')).file, 'utf8');
    const svg = html.slice(html.indexOf('<svg'), html.indexOf('</svg>') + 6);
    expect(svg.match(/<rect /g)?.length).toBe(md.report.timeline.length);
    expect(svg).toMatch(/<line [^>]*stroke="#c62828"[^>]*\/>\n<text [^>]*>RTO budget 600s<\/text>/);

    const json = JSON.parse(readFileSync((await writeReport(temporal.client, lab.loaded, workflowId, 'json')).file, 'utf8')) as { state: string; evidence: { head: string }; timeline: unknown[] };
    expect(json).toMatchObject({ state: 'completed', evidence: { head } });
    expect(json.timeline.length).toBeGreaterThanOrEqual(6);
  });
});

describe('start --dry-run with past runs', () => {
  it('estimates from the measured RTO of past runs on the same target and shows each step\'s measured duration from their evidence', async () => {
    const request = { runbook: 'db-promotion', params: ['database=orders'], as: 'alice', drill: true };
    // Visibility lists the finished run after a moment.
    await expect.poll(async () => (await dryRun(temporal.client, lab.loaded, request)).rto.pastRuns.count, { timeout: 20_000 }).toBe(1);
    const report = await dryRun(temporal.client, lab.loaded, request);
    const result = (await temporal.client.workflow.getHandle(workflowId).result()) as { rto: { measuredSeconds: number } };
    expect(report.rto).toMatchObject({ estimateSeconds: result.rto.measuredSeconds, pastRuns: { count: 1, workflowIds: [workflowId] }, exceedsTarget: false });
    expect(report.rto.method).toMatch(/worst measured RTO of the last 1 completed runs on orders/);
    const promote = report.steps.find((s) => s.id === 'promote');
    expect(promote?.measured).toMatchObject({ runs: 1 });
    expect(promote?.measured?.worstSeconds).toBeGreaterThan(0);
    // The standby was promoted by that run: the preflight says so, and the dry run is not ready.
    expect(report.preflight).toEqual([expect.objectContaining({ check: 'orders: replication', ok: false, detail: expect.stringMatching(/is not a standby/) })]);
    expect(report.exitCode).toBe(1);
    expect(formatDryRun(report)).toMatch(/promote {2}\[POINT OF NO RETURN\] {2}measured median [\d.]+s, worst [\d.]+s \(1 runs\)/);
  });
});
