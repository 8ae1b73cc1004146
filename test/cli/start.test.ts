/**
 * `lifeboat start` planning: the command line and runbooks/lab.yaml turned into
 * a validated workflow start, or a UsageError that says what to fix.
 */
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { planDbPromotion, planStart, UsageError, type StartRequest } from '../../cli/start';
import { loadConfig } from '../../config/load';
import { searchAttributes } from '../../contract/runbook';

const loaded = loadConfig(path.join(__dirname, '../../runbooks/lab.yaml'));
const NOW = new Date('2026-11-23T12:00:00.000Z');

function request(changes: Partial<StartRequest> = {}): StartRequest {
  return { runbook: 'db-promotion', as: 'alice', drill: false, params: ['database=orders', 'mode=planned'], now: NOW, ...changes };
}

function plan(changes: Partial<StartRequest> = {}) {
  return planDbPromotion(loaded, request(changes));
}

/** Asserts that planStart refuses the request with a UsageError carrying exactly `message`. */
function expectUsageError(changes: Partial<StartRequest>, message: string): void {
  let err: unknown;
  try {
    plan(changes);
  } catch (e) {
    err = e;
  }
  expect(err, 'planStart should have refused the request').toBeInstanceOf(UsageError);
  expect((err as UsageError).message).toBe(message);
}

// Every test controls the identity explicitly; LIFEBOAT_USER from the shell must not leak in.
let savedUser: string | undefined;
beforeEach(() => {
  savedUser = process.env.LIFEBOAT_USER;
  delete process.env.LIFEBOAT_USER;
});
afterEach(() => {
  if (savedUser === undefined) delete process.env.LIFEBOAT_USER;
  else process.env.LIFEBOAT_USER = savedUser;
});

describe('planStart: a valid start', () => {
  it('plans a dbPromotion workflow keyed by the database', () => {
    const planned = plan();
    expect(planned.workflowType).toBe('dbPromotion');
    expect(planned.workflowId).toBe('db-promotion:orders');
    expect(planned.input.database).toBe('orders');
    expect(planned.input.mode).toBe('planned');
  });

  it('records the initiator, detection time (default now) and a snapshot of everyone’s roles', () => {
    const { run } = plan().input;
    expect(run.initiator).toBe('alice');
    expect(run.detectedAt).toBe('2026-11-23T12:00:00.000Z');
    expect(run.drill).toBe(false);
    expect(run.incident).toBeUndefined();
    expect(run.people).toEqual({
      alice: ['commander'],
      bob: ['approver'],
      carol: ['commander', 'approver'],
      dave: ['viewer'],
      erin: ['admin'],
      scheduler: ['commander'],
      sentinel: ['commander'],
    });
    // A snapshot: the run's copy is not the config's array.
    expect(run.people.carol).not.toBe(loaded.config.people.carol?.roles);
  });

  it('copies the policy from the runbook config and the RPO target from the database', () => {
    expect(plan().input.policy).toEqual({
      rto: { budgetSeconds: 900, onBreach: 'continue' },
      stepBudgets: { preflight: 30, 'fence-primary': 30, 'catch-up': 120, promote: 60, 'verify-write': 30 },
      gates: { promote: { escalateAfterSeconds: 300, timeoutSeconds: 1800, twoPerson: false } },
      rpoTargetSeconds: 5,
      catchUpTimeoutSeconds: 120,
      compensationAttempts: 5,
      returnWatchProbeSeconds: 300,
    });
  });

  it('defaults the mode to planned and accepts unplanned', () => {
    expect(plan({ params: ['database=orders'] }).input.mode).toBe('planned');
    expect(plan({ params: ['mode=unplanned', 'database=orders'] }).input.mode).toBe('unplanned');
  });

  it('summarises the database, standby region and mode, and marks drills', () => {
    expect(plan().staticSummary).toBe('promote orders standby (chosen by the run among west, central) in planned mode');
    expect(plan().input.towards).toBeUndefined();
    expect(plan({ drill: true, params: ['database=users', 'mode=unplanned'] }).staticSummary).toBe(
      'DRILL: promote users standby (west) in unplanned mode',
    );
    // to= names the target: the configured standby is `standby`, a further one `standby:<region>`.
    expect(plan({ params: ['database=orders', 'to=central'] })).toMatchObject({ staticSummary: 'promote orders standby (central) in planned mode', input: { towards: 'standby:central' } });
    expect(plan({ params: ['database=orders', 'to=west'] }).input.towards).toBe('standby');
    expectUsageError({ params: ['database=orders', 'to=east'] }, "to=east: orders has no standby in region 'east' (its standbys are in west, central)");
  });

  it('details the run for the Temporal UI', () => {
    const details = plan({ incident: 'INC-42' }).staticDetails;
    expect(details).toContain('**Runbook** db-promotion, **database** orders, **mode** planned');
    expect(details).toContain('**Initiator** alice, **incident** INC-42');
    expect(details).toContain('**RTO budget** 900s (continue on breach), **RPO target** 5s');
    expect(details).toContain('**Primary** east 127.0.0.1:55432 → **standby** west 127.0.0.1:55433');
  });

  it('sets the search attributes', () => {
    const attributes = plan().searchAttributes;
    expect(attributes.get(searchAttributes.runbook)).toBe('db-promotion');
    expect(attributes.get(searchAttributes.drill)).toBe(false);
    expect(attributes.get(searchAttributes.phase)).toBe('starting');
    expect(attributes.get(searchAttributes.rtoBreached)).toBe(false);
    expect(attributes.get(searchAttributes.incident)).toBeUndefined();
  });

  it('marks a drill and an incident in the input and the search attributes', () => {
    const planned = plan({ drill: true, incident: 'INC-42' });
    expect(planned.input.run.drill).toBe(true);
    expect(planned.input.run.incident).toBe('INC-42');
    expect(planned.searchAttributes.get(searchAttributes.drill)).toBe(true);
    expect(planned.searchAttributes.get(searchAttributes.incident)).toBe('INC-42');
  });

  it('uses --id instead of the default workflow id', () => {
    expect(plan({ id: 'orders-drill-7' }).workflowId).toBe('orders-drill-7');
  });

  it('takes the identity from LIFEBOAT_USER when --as is not given', () => {
    process.env.LIFEBOAT_USER = 'carol';
    expect(plan({ as: undefined }).input.run.initiator).toBe('carol');
    expect(plan({ as: 'alice' }).input.run.initiator).toBe('alice'); // --as wins
  });
});

