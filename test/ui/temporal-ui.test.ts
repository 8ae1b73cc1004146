/**
 * The Temporal Web UI tells the story, and only there is it readable: the
 * lab's own encrypted set-up (a key ring under its state directory, its codec
 * server, a dev server whose UI decodes through it, all started by `Lab.up`)
 * on free ports. Debian's Chromium, driven headless by playwright-core, opens
 * the UI, finds a finished evacuation by its search attributes, and reads its
 * summary, details, live status, step summaries, input and a gate comment,
 * decoded in the browser; the `temporal` CLI without the codec sees only
 * ciphertext, failures included. A screenshot is kept in test-results/.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decideGate, startRun } from '../../cli/runs';
import { dbPromotionWorkflowId } from '../../contract/db-promotion';
import { temporalBinary } from '../../lab/temporal-server';
import { ENCRYPTED_ENCODING } from '../../lib/codec';
import { freePort, run, waitFor } from '../../lib/processes';
import { createTestLab, type TestLab } from '../helpers/lab';
import { sql } from '../helpers/postgres';
import { postgresDatabase } from '../../config/load';
import { gateWaiting, startTestTemporal, waitForStatus, type TestTemporal } from '../helpers/temporal';

const CHROMIUM = process.env.LIFEBOAT_CHROMIUM ?? '/usr/bin/chromium';
const ARTIFACTS = path.join(__dirname, '..', '..', 'test-results');
const COMMENT = 'lag 0 on orders, go (ui-comment-7c1e)';
const REJECTION = 'east is back, stand down (ui-reason-4b2f)';

let lab: TestLab;
let temporal: TestTemporal;
let browser: Browser;
let evacuationId: string;
let rejectedId: string;
/** The rejected promotion's run: the evacuation's child promotion reuses its workflow id later. */
let rejectedRunId: string;
let uiUrl: string;

