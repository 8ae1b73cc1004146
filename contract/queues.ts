/**
 * Task queues: the run's own queue for orchestration and provider calls, and
 * one per region for host-bound work (stopping, fencing, rewinding a node on
 * its own host), served by `lifeboat worker --region NAME` on that host.
 */

/** The host-bound queue of `region` next to the run's queue `base`. */
export function hostTaskQueue(base: string, region: string): string {
  return `${base}@${region}`;
}
