/**
 * Procedures shared by the regional runbooks (evacuation, failback): parallel
 * database promotions as child runs, and a canary traffic ramp with checks.
 */
import { ApplicationFailure, ChildWorkflowCancellationType, isCancellation, ParentClosePolicy, patched, sleep, startChild, workflowInfo } from '@temporalio/workflow';
import type { DatabaseActivities } from '../activities/database';
import type { TrafficActivities } from '../activities/traffic';
import { DB_PROMOTION_RUNBOOK, dbPromotionWorkflowId, type DbPromotionInput, type PromotionMode } from '../contract/db-promotion';
import type { PromotionTarget, ReplicationReading } from '../contract/database';
import type { DatabaseEvacuationOutcome } from '../contract/regional-evacuation';
import { FailureType } from '../contract/failures';
import { describeRpo, judgeRpo } from '../contract/rpo';
import type { DatabaseRpoStatus, GateStatus, RunContext } from '../contract/runbook';
import { dbPromotion } from './db-promotion';
import { failureMessage, type PreApproval, type RunbookRun } from './kernel/runbook-run';
import { failureType } from './kernel/failures';
import { call } from './call';
import { databaseProfiles, proxyFor, trafficProfiles } from './options';

const { dns: dnsOptions, canaryCheck: canaryCheckOptions } = trafficProfiles;
const replicationReadOptions = databaseProfiles.readBeforeGate;
const app = proxyFor<TrafficActivities>();
const db = proxyFor<DatabaseActivities>();

/** Runs started before the parent gates showed the RPO replay without the reading (test/histories/*.json). */
export const PATCH_RPO_BEFORE_PARENT_GATE = 'lifeboat-rpo-before-parent-gate';
/** Runs from before several standbys read the configured standby before the gate. */
const PATCH_GATE_READS_CHOSEN_STANDBY = 'lifeboat-gate-reads-chosen-standby';

export interface GateDatabase {
  name: string;
  /** The database's own RPO target, the one its promotion is judged by. */
  targetSeconds: number;
}

/**
 * Before a parent's point-of-no-return gate: reads each database's lag and streaming state
 * (read-only, in parallel), records them in the status and returns the briefing for the
 * gate-opened event. Undefined for runs started before this existed. A database whose reading
 * fails is shown as not measured (not met); the gate still opens, the approver decides.
 */
export async function measureBeforeGate(run: RunbookRun, databases: readonly GateDatabase[], towards: PromotionTarget, note: string, mode?: PromotionMode): Promise<string | undefined> {
  if (!patched(PATCH_RPO_BEFORE_PARENT_GATE)) return undefined;
  // Towards a standby: the one each child promotion would choose now (several standbys), so the approver reads its figures.
  const choose = towards === 'standby' && mode !== undefined && patched(PATCH_GATE_READS_CHOSEN_STANDBY);
  const rows = await Promise.all(
    databases.map(async (d): Promise<DatabaseRpoStatus> => {
      try {
        const target = choose ? (await call(db.chooseStandby, replicationReadOptions, `choose ${d.name}'s standby as its promotion would (read-only)`, { database: d.name, mode })).target ?? towards : towards;
        const reading = await call(db.measureReplication, replicationReadOptions, `read ${d.name} replication before the gate (read-only)`, { database: d.name, towards: target, detectedAt: run.context.detectedAt });
        return replicationRow(reading, d.targetSeconds);
      } catch (err) {
        if (isCancellation(err)) throw err;
        return {
          database: d.name, standbyRegion: '?', standbyReachable: false, primaryReachable: false, targetSeconds: d.targetSeconds,
          method: `could not be read: ${failureMessage(err)}`, met: false, verdict: 'not measured (bytes and seconds unknown)', inspectedAt: new Date().toISOString(),
        };
      }
    }),
  );
  return run.recordReplication(rows, note);
}

function replicationRow(r: ReplicationReading, targetSeconds: number): DatabaseRpoStatus {
  const { met, reason } = judgeRpo(targetSeconds, r.rpo);
  return {
    database: r.database,
    standbyRegion: r.standby.region,
    standbyReachable: r.standby.reachable,
    streaming: r.standby.streaming,
    primaryReachable: r.primary.reachable,
    targetSeconds,
    measuredBytes: r.rpo.measuredBytes,
    measuredSeconds: r.rpo.measuredSeconds,
    method: r.rpo.method,
    met,
    verdict: reason,
    inspectedAt: r.inspectedAt,
  };
}


/**
 * A parent's approved gate, as its children are told of it: the child does not take this word for it,
 * it checks the parent's own record at admission (contract/governance.ts).
 */
export function parentApproval(gate: GateStatus): PreApproval {
  const { workflowId } = workflowInfo();
  return {
    by: gate.decidedBy ?? '?',
    at: gate.decidedAt ?? '',
    comment: `gate ${gate.id} of ${workflowId}${gate.comment ? `: ${gate.comment}` : ''}`,
    parent: workflowId,
    gate: gate.id,
    ...(gate.nonce ? { nonce: gate.nonce } : {}),
  };
}

