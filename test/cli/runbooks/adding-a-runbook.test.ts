/**
 * The "Adding a runbook" steps of runbooks/README.md, followed for its tiny
 * example, `traffic-check`: a definition, a CLI module and a registry line are
 * enough for `start` to plan it and `docs` to render it. The registry here is
 * the test's own (the real one plus the example), so nothing ships.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { syncRunbookDocs } from '../../../cli/docs';
import { dnsCheck } from '../../../cli/runbooks/checks';
import { cliRunbook, commonStart, startAttributes, stepBudgets, UsageError, type RunbookPolicy } from '../../../cli/runbooks/common';
import { CLI_RUNBOOK_LIST } from '../../../cli/runbooks/index';
import { planStart, plannedHolds } from '../../../cli/start';
import { loadConfig } from '../../../config/load';
import { defineRunbook, type WorkflowOf } from '../../../contract/definition';
import type { RtoPolicy, RunContext } from '../../../contract/runbook';

const loaded = loadConfig(path.join(__dirname, '../../../runbooks/lab.yaml'));

// Step 1, contract/traffic-check.ts: the input, the result, the plan and the one definition.
interface TrafficCheckInput {
  region: string;
  run: RunContext;
  policy: { rto: RtoPolicy; stepBudgets: Partial<Record<(typeof trafficCheckPlan.steps)[number]['id'], number>> };
}
interface TrafficCheckResult {
  workflowId: string;
  region: string;
  weights: Record<string, number>;
}
const trafficCheckPlan = {
  steps: [
    { id: 'read-weights', title: 'Read the DNS weights' },
    { id: 'verify-serving', title: 'The region serves traffic: its weight is above 0' },
  ],
  gates: [],
} as const;
const trafficCheckRunbook = defineRunbook<TrafficCheckInput, TrafficCheckResult>()({
  name: 'traffic-check',
  workflowType: 'trafficCheck',
  plan: trafficCheckPlan,
  workflowId: (region) => `traffic-check:${region}`,
  holds: () => [], // it only reads
});

// Step 2, workflows/traffic-check.ts: the workflow has the definition's signature (here a stand-in; the README shows the real shape).
const trafficCheck: WorkflowOf<typeof trafficCheckRunbook> = async (input) => ({ workflowId: `traffic-check:${input.region}`, region: input.region, weights: {} });
void trafficCheck;

// Step 3, cli/runbooks/traffic-check.ts: parameters to a start, the dry run's checks, the policy the docs show.
const trafficCheckPolicy: RunbookPolicy = { rto: { budgetSeconds: 120, onBreach: 'continue' }, steps: { 'read-weights': { budgetSeconds: 30 } }, gates: {} };
const trafficCheckCli = cliRunbook({
  definition: trafficCheckRunbook,
  plan(loaded, request) {
    const { initiator, context, params } = commonStart(loaded, request, ['region']);
    const region = params.region;
    if (!region) throw new UsageError('traffic-check needs region=NAME');
    return {
      workflowType: trafficCheckRunbook.workflowType,
      workflowId: request.id ?? trafficCheckRunbook.workflowId(region),
      input: { region, run: context, policy: { rto: trafficCheckPolicy.rto, stepBudgets: stepBudgets(trafficCheckPolicy.steps) } },
      searchAttributes: startAttributes(trafficCheckRunbook.name, request),
      targets: [region],
      staticSummary: `check that ${region} serves traffic`,
      staticDetails: `**Runbook** traffic-check, **region** ${region}, **initiator** ${initiator}`,
    };
  },
  preflight: (readers) => [dnsCheck(readers)],
  policy: () => trafficCheckPolicy,
});

// Step 4, the registry lines (contract/registry.ts and cli/runbooks/index.ts); here a registry of the test's own.
const registry = [...CLI_RUNBOOK_LIST, trafficCheckCli];

const docsDir = mkdtempSync(path.join(tmpdir(), 'lifeboat-docs-'));
afterAll(() => rmSync(docsDir, { recursive: true, force: true }));

describe('adding a runbook (runbooks/README.md)', () => {
  it('start plans it from its parameters, with the workflow id from the business key', () => {
    const plan = planStart(loaded, { runbook: 'traffic-check', as: 'alice', drill: false, params: ['region=east'] }, registry);
    expect(plan.workflowType).toBe('trafficCheck');
    expect(plan.workflowId).toBe('traffic-check:east');
    expect(plan.targets).toEqual(['east']);
    expect(plan.input).toMatchObject({ region: 'east', run: { initiator: 'alice' }, policy: { rto: { budgetSeconds: 120 }, stepBudgets: { 'read-weights': 30 } } });
    expect(plannedHolds(plan, registry)).toEqual([]);
  });

  it('refuses what its module refuses, and an unknown runbook names it among the known ones', () => {
    expect(() => planStart(loaded, { runbook: 'traffic-check', as: 'alice', drill: false, params: [] }, registry)).toThrow(new UsageError('traffic-check needs region=NAME'));
    expect(() => planStart(loaded, { runbook: 'trafic-check', as: 'alice', drill: false, params: [] }, registry)).toThrow(
      new UsageError("unknown runbook 'trafic-check': known runbooks are db-promotion, regional-evacuation, failback, database-backup, backup-restore-test, traffic-check"),
    );
  });

  it('docs renders its plan and policy into runbooks/traffic-check.md, created when missing', () => {
    expect(syncRunbookDocs(loaded, docsDir, true, [trafficCheckCli])).toEqual([path.join(docsDir, 'traffic-check.md')]);
    const doc = readFileSync(path.join(docsDir, 'traffic-check.md'), 'utf8');
    expect(doc).toContain('# traffic-check');
    expect(doc).toContain('| 1 | `read-weights`: Read the DNS weights |  |  | 30s |');
    expect(doc).toContain('RTO budget 120s from detection; on breach: continue.');
    expect(syncRunbookDocs(loaded, docsDir, false, [trafficCheckCli])).toEqual([]);
  });
});
