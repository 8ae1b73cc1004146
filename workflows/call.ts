/**
 * One summarized activity call: the option profile it runs with, the line the
 * Web UI and `temporal workflow describe` show for it, and its one input
 * object. Every runbook calls its activities through this, so the options and
 * the summary are never left out or spread by hand.
 */
import type { ActivityFunction, ActivityFunctionWithOptions, ActivityOptions } from '@temporalio/workflow';

export function call<F extends ActivityFunction>(activity: ActivityFunctionWithOptions<F>, options: ActivityOptions, summary: string, ...input: Parameters<F>): Promise<Awaited<ReturnType<F>>> {
  return activity.executeWithOptions({ ...options, summary }, input);
}
