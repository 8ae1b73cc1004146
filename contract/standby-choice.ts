/**
 * Which standby a promotion makes the primary, when a database has several. Pure: the activity reads
 * every standby and the residency rules, this decides, the run records the table it decided from.
 *
 * A candidate must answer, be in recovery (a node that takes writes is never "promoted"), be allowed by
 * the database's residency rules, and in planned mode stream from the primary. Among those, the one
 * holding the most WAL wins (least WAL behind the primary: what a promotion keeps), then configured
 * priority (the standby first, then the further standbys in their order).
 */
import { lsnToBigInt } from './lsn';
import type { PromotionMode } from './db-promotion';
import type { PromotionTarget } from './database';

export interface Residency {
  allow?: readonly string[];
  deny?: readonly string[];
}

/** Why `region` is not allowed by `residency`, or undefined when it is. */
export function residencyRefusal(residency: Residency | undefined, region: string): string | undefined {
  if (residency?.deny?.includes(region)) return `region ${region} is denied by the residency rules`;
  if (residency?.allow && !residency.allow.includes(region)) return `region ${region} is not among the allowed regions (${residency.allow.join(', ')})`;
  return undefined;
}

export interface StandbyReading {
  region: string;
  host: string;
  port: number;
  /** 0 for the configured standby, then the further standbys in their order. */
  priority: number;
  reachable: boolean;
  inRecovery?: boolean;
  streaming?: boolean;
  receiveLsn?: string;
  replayLsn?: string;
  error?: string;
}

export interface StandbyCandidate extends StandbyReading {
  /** WAL this node holds (the later of what it received and replayed): a promotion replays all of it. */
  heldLsn?: string;
  /** The primary's current LSN minus heldLsn, when the primary answered. */
  behindBytes?: number;
  eligible: boolean;
  /** Why it is not eligible. */
  excluded?: string;
}

export interface StandbyChoice {
  /** The target the run promotes: undefined when no candidate is eligible (`reason` says why). */
  target?: PromotionTarget;
  region?: string;
  candidates: StandbyCandidate[];
  /** One line an approver reads: what was chosen and why, or why none was. */
  reason: string;
  /** Every standby is in a region the residency rules forbid: the database has nowhere to go. */
  nowhereAllowed: boolean;
}

export function chooseStandby(readings: readonly StandbyReading[], options: { mode: PromotionMode; primaryLsn?: string; residency?: Residency; database: string }): StandbyChoice {
  const primary = options.primaryLsn !== undefined ? lsnToBigInt(options.primaryLsn) : undefined;
  const candidates = readings.map((r): StandbyCandidate => {
    const held = [r.receiveLsn, r.replayLsn].filter((l): l is string => l !== undefined).sort((a, b) => (lsnToBigInt(a) < lsnToBigInt(b) ? 1 : -1))[0];
    const behind = primary !== undefined && held !== undefined ? Number(primary > lsnToBigInt(held) ? primary - lsnToBigInt(held) : 0n) : undefined;
    const excluded = residencyRefusal(options.residency, r.region)
      ?? (!r.reachable ? `does not answer (${r.error ?? 'no answer'})` : undefined)
      ?? (r.inRecovery !== true ? 'is not in recovery (it takes writes): never promoted as a standby' : undefined)
      ?? (options.mode === 'planned' && r.streaming !== true ? 'is not streaming from the primary (planned mode promotes only a streaming standby)' : undefined);
    return { ...r, ...(held !== undefined ? { heldLsn: held } : {}), ...(behind !== undefined ? { behindBytes: behind } : {}), eligible: excluded === undefined, ...(excluded ? { excluded } : {}) };
  });
  const nowhereAllowed = candidates.length > 0 && candidates.every((c) => residencyRefusal(options.residency, c.region) !== undefined);
  const ranked = candidates.filter((c) => c.eligible).sort((a, b) => {
    const [ha, hb] = [a.heldLsn !== undefined ? lsnToBigInt(a.heldLsn) : -1n, b.heldLsn !== undefined ? lsnToBigInt(b.heldLsn) : -1n];
    if (ha !== hb) return ha > hb ? -1 : 1;
    return a.priority - b.priority;
  });
  const best = ranked[0];
  const held = (c: StandbyCandidate) => `holds WAL to ${c.heldLsn ?? '?'}${c.behindBytes !== undefined ? ` (${c.behindBytes} bytes behind)` : ''}`;
  const describe = (c: StandbyCandidate) => `${c.region} ${c.eligible ? held(c) : c.excluded}`;
  if (!best) {
    return {
      candidates,
      nowhereAllowed,
      reason: nowhereAllowed
        ? `${options.database} has nowhere allowed to go: ${candidates.map((c) => c.excluded).join('; ')}`
        : `no standby of ${options.database} can be promoted: ${candidates.map(describe).join('; ')}`,
    };
  }
  const others = candidates.filter((c) => c !== best);
  const tie = ranked[1] !== undefined && ranked[1].heldLsn === best.heldLsn;
  return {
    target: best.priority === 0 ? 'standby' : `standby:${best.region}`,
    region: best.region,
    candidates,
    nowhereAllowed,
    reason: `promote ${best.region}: ${held(best)}${tie ? ', as much as another, first by configured order' : ranked.length > 1 ? ', the most of the eligible standbys' : ''}${others.length ? `; ${others.map(describe).join('; ')}` : ''}`,
  };
}
