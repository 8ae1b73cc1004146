/**
 * The RPO rule, in one place: whether what was measured of the data at risk is
 * within a target. Workflows, the status, the CLI and the report all ask this
 * module, so "met" means the same everywhere. Pure and free of Node built-ins:
 * it is bundled into the workflow sandbox.
 *
 * Bytes of WAL the standby has not replayed are the primary measure. Seconds
 * (pg_stat_replication.replay_lag, or an upper bound when the old primary is
 * gone) are secondary: PostgreSQL reports no seconds for a standby that is not
 * connected, and a missing figure is unknown, never 0. Unknown is not met.
 *
 * | bytes   | seconds        | met                                              |
 * |---------|----------------|--------------------------------------------------|
 * | 0       | any or unknown | yes: nothing is unreplayed                       |
 * | > 0     | unknown        | no: "seconds unknown", it cannot be shown within |
 * | > 0     | s              | s <= target, and never with a target of 0 s      |
 * | unknown | s              | s <= target, and never with a target of 0 s      |
 * | unknown | unknown        | no: not measured                                 |
 */

export interface RpoFigures {
  /** Bytes of WAL not replayed on the standby; undefined when it could not be measured. */
  measuredBytes?: number;
  /** Seconds of data at risk; undefined when unknown (never 0 for unknown). */
  measuredSeconds?: number;
}

export interface RpoVerdict {
  met: boolean;
  /** The figures and the rule that decided, in words, e.g. "171392 bytes not replayed, seconds unknown". */
  reason: string;
}

/** A figure counts only when it is a real, non-negative number: anything else is unknown. */
function known(value: number | undefined): value is number {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0;
}

/** Judges `figures` against a target in seconds; see the table above. */
export function judgeRpo(targetSeconds: number, figures: RpoFigures): RpoVerdict {
  const bytes = known(figures.measuredBytes) ? figures.measuredBytes : undefined;
  const seconds = known(figures.measuredSeconds) ? figures.measuredSeconds : undefined;
  if (bytes === 0) return { met: true, reason: '0 bytes not replayed' };
  const what = bytes === undefined ? 'bytes unknown' : `${bytes} bytes not replayed`;
  if (seconds === undefined) {
    return { met: false, reason: bytes === undefined ? 'not measured (bytes and seconds unknown)' : `${what}, seconds unknown` };
  }
  if (targetSeconds <= 0) return { met: false, reason: `${what}, ${seconds.toFixed(1)}s: a target of 0 s is met only by 0 bytes measured` };
  const within = seconds <= targetSeconds;
  return { met: within, reason: `${what}, ${seconds.toFixed(1)}s ${within ? '<=' : '>'} ${targetSeconds}s` };
}

/** True only when the measured figures are within the target. */
export function rpoMet(targetSeconds: number, figures: RpoFigures): boolean {
  return judgeRpo(targetSeconds, figures).met;
}

/**
 * One line for people: target, bytes, seconds (or "unknown") and the verdict.
 * `met` undefined means nothing was judged yet (or a run from before the rule).
 */
export function describeRpo(rpo: RpoFigures & { targetSeconds: number; met?: boolean }): string {
  const measured = rpo.measuredBytes !== undefined || rpo.measuredSeconds !== undefined || rpo.met !== undefined;
  if (!measured) return `target ${rpo.targetSeconds}s, not measured yet`;
  const bytes = known(rpo.measuredBytes) ? `${rpo.measuredBytes} bytes not replayed` : 'bytes unknown';
  const seconds = known(rpo.measuredSeconds) ? `${rpo.measuredSeconds.toFixed(1)}s` : 'seconds unknown';
  const verdict = rpo.met === true ? 'met' : rpo.met === false ? 'MISSED' : 'not judged';
  return `target ${rpo.targetSeconds}s, ${bytes}, ${seconds} (${verdict})`;
}

/** What a parent run shows per database before its gate; the fields of contract/runbook.ts DatabaseRpoStatus. */
export interface ReplicationFacts extends RpoFigures {
  database: string;
  standbyRegion: string;
  standbyReachable: boolean;
  streaming?: boolean;
  targetSeconds: number;
  met: boolean;
}

/** The cells people read: standby, streaming, bytes, seconds, verdict. */
export function replicationCells(r: ReplicationFacts): { standby: string; streaming: string; bytes: string; seconds: string; verdict: string } {
  return {
    standby: `${r.standbyRegion}${r.standbyReachable ? '' : ' (UNREACHABLE)'}`,
    streaming: r.streaming === true ? 'streaming' : r.streaming === false ? 'NOT streaming' : 'streaming unknown',
    bytes: known(r.measuredBytes) ? `${r.measuredBytes} bytes` : 'bytes unknown',
    seconds: known(r.measuredSeconds) ? `${r.measuredSeconds.toFixed(1)}s` : 'seconds unknown',
    verdict: `${r.met ? 'met' : 'MISSED'} (target ${r.targetSeconds}s)`,
  };
}

/** One line per database, for events, notifications and the terminal. */
export function describeReplication(r: ReplicationFacts): string {
  const c = replicationCells(r);
  const bytes = known(r.measuredBytes) ? `${r.measuredBytes} bytes not replayed` : 'bytes unknown';
  return `${r.database}: standby ${c.standby} ${c.streaming}, ${bytes}, ${c.seconds}, ${c.verdict}`;
}

/**
 * The RPO of a parent run from its promoted children: the worst bytes and seconds when every
 * child measured them (one unknown makes the figure unknown, never 0), met only when at least
 * one database was promoted and every promotion is within its own target (`targetSeconds`
 * overrides them all: 0 for a failback, which promises zero loss).
 */
export function worstRpo(results: ReadonlyArray<{ database: string; rpo: RpoFigures & { targetSeconds: number } }>, targetSeconds?: number): { measuredBytes?: number; measuredSeconds?: number; verdict: RpoVerdict } {
  const worst = (values: Array<number | undefined>) => (values.length > 0 && values.every(known) ? Math.max(...values.map((v) => v ?? 0)) : undefined);
  // Judged again by the one rule (each by its own target unless the run has a stricter one), not taken from the child's flag.
  const verdicts = results.map((r) => ({ database: r.database, ...judgeRpo(targetSeconds ?? r.rpo.targetSeconds, r.rpo) }));
  const met = verdicts.length > 0 && verdicts.every((v) => v.met);
  return {
    measuredBytes: worst(results.map((r) => r.rpo.measuredBytes)),
    measuredSeconds: worst(results.map((r) => r.rpo.measuredSeconds)),
    verdict: { met, reason: verdicts.length > 0 ? verdicts.map((v) => `${v.database}: ${v.reason}${v.met ? '' : ' (MISSED)'}`).join('; ') : 'no database promoted: nothing measured' },
  };
}
