/**
 * The preflight rule of a promotion, one for the run and for `start --dry-run`: the node to promote must
 * answer and be a standby; planned mode also needs the old primary and a streaming standby. Pure, so the
 * activity (which throws the refusal) and the CLI's read-only check (which shows it) cannot drift apart.
 */
import type { ReplicationInspection } from './database';
import type { PromotionMode } from './db-promotion';
import { FailureType } from './failures';

export interface PromotionRefusal {
  type: typeof FailureType.StandbyNotHealthy | typeof FailureType.PrimaryUnreachable;
  message: string;
  /** A standby that does not answer may be restarting: worth asking again. */
  retryable: boolean;
}

/**
 * Why `inspection` refuses a promotion of `database`, or undefined. `targetMayBeWritable`: the target is
 * only made a standby later in the run (a failback's original primary, rebuilt before its switchover).
 */
export function refusePromotion(inspection: ReplicationInspection, database: string, mode: PromotionMode, { targetMayBeWritable = false } = {}): PromotionRefusal | undefined {
  const { standby, primary } = inspection;
  if (!standby.reachable) return { type: FailureType.StandbyNotHealthy, retryable: true, message: `standby of ${database} unreachable: ${standby.error ?? ''}` };
  if (!targetMayBeWritable && standby.inRecovery !== true) {
    return { type: FailureType.StandbyNotHealthy, retryable: false, message: `${database} ${standby.region} (${standby.host}:${standby.port}) is not a standby (not in recovery): nothing to promote` };
  }
  if (mode !== 'planned') return undefined;
  if (!primary.reachable) {
    return { type: FailureType.PrimaryUnreachable, retryable: false, message: `planned promotion needs the primary of ${database}, which is unreachable (${primary.error ?? ''}); use mode=unplanned if it is lost` };
  }
  if (!targetMayBeWritable && standby.streaming !== true) {
    return { type: FailureType.StandbyNotHealthy, retryable: false, message: `standby of ${database} is not streaming from the primary: a planned promotion could not prove zero data loss` };
  }
  return undefined;
}