describe('planStart: --detected-at', () => {
  it('normalises a valid ISO time to UTC', () => {
    expect(plan({ detectedAt: '2026-11-23T03:12:00+02:00' }).input.run.detectedAt).toBe('2026-11-23T01:12:00.000Z');
    expect(plan({ detectedAt: '2026-11-23T11:58:00Z' }).input.run.detectedAt).toBe('2026-11-23T11:58:00.000Z');
  });

  it('puts the detection time in the details', () => {
    expect(plan({ detectedAt: '2026-11-23T11:58:00Z' }).staticDetails).toContain('**Detected** 2026-11-23T11:58:00.000Z');
  });

  it('refuses something that is not an ISO time', () => {
    expectUsageError({ detectedAt: 'yesterday' }, "--detected-at must be an ISO 8601 time such as 2026-11-23T03:12:00Z, not 'yesterday'");
    expectUsageError({ detectedAt: '2026-11-23' }, "--detected-at must be an ISO 8601 time such as 2026-11-23T03:12:00Z, not '2026-11-23'");
    expectUsageError({ detectedAt: '2026-13-01T00:00:00Z' }, "--detected-at must be an ISO 8601 time such as 2026-11-23T03:12:00Z, not '2026-13-01T00:00:00Z'");
  });

  it('refuses a time in the future, tolerating a minute of clock skew', () => {
    expectUsageError({ detectedAt: '2026-11-23T13:00:00Z' }, '--detected-at 2026-11-23T13:00:00Z is in the future');
    expectUsageError({ detectedAt: '2026-11-23T12:01:01Z' }, '--detected-at 2026-11-23T12:01:01Z is in the future');
    expect(plan({ detectedAt: '2026-11-23T12:00:30Z' }).input.run.detectedAt).toBe('2026-11-23T12:00:30.000Z');
  });

  it('refuses a time without a zone: it would be read in the CLI machine\'s local time', () => {
    expectUsageError({ detectedAt: '2026-11-23T03:12:00' }, "--detected-at must be an ISO 8601 time such as 2026-11-23T03:12:00Z, not '2026-11-23T03:12:00'");
  });

  it('refuses an empty or odd --id', () => {
    expectUsageError({ id: '' }, `--id must be 1-200 letters, digits, ".", ":", "@", "_" or "-", not ''`);
    expectUsageError({ id: 'a b' }, `--id must be 1-200 letters, digits, ".", ":", "@", "_" or "-", not 'a b'`);
  });

  // Regression: Date.parse rolls an impossible day over (Feb 30 -> Mar 2), so the RTO
  // clock silently starts on another day instead of the input being refused.
  it('refuses an impossible calendar date instead of rolling it over', () => {
    expectUsageError({ detectedAt: '2026-02-30T00:00:00Z' }, "--detected-at must be an ISO 8601 time such as 2026-11-23T03:12:00Z, not '2026-02-30T00:00:00Z'");
  });
});

