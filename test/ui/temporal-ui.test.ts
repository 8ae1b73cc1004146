/**
 * The Temporal Web UI tells the story: Debian's Chromium, driven headless by
 * playwright-core, opens the test run's real dev-server UI, finds a finished
 * evacuation by its search attributes, and checks that the run's summary, its
 * details, the live status (current details) and the timer and activity
 * summaries are shown. A screenshot is kept in test-results/.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { decideGate, startRun } from '../../cli/runs';
import { createTestLab, type TestLab } from '../helpers/lab';
import { gateWaiting, startTestTemporal, waitForStatus, type TestTemporal } from '../helpers/temporal';

const CHROMIUM = process.env.LIFEBOAT_CHROMIUM ?? '/usr/bin/chromium';
const ARTIFACTS = path.join(__dirname, '..', '..', 'test-results');

let lab: TestLab;
let temporal: TestTemporal;
let browser: Browser;
let workflowId: string;

beforeAll(async () => {
  lab = await createTestLab('ui', { databases: ['orders'], regions: true });
  temporal = await startTestTemporal(lab.loaded);
  const started = await startRun(temporal.client, lab.loaded, { runbook: 'regional-evacuation', params: ['region=east', 'mode=planned'], as: 'alice', drill: true, incident: 'INC-UI-1', id: `regional-evacuation:east:ui-${process.pid}` });
  workflowId = started.workflowId;
  const handle = temporal.client.workflow.getHandle(workflowId);
  for (const gate of ['drain-traffic', 'promote-databases']) {
    await waitForStatus(handle, gateWaiting(gate), `gate ${gate}`, 120_000);
    await decideGate(temporal.client, lab.loaded, { workflowId, gate, as: 'bob', decision: 'approve', comment: 'ui test' });
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

describe('Temporal Web UI', () => {
  it('finds the finished evacuation by its search attributes and shows its summary, details, current details and step summaries', async () => {
    const ui = inject('temporalUiUrl');
    const namespace = lab.loaded.config.temporal.namespace;
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    const query = encodeURIComponent('LifeboatRunbook = "regional-evacuation" AND LifeboatDrill = true AND LifeboatIncident = "INC-UI-1"');
    const link = page.locator(`a[href*="/workflows/${encodeURIComponent(workflowId)}/"]`).first();
    // Visibility is eventually consistent: reload the filtered list until the run is listed.
    const deadline = Date.now() + 60_000;
    for (;;) {
      await page.goto(`${ui}/namespaces/${namespace}/workflows?query=${query}`);
      if (await link.waitFor({ timeout: 5_000 }).then(() => true, () => false)) break;
      if (Date.now() > deadline) throw new Error(`${workflowId} never appeared in the UI's filtered list`);
    }
    await link.click();
    await page.getByText('User Metadata', { exact: true }).click();
    const main = page.locator('main');
    // The UI renders summaries and details (Markdown) in sandboxed iframes: read every frame's text.
    const allText = async () => (await Promise.all(page.frames().map((f) => f.locator('body').innerText().catch(() => '')))).join('\n');
    await expect.poll(allText, { timeout: 30_000 }).toContain('DRILL: evacuate east to west (planned): orders');
    await expect.poll(allText, { timeout: 30_000 }).toMatch(/regional-evacuation\s+on\s+east\s+\(drill\):\s+completed/);
    expect(await main.innerText()).toContain('Current Details');
    const text = await allText();
    expect(text).toContain('DRILL: evacuate east to west (planned): orders'); // the static summary
    expect(text).toMatch(/Runbook\s+regional-evacuation, region\s+east → west/); // the static details
    expect(text).toMatch(/regional-evacuation\s+on\s+east\s+\(drill\):\s+completed/); // current details: the live status
    expect(text).toContain('Promote every database of the region in parallel');
    expect(text).toContain('RTO budget'); // a timer's summary
    expect(text).toContain('freeze risky writes in east'); // an activity's summary
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: path.join(ARTIFACTS, 'temporal-ui-evacuation.png') });
    await page.close();
  });
});
