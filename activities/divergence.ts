/**
 * Host-bound activities that keep what a rebuild would discard: stop a former
 * primary, measure its WAL past the fork point, copy its data directory aside,
 * and read the rows it holds that the current primary lacks. Each one reads or
 * writes a data directory, so it must run on the worker of the node's host:
 * every call names the database and the node (one input object), so a worker
 * per host can be routed to later. The provider behind them comes from the
 * worker's config (PostgreSQL today: activities/postgres-divergence.ts).
 */
import { Context, heartbeat, log } from '@temporalio/activity';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import type {
  DivergenceMeasurement,
  FormerPrimaryRef,
  FormerPrimaryStop,
  ReconcileInput,
  ReconciliationReport,
  SetAsideCopy,
  ConfiguredNode,
} from '../contract/divergence';
import { FailureType } from '../contract/failures';

/** Long work checks `alive()` between units (it throws once the activity is cancelled) and passes `signal` to child processes. */
export interface WorkControl {
  alive(): void;
  signal: AbortSignal;
}

/** What the failback needs from one database to keep a former primary's diverged data before it is rebuilt. */
export interface DivergenceProvider {
  readonly name: string;
  /**
   * Stops the node (fast shutdown) unless it already streams from the current
   * primary; `recorded` is what an earlier attempt saw before it stopped it.
   */
  stopFormerPrimary(node: ConfiguredNode, recorded: FormerPrimaryStop | undefined, record: (seen: FormerPrimaryStop) => void): Promise<FormerPrimaryStop>;
  /** The undo of the stop: starts the node again when it ran before and was not writable. */
  restartFormerPrimary(node: ConfiguredNode, before: FormerPrimaryStop): Promise<{ restarted: boolean; reason: string }>;
  /** Read-only: the stopped node's WAL past the fork point of the current primary's timeline. */
  measureDivergence(node: ConfiguredNode, work: WorkControl): Promise<DivergenceMeasurement>;
  /** Copies the stopped node's data directory aside (idempotent per `tag`); never deletes anything of it. */
  setAsideDataDir(node: ConfiguredNode, tag: string, work: WorkControl): Promise<SetAsideCopy>;
  /** Starts the copy alone on a free loopback port, compares it with the current primary, stops it. */
  reconcile(input: ReconcileInput, work: WorkControl): Promise<ReconciliationReport>;
}

const HEARTBEAT_MS = 1000;

/** Heartbeats while `work` runs and fails the work when the activity is cancelled. */
async function heartbeating<T>(work: (control: WorkControl) => Promise<T>, details: () => unknown = () => undefined): Promise<T> {
  const timer = setInterval(() => heartbeat(details()), HEARTBEAT_MS);
  const signal = Context.current().cancellationSignal;
  const alive = () => {
    if (signal.aborted) throw signal.reason instanceof Error ? signal.reason : new CancelledFailure('the activity was cancelled');
  };
  try {
    return await work({ alive, signal });
  } finally {
    clearInterval(timer);
  }
}

export function createDivergenceActivities(deps: { providers: ReadonlyMap<string, DivergenceProvider> }) {
  const provider = (database: string): DivergenceProvider => {
    const p = deps.providers.get(database);
    if (!p) {
      // Cloud SQL cannot rebuild a promoted instance (and so never discards it); any other unknown name is a config error.
      throw ApplicationFailure.nonRetryable(
        `no divergence checks for database '${database}' on this worker: it needs a self-managed PostgreSQL database with the node's data directory here (has ${[...deps.providers.keys()].join(', ') || 'none'})`,
        FailureType.NotConfigured,
      );
    }
    return p;
  };

  return {
    /** Stops the former primary before it is measured and rebuilt; the result says how to put it back. Idempotent. */
    async stopFormerPrimary(input: FormerPrimaryRef): Promise<FormerPrimaryStop> {
      // A retry after the stop itself finds the node stopped: what the first attempt saw is in its heartbeat details.
      const details: unknown = Context.current().info.heartbeatDetails;
      const recorded = isFormerPrimaryStop(details) ? details : undefined;
      let seen = recorded;
      return heartbeating(
        () => provider(input.database).stopFormerPrimary(input.node, recorded, (s) => {
          seen = s;
          heartbeat(s);
        }),
        () => seen,
      );
    },

    /** Undo of stopFormerPrimary: restarts the node only if it ran before and was read-only or a standby. */
    async restartFormerPrimary(input: FormerPrimaryRef & { before: FormerPrimaryStop }): Promise<{ restarted: boolean; reason: string }> {
      const outcome = await provider(input.database).restartFormerPrimary(input.node, input.before);
      if (!outcome.restarted && input.before.wasRunning && !input.before.alreadyAStandby) log.warn('former primary left stopped', { database: input.database, node: input.node, reason: outcome.reason });
      return outcome;
    },

    /** Measures the stopped former primary's WAL past the fork point of the current primary's timeline (read-only). */
    async measureDivergence(input: FormerPrimaryRef): Promise<DivergenceMeasurement> {
      const measurement = await heartbeating((control) => provider(input.database).measureDivergence(input.node, control));
      log.info('divergence measured', { database: input.database, node: input.node, state: measurement.state, divergedBytes: measurement.divergedBytes, walBytes: measurement.walBytes });
      return measurement;
    },

    /** Copies the stopped former primary's data directory aside, before pg_rewind rewrites it in place. */
    async setAsideDataDir(input: FormerPrimaryRef & { tag: string }): Promise<SetAsideCopy> {
      return heartbeating((control) => provider(input.database).setAsideDataDir(input.node, input.tag, control));
    },

    /** The reconciliation report: rows on the diverged node missing or different on the current primary. */
    async reconcileDivergence(input: ReconcileInput): Promise<ReconciliationReport> {
      return heartbeating((control) => provider(input.database).reconcile(input, control));
    },
  };
}

function isFormerPrimaryStop(value: unknown): value is FormerPrimaryStop {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return typeof v.database === 'string' && typeof v.wasRunning === 'boolean' && typeof v.alreadyAStandby === 'boolean' && typeof v.node === 'object' && v.node !== null;
}

export type DivergenceActivities = ReturnType<typeof createDivergenceActivities>;
