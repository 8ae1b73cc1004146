/** Helpers shared by the benchmark runner and its child processes. */
import os from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { parseConfig, type LoadedConfig } from '../config/load';
import { planDbPromotion } from '../cli/start';
import type { DbPromotionPolicy } from '../contract/db-promotion';
import type { RunContext } from '../contract/runbook';
import { databaseName } from './simulated-database';
import { LAB_RECORDS, labDatabase, labDbPromotionPolicy } from '../test/helpers/config';

/** The checkout's root (this file runs compiled from bench/.build/bench/). */
export const ROOT = path.resolve(__dirname, '..', '..', '..');
export const BENCH_WORKFLOWS = path.join(ROOT, 'bench', 'workflows', 'index.ts');
export const LIFEBOAT_WORKFLOWS = path.join(ROOT, 'workflows', 'index.ts');

export interface Summary {
  n: number;
  median: number;
  p99: number;
  min: number;
  max: number;
  mean: number;
}

/** Nearest-rank percentile: with n < 100 samples, p99 is the largest sample. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1] as number;
}

export function summarize(values: readonly number[]): Summary {
  return {
    n: values.length,
    median: percentile(values, 50),
    p99: percentile(values, 99),
    min: Math.min(...values),
    max: Math.max(...values),
    mean: values.reduce((a, b) => a + b, 0) / Math.max(1, values.length),
  };
}

export function ms(value: number, digits = 1): string {
  return `${value.toFixed(digits)} ms`;
}

export function mib(bytes: number): string {
  return `${(bytes / (1024 * 1024)).toFixed(0)} MiB`;
}

export interface Machine {
  cpu: string;
  cores: number;
  node: string;
  platform: string;
  memoryGiB: number;
  loadAverage: number[];
}

export function machine(): Machine {
  const cpus = os.cpus();
  return {
    cpu: cpus[0]?.model ?? 'unknown',
    cores: cpus.length,
    node: process.version,
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    memoryGiB: Math.round((os.totalmem() / 1024 ** 3) * 10) / 10,
    loadAverage: os.loadavg().map((l) => Math.round(l * 100) / 100),
  };
}

export function machineLine(m: Machine): string {
  return `${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB, Node ${m.node}, ${m.platform}`;
}

/** Progress goes to stderr; the table to stdout. */
export function say(message: string): void {
  process.stderr.write(`bench: ${message}\n`);
}

/**
 * A real Lifeboat config (validated by the real schema) naming `databases`
 * simulated databases; only people, policies and database names are used: the
 * ports are never connected to, the provider behind the names is simulated.
 */
export function benchConfig(address: string, databases: number): LoadedConfig {
  const dbs: Record<string, unknown> = {};
  for (let i = 1; i <= databases; i++) {
    dbs[databaseName(i)] = labDatabase('bench', { primary: 'east', standby: 'west' }, { primary: 20000 + i, standby: 30000 + i });
  }
  const config = {
    temporal: { address, namespace: 'default', taskQueue: 'bench' },
    notifications: { journal: LAB_RECORDS.journal },
    evidence: { mirrorDir: LAB_RECORDS.mirrorDir },
    people: { alice: { roles: ['commander'] }, bob: { roles: ['approver'] } },
    databases: dbs,
    runbooks: { 'db-promotion': labDbPromotionPolicy(3600, { escalateAfterSeconds: 600, timeoutSeconds: 1200 }) },
  };
  return parseConfig(stringify(config), path.join(os.tmpdir(), 'lifeboat-bench.yaml'));
}

/** A drill's run context and the db-promotion policy, planned by the real `lifeboat start` code as alice. */
export function planContext(loaded: LoadedConfig): { run: RunContext; policy: DbPromotionPolicy } {
  const plan = planDbPromotion(loaded, { runbook: 'db-promotion', as: 'alice', drill: true, params: [`database=${databaseName(1)}`, 'mode=planned'] });
  return { run: plan.input.run, policy: plan.input.policy };
}

export function escapeCell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, '<br>');
}