beforeAll(async () => {
  const [port, uiPort, codecPort, inboxPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
  uiUrl = `http://127.0.0.1:${uiPort}`;
  lab = await createTestLab('ui', {
    databases: ['orders'],
    regions: true,
    // The lab's own Temporal (namespace default, as in runbooks/lab.yaml), encrypted the way runbooks/lab.yaml is.
    extra: {
      temporal: {
        address: `127.0.0.1:${port}`,
        namespace: 'default',
        taskQueue: `lifeboat-test-ui-${process.pid}`,
        uiUrl,
        encryption: { keyFile: './state/keys.json', codecServer: { port: codecPort, allowUnauthenticated: true } },
      },
      lab: { stateDir: './state', temporal: { port, uiPort }, inbox: { port: inboxPort } },
    },
  });
  // createTestLab brought up the key ring, the codec server and the databases; this adds the dev server.
  await lab.lab.up({ temporal: true });
  temporal = await startTestTemporal(lab.loaded);

  // A promotion rejected at its gate: the run fails with the rejection reason (a failure to encrypt).
  const rejected = await startRun(temporal.client, lab.loaded, { runbook: 'db-promotion', params: ['database=orders', 'mode=planned'], as: 'alice', drill: true, incident: 'INC-UI-0' });
  rejectedId = rejected.workflowId;
  rejectedRunId = rejected.runId;
  const rejectedHandle = temporal.client.workflow.getHandle(rejectedId, rejectedRunId);
  await waitForStatus(rejectedHandle, gateWaiting('promote'), 'gate promote', 120_000);
  await decideGate(temporal.client, lab.loaded, { workflowId: rejectedId, gate: 'promote', as: 'bob', decision: 'reject', comment: REJECTION });
  await expect(rejectedHandle.result()).rejects.toThrow();
  // The rejection unfenced the primary; its standby reconnects on its own time, and a planned evacuation refuses one that does not stream.
  const { standby } = postgresDatabase(lab.loaded.config, 'orders');
  await waitFor('the standby of orders to stream again', async () => ((await sql<{ s: string | null }>(standby, 'postgres', 'SELECT (SELECT status FROM pg_stat_wal_receiver LIMIT 1) AS s'))[0]?.s === 'streaming' ? true : undefined), 60_000, 500);

  const started = await startRun(temporal.client, lab.loaded, { runbook: 'regional-evacuation', params: ['region=east', 'mode=planned'], as: 'alice', drill: true, incident: 'INC-UI-1', id: `regional-evacuation:east:ui-${process.pid}` });
  evacuationId = started.workflowId;
  const handle = temporal.client.workflow.getHandle(evacuationId);
  for (const gate of ['drain-traffic', 'promote-databases']) {
    await waitForStatus(handle, gateWaiting(gate), `gate ${gate}`, 120_000);
    await decideGate(temporal.client, lab.loaded, { workflowId: evacuationId, gate, as: 'bob', decision: 'approve', comment: COMMENT });
  }
  await handle.result();
  // Root in CI: Chromium's sandbox needs user namespaces it may not have; the rest keeps it quiet and offline.
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking', '--no-first-run', '--disable-extensions'] });
});

afterAll(async () => {
  await browser?.close();
  await temporal?.close();
  await lab?.destroy();
});

/** Every frame's text: the UI renders summaries and details (Markdown) in sandboxed iframes. */
const allText = async (page: Page) => (await Promise.all(page.frames().map((f) => f.locator('body').innerText().catch(() => '')))).join('\n');

interface JsonPayload {
  metadata?: Record<string, string>;
  data?: string;
}

/** `temporal workflow show --output json` without the codec: what anyone with access to the server reads. */
async function rawHistory(workflowId: string, runId?: string): Promise<{ text: string; events: Array<Record<string, unknown>> }> {
  const text = await run(temporalBinary(), ['workflow', 'show', '--workflow-id', workflowId, ...(runId ? ['--run-id', runId] : []), '--address', lab.loaded.config.temporal.address, '--namespace', 'default', '--output', 'json', '--no-json-shorthand-payloads']);
  const parsed = JSON.parse(text) as { events: Array<Record<string, unknown>> };
  return { text, events: parsed.events };
}

/**
 * Payloads found under `node`, each with its path. Left out, because no payload codec ever sees them: search
 * attributes (indexed by the server, in clear by design) and the SDK's own `patched()` markers (the patch name,
 * written by the SDK core); `patchMarkers` collects the latter so the test can check they hold nothing else.
 */
function payloadsIn(
  node: unknown,
  at: string,
  found: Array<{ at: string; payload: JsonPayload }> = [],
  patchMarkers: JsonPayload[] = [],
  localActivityMarkers: JsonPayload[] = [],
): Array<{ at: string; payload: JsonPayload }> {
  if (Array.isArray(node)) node.forEach((item, i) => payloadsIn(item, `${at}[${i}]`, found, patchMarkers, localActivityMarkers));
  else if (node && typeof node === 'object') {
    const o = node as Record<string, unknown>;
    if (o.metadata && typeof o.metadata === 'object' && 'encoding' in o.metadata) {
      if (/markerRecordedEventAttributes\.details\.patch-data\.payloads\[\d+\]$/.test(at)) patchMarkers.push(o as JsonPayload);
      // A local activity marker's `data` is the SDK's own bookkeeping (which activity, attempt, when); its result is encrypted.
      else if (/markerRecordedEventAttributes\.details\.data\.payloads\[\d+\]$/.test(at)) localActivityMarkers.push(o as JsonPayload);
      else found.push({ at, payload: o as JsonPayload });
    } else for (const [key, value] of Object.entries(o)) if (key !== 'searchAttributes') payloadsIn(value, `${at}.${key}`, found, patchMarkers, localActivityMarkers);
  }
  return found;
}

/** Failures found under `node` (a `failure`, `cause` or `lastFailure` object with a message). */
function failuresIn(node: unknown, found: Array<Record<string, unknown>> = []): Array<Record<string, unknown>> {
  if (Array.isArray(node)) for (const item of node) failuresIn(item, found);
  else if (node && typeof node === 'object') {
    const o = node as Record<string, unknown>;
    if (typeof o.message === 'string' && ('source' in o || 'applicationFailureInfo' in o || 'encodedAttributes' in o)) found.push(o);
    for (const value of Object.values(o)) failuresIn(value, found);
  }
  return found;
}

const encodingOf = (p: JsonPayload) => Buffer.from(p.metadata?.encoding ?? '', 'base64').toString();

describe('Temporal Web UI, decoding through the lab codec server', () => {
  it('finds the finished evacuation by its search attributes and shows its summary, details, current details, step summaries, input and a gate comment', async () => {
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    const query = encodeURIComponent('LifeboatRunbook = "regional-evacuation" AND LifeboatDrill = true AND LifeboatIncident = "INC-UI-1"');
    const link = page.locator(`a[href*="/workflows/${encodeURIComponent(evacuationId)}/"]`).first();
    // Visibility is eventually consistent: reload the filtered list until the run is listed.
    const deadline = Date.now() + 60_000;
    for (;;) {
      await page.goto(`${uiUrl}/namespaces/default/workflows?query=${query}`);
      if (await link.waitFor({ timeout: 5_000 }).then(() => true, () => false)) break;
      if (Date.now() > deadline) throw new Error(`${evacuationId} never appeared in the UI's filtered list`);
    }
    await link.click();
    // The history tab: the run's input, decoded in the browser (the commander who started it).
    await expect.poll(() => allText(page), { timeout: 30_000 }).toMatch(/"initiator":\s*"alice"/);
    // A gate decision's comment: the `decide` Update's request, in the Compact view's event group.
    await page.getByText('Compact', { exact: true }).first().click();
    await page.getByText('decide', { exact: true }).first().click();
    await expect.poll(() => allText(page), { timeout: 30_000 }).toContain(`"comment": "${COMMENT}"`);
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: path.join(ARTIFACTS, 'temporal-ui-gate-comment.png') });

    await page.getByText('User Metadata', { exact: true }).click();
    const main = page.locator('main');
    await expect.poll(() => allText(page), { timeout: 30_000 }).toContain('DRILL: evacuate east to west (planned): orders');
    await expect.poll(() => allText(page), { timeout: 30_000 }).toMatch(/regional-evacuation\s+on\s+east\s+\(drill\):\s+completed/);
    expect(await main.innerText()).toContain('Current Details');
    const text = await allText(page);
    expect(text).toContain('DRILL: evacuate east to west (planned): orders'); // the static summary
    expect(text).toMatch(/Runbook\s+regional-evacuation, region\s+east → west/); // the static details
    expect(text).toMatch(/regional-evacuation\s+on\s+east\s+\(drill\):\s+completed/); // current details: the live status
    expect(text).toContain('Promote every database of the region in parallel');
    expect(text).toContain('RTO budget'); // a timer's summary
    expect(text).toContain('freeze risky writes in east'); // an activity's summary
    await page.screenshot({ path: path.join(ARTIFACTS, 'temporal-ui-evacuation.png') });
    await page.close();
  });

  it('without the codec, `temporal workflow show` sees only binary/encrypted payloads, failures included', async () => {
    // The evacuation, its child promotion, and the rejected promotion before it.
    for (const [workflowId, runId] of [[evacuationId], [dbPromotionWorkflowId('orders')], [rejectedId, rejectedRunId]] as const) {
      const { text, events } = await rawHistory(workflowId, runId);
      const patchMarkers: JsonPayload[] = [];
      const localActivityMarkers: JsonPayload[] = [];
      const payloads = payloadsIn(events, 'events', [], patchMarkers, localActivityMarkers);
      // A patch marker says which patch, nothing about the run: {"id": "lifeboat-evidence-chain", "deprecated": false}.
      for (const marker of patchMarkers) expect(Object.keys(JSON.parse(Buffer.from(marker.data ?? '', 'base64').toString()) as object).sort()).toEqual(['deprecated', 'id']);
      // The admission's local activity marker: which activity and when, no input or answer (those are encrypted, in `result`).
      expect(localActivityMarkers.length).toBeGreaterThan(0);
      for (const marker of localActivityMarkers) {
        const data = JSON.parse(Buffer.from(marker.data ?? '', 'base64').toString()) as Record<string, unknown>;
        expect(data.activity_type ?? data.activityType).toMatch(/^(admitRun|confirmPreApproval)$/);
        for (const secret of ['"initiator"', 'people', 'alice']) expect(JSON.stringify(data)).not.toContain(secret);
      }
      expect(payloads.length).toBeGreaterThan(10);
      expect(payloads.filter((p) => encodingOf(p.payload) !== ENCRYPTED_ENCODING).map((p) => `${p.at}: ${encodingOf(p.payload)}`)).toEqual([]);
      const readable = [text, ...payloads.map((p) => Buffer.from(p.payload.data ?? '', 'base64').toString('latin1'))];
      for (const secret of [COMMENT, REJECTION, 'rejected by bob', '"initiator"']) expect(readable.filter((t) => t.includes(secret))).toEqual([]);
      const failures = failuresIn(events);
      expect(failures.filter((f) => f.message !== 'Encoded failure' || typeof f.encodedAttributes !== 'object').map((f) => f.message)).toEqual([]);
      if (runId === rejectedRunId) expect(failures.length).toBeGreaterThan(0);
    }
    // The rejection's failure: its message is in the encrypted attributes, only its type in clear.
    const { events } = await rawHistory(rejectedId, rejectedRunId);
    const failed = events.find((e) => e.workflowExecutionFailedEventAttributes) as { workflowExecutionFailedEventAttributes: { failure: { message: string; encodedAttributes: JsonPayload; applicationFailureInfo?: { type?: string } } } } | undefined;
    expect(failed?.workflowExecutionFailedEventAttributes.failure.message).toBe('Encoded failure');
    expect(encodingOf(failed?.workflowExecutionFailedEventAttributes.failure.encodedAttributes ?? {})).toBe(ENCRYPTED_ENCODING);
    expect(failed?.workflowExecutionFailedEventAttributes.failure.applicationFailureInfo?.type).toBe('GateRejected');
    // The client with the key ring reads the reason.
    await expect(temporal.client.workflow.getHandle(rejectedId, rejectedRunId).result()).rejects.toMatchObject({ cause: { message: `gate promote rejected by bob: ${REJECTION}` } });
  });
});