export interface PromotionRequest {
  database: string;
  input: Omit<DbPromotionInput, 'database' | 'run' | 'preApproved'>;
  summary: string;
}

/**
 * Promotes every database as a child db-promotion run, in parallel (the time is
 * the slowest promotion, not the sum), each recorded in the parent's status.
 */
export async function promoteInParallel(run: RunbookRun, context: RunContext, preApproved: PreApproval, requests: readonly PromotionRequest[]): Promise<DatabaseEvacuationOutcome[]> {
  // A child's authority is the parent's gate (its pre-approval, checked with the parent at admission), never
  // a sentinel's declaration: a parent a sentinel started keeps the trigger to itself (a child carrying it
  // would be refused: only the sentinel's own runs may say a sentinel started them).
  const { trigger: _parentsTrigger, ...childContext } = context;
  return Promise.all(
    requests.map(async (request): Promise<DatabaseEvacuationOutcome> => {
      const childWorkflowId = dbPromotionWorkflowId(request.database);
      const track = (state: 'running' | 'completed' | 'failed', detail?: string) =>
        run.trackChild({ workflowId: childWorkflowId, runbook: DB_PROMOTION_RUNBOOK, target: request.database, state, detail });
      try {
        const child = await startChild(dbPromotion, {
          workflowId: childWorkflowId,
          args: [{ ...request.input, database: request.database, run: childContext, preApproved }],
          // A promotion is irreversible: it finishes even if the parent run is lost or cancelled.
          parentClosePolicy: ParentClosePolicy.ABANDON,
          cancellationType: ChildWorkflowCancellationType.ABANDON,
          staticSummary: request.summary,
        });
        track('running');
        const result = await child.result();
        track('completed', `timeline ${result.timeline}, RPO ${describeRpo(result.rpo)}`);
        return { database: request.database, childWorkflowId, state: 'promoted', result };
      } catch (err) {
        // Refused because every standby is in a forbidden region: not a failure of the run, its traffic goes to the maintenance page.
        if (failureType(err) === FailureType.ResidencyDenied) {
          track('failed', `not promoted, maintenance page: ${failureMessage(err)}`);
          return { database: request.database, childWorkflowId, state: 'maintenance', error: failureMessage(err) };
        }
        track('failed', failureMessage(err));
        return { database: request.database, childWorkflowId, state: 'failed', error: failureMessage(err) };
      }
    }),
  );
}

/**
 * Throws PromotionFailed naming every failed promotion and its reason (`${what} for orders (why)`),
 * when one failed; `suffix` says why the run stops for it (a policy). `maintenanceAllowed`: a database with nowhere
 * allowed to go (left to the maintenance page) is not counted as failed.
 */
export function failIfAnyFailed(results: readonly DatabaseEvacuationOutcome[], what: string, suffix = '', { maintenanceAllowed = false } = {}): void {
  // A database left under maintenance is an outcome an evacuation may accept; for anything else it is not promoted, so failed.
  const failed = results.filter((r) => r.state === 'failed' || (r.state === 'maintenance' && !maintenanceAllowed));
  if (failed.length === 0) return;
  throw ApplicationFailure.create({
    type: FailureType.PromotionFailed,
    message: `${what} for ${failed.map((f) => `${f.database} (${f.error ?? '?'})`).join(', ')}${suffix}`,
    nonRetryable: true,
  });
}

export interface Ramp {
  /** The region traffic moves to, and the region it leaves. */
  to: string;
  from: string;
  weights: readonly number[];
  holdSeconds: number;
  checkEverySeconds: number;
  /** Where the rest of the traffic goes at each stage (`maintenance`, or `from` when it still serves). */
  rest: string;
  databases: readonly string[];
  runId: string;
}

/** Canary ramp: at each weight, synthetic checks for `holdSeconds`; the first red check stops the ramp where it is. */
export async function rampTraffic(ramp: Ramp): Promise<void> {
  for (const weight of ramp.weights) {
    const weights: Record<string, number> = { [ramp.from]: 0, maintenance: 0 };
    weights[ramp.rest] = 100 - weight;
    weights[ramp.to] = weight;
    await call(app.shiftTraffic, dnsOptions, `canary: ${weight}% to ${ramp.to}`, { weights, comment: `lifeboat ${ramp.runId}: canary ${weight}%` });
    for (let held = 0; ; held += ramp.checkEverySeconds) {
      await call(app.syntheticCheck, canaryCheckOptions, `canary ${weight}%: synthetic check in ${ramp.to}`, { region: ramp.to, databases: [...ramp.databases], runId: ramp.runId });
      if (held >= ramp.holdSeconds) break;
      await sleep(ramp.checkEverySeconds * 1000, { summary: `canary ${weight}%: hold` });
    }
  }
}