describe('planStart: refuses bad input', () => {
  it('an unknown runbook, listing the known ones', () => {
    expect(() => planStart(loaded, request({ runbook: 'evacuation' }))).toThrow(new UsageError("unknown runbook 'evacuation': known runbooks are db-promotion, regional-evacuation, failback, database-backup, backup-restore-test"));
  });

  it('a missing or empty database', () => {
    expectUsageError({ params: ['mode=planned'] }, 'db-promotion needs database=NAME (configured: orders, users, billing)');
    expectUsageError({ params: ['database='] }, 'db-promotion needs database=NAME (configured: orders, users, billing)');
  });

  it('an unknown database, listing the configured ones', () => {
    expectUsageError({ params: ['database=payments'] }, "unknown database 'payments': configured databases are orders, users, billing");
  });

  it('an unknown parameter, listing the accepted ones', () => {
    expectUsageError({ params: ['database=orders', 'region=west'] }, "unknown parameter 'region': this runbook takes database, mode, to");
  });

  it('a parameter given twice', () => {
    expectUsageError({ params: ['database=orders', 'database=orders'] }, "parameter 'database' given twice");
  });

  it('a parameter that is not key=value', () => {
    expectUsageError({ params: ['orders'] }, "expected key=value, got 'orders'");
    expectUsageError({ params: ['=orders'] }, "expected key=value, got '=orders'");
  });

  it('a bad mode', () => {
    expectUsageError({ params: ['database=orders', 'mode=chaos'] }, "mode must be planned or unplanned, not 'chaos'");
  });

  it('no identity: neither --as nor LIFEBOAT_USER, listing the people', () => {
    expectUsageError({ as: undefined }, `say who you are: --as NAME or LIFEBOAT_USER (people in ${loaded.file}: alice, bob, carol, dave, erin, scheduler, sentinel)`);
  });

  it('a person not in the config', () => {
    expectUsageError({ as: 'mallory' }, `'mallory' is not a configured person: add them under people: in ${loaded.file}`);
    process.env.LIFEBOAT_USER = 'mallory';
    expectUsageError({ as: undefined }, `'mallory' is not a configured person: add them under people: in ${loaded.file}`);
  });

  it('a person without the commander role', () => {
    expectUsageError({ as: 'bob' }, "'bob' may not start a runbook: needs the commander role (has approver)");
    expectUsageError({ as: 'erin' }, "'erin' may not start a runbook: needs the commander role (has admin)");
  });

  it('a bad --incident', () => {
    const message = '--incident must be 1-100 letters, digits, ".", ":", "_" or "-"';
    expectUsageError({ incident: 'INC 42' }, message);
    expectUsageError({ incident: '' }, message);
    expectUsageError({ incident: 'I'.repeat(101) }, message);
    expect(plan({ incident: 'I'.repeat(100) }).input.run.incident).toHaveLength(100);
  });

  // Regression: people and databases were looked up with `record[key]`, so a name that is an
  // Object.prototype member (constructor, toString, __proto__) is "found" and the
  // code then crashes with a TypeError instead of a UsageError.
  it('a person named like an Object.prototype member', () => {
    expectUsageError({ as: 'constructor' }, `'constructor' is not a configured person: add them under people: in ${loaded.file}`);
  });

  it('a database named like an Object.prototype member', () => {
    expectUsageError({ params: ['database=toString'] }, "unknown database 'toString': configured databases are orders, users, billing");
  });
});
