/**
 * Generated bad input, everywhere input enters: the config loader, the gate
 * decision rules (shared by the Update validator and the signal handlers) and
 * the start planner. Each must answer with its own clear error type, never
 * crash with something else.
 */
import path from 'node:path';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { parse, stringify } from 'yaml';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, parseConfig } from '../../config/load';
import { planStart, UsageError } from '../../cli/start';
import type { GateStatus, RunContext } from '../../contract/runbook';
import { refuseDecision, refuseResolve } from '../../workflows/kernel/decisions';

/** Fixed so CI is repeatable; set LIFEBOAT_FUZZ_SEED to explore other inputs locally. */
const SEED = Number(process.env.LIFEBOAT_FUZZ_SEED ?? 20261123);

const LAB = path.join(__dirname, '..', '..', 'runbooks', 'lab.yaml');
const loaded = loadConfig(LAB);
const labDoc = parse(readFileSync(LAB, 'utf8')) as Record<string, unknown>;

const context: RunContext = { initiator: 'alice', detectedAt: '2026-11-23T03:00:00.000Z', drill: false, people: { alice: ['commander'], bob: ['approver'] } };
const gates: GateStatus[] = [{ id: 'promote', title: 'Promote', state: 'waiting', nonce: 'n1', approvers: ['bob'], required: 1, approvals: [] }];

/** Any JSON-ish value, with the names that break naive lookups mixed in. */
const anyValue = fc.oneof(
  fc.anything(),
  fc.constantFrom('constructor', '__proto__', 'toString', '', ' ', 'promote', 'bob', 'alice', 'x'.repeat(5000)),
  fc.record({ gate: fc.anything(), approver: fc.anything(), comment: fc.anything(), nonce: fc.anything(), decision: fc.anything() }, { requiredKeys: [] }),
);

describe('fuzzing the inputs', () => {
  it('gate decisions: any payload is refused with a message or accepted, never a crash', () => {
    fc.assert(
      fc.property(anyValue, (payload) => {
        const verdict = refuseDecision(payload, gates, context);
        expect(verdict === undefined || (typeof verdict === 'string' && verdict.length > 0)).toBe(true);
        const resolve = refuseResolve(payload, context, true);
        expect(resolve === undefined || typeof resolve === 'string').toBe(true);
      }),
      { numRuns: 2000, seed: SEED },
    );
  });

  it('the config loader: any change to a valid config is accepted or refused with a ConfigError naming a path', () => {
    const paths = ['people', 'databases.orders.primary.port', 'databases.orders.rpoTargetSeconds', 'runbooks.db-promotion.rto.budgetSeconds', 'runbooks.db-promotion.gates.promote', 'temporal', 'lab.stateDir', 'notifications.onCall', 'dns.app.targets', 'services.east'];
    fc.assert(
      fc.property(fc.constantFrom(...paths), fc.anything(), (where, value) => {
        const doc = structuredClone(labDoc);
        const keys = where.split('.');
        let node = doc as Record<string, unknown>;
        for (const key of keys.slice(0, -1)) node = node[key] as Record<string, unknown>;
        node[keys.at(-1) ?? ''] = value;
        let text: string;
        try {
          text = stringify(doc);
        } catch {
          return; // not representable as YAML: nothing to load
        }
        try {
          parseConfig(text, '/fuzz/lab.yaml');
        } catch (err) {
          expect(err).toBeInstanceOf(ConfigError);
          expect((err as ConfigError).problems.length).toBeGreaterThan(0);
          // Each problem starts with where it is: a dotted path, with odd keys quoted (people[" "]).
          for (const problem of (err as ConfigError).problems) expect(problem).toMatch(/^(YAML: |\(top level\): |([\w-]+|\["(?:[^"\\]|\\.)*"\])(\.[\w-]+|\["(?:[^"\\]|\\.)*"\])*: )/);
        }
      }),
      { numRuns: 500, seed: SEED },
    );
  });

  it('YAML that is not even a config: refused with a ConfigError', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 400 }), (text) => {
        expect(() => parseConfig(text, '/fuzz/lab.yaml')).toThrow(ConfigError);
      }),
      { numRuns: 500, seed: SEED },
    );
  });

  it('start requests: any identity, runbook, parameters, id or time is refused with a UsageError or planned', () => {
    fc.assert(
      fc.property(
        fc.record({
          runbook: fc.oneof(fc.string(), fc.constantFrom('db-promotion', 'regional-evacuation', 'failback', 'constructor')),
          as: fc.option(fc.oneof(fc.string(), fc.constantFrom('alice', 'bob', 'erin', '__proto__')), { nil: undefined }),
          id: fc.option(fc.string(), { nil: undefined }),
          detectedAt: fc.option(fc.oneof(fc.string(), fc.date({ noInvalidDate: true }).map((d) => d.toISOString())), { nil: undefined }),
          incident: fc.option(fc.string(), { nil: undefined }),
          params: fc.array(fc.oneof(fc.string(), fc.constantFrom('database=orders', 'region=east', 'mode=unplanned', 'database=toString', 'mode=')), { maxLength: 4 }),
          drill: fc.boolean(),
        }),
        (request) => {
          try {
            const plan = planStart(loaded, request);
            expect(plan.workflowId.length).toBeGreaterThan(0);
          } catch (err) {
            expect(err).toBeInstanceOf(UsageError);
          }
        },
      ),
      { numRuns: 2000, seed: SEED },
    );
  });
});
