/**
 * The policy a worker's own config gives a runbook's runs (contract/governance.ts):
 * its people and their roles, their public keys, the signature mode and the
 * runbook's gate rules. The worker reads it for every run at the run's start;
 * the CLI builds the same rules into the input, which the run may only narrow.
 */
import type { TrustedPolicy } from '../contract/governance';
import { RUNBOOK_DEFINITIONS } from '../contract/registry';
import type { GatePolicy } from '../contract/runbook';
import type { LifeboatConfig } from './schema';

/** A runbook's gate rules as configured; a failback's `discard-divergence` falls back to the switchover's timers. */
export function configuredGates(config: LifeboatConfig, runbook: string): Record<string, GatePolicy> {
  const runbooks: Record<string, object | undefined> = config.runbooks;
  const entry = Object.hasOwn(runbooks, runbook) ? runbooks[runbook] : undefined;
  const gates = entry && 'gates' in entry ? (entry.gates as Record<string, GatePolicy | undefined>) : undefined;
  if (!gates) return {};
  const configured: Record<string, GatePolicy> = Object.fromEntries(Object.entries(gates).flatMap(([id, g]) => (g ? [[id, g]] : [])));
  if (runbook === 'failback' && !configured['discard-divergence'] && configured.switchover) configured['discard-divergence'] = configured.switchover;
  return configured;
}

export function trustedPolicy(config: LifeboatConfig, runbook: string): TrustedPolicy {
  return {
    people: Object.fromEntries(Object.entries(config.people).map(([name, p]) => [name, [...p.roles]])),
    approvalKeys: Object.fromEntries(Object.entries(config.people).flatMap(([name, p]) => (p.publicKey ? [[name, p.publicKey]] : []))),
    signatures: config.approvals.signatures,
    gates: configuredGates(config, runbook),
    strict: RUNBOOK_DEFINITIONS.some((d) => d.name === runbook),
  };
}
