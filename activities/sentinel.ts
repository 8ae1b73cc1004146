/**
 * The sentinel's activities: its rules from the worker's own config (a local
 * activity, like admission), a probe of the target run by each region's worker
 * from that region (through its links, with a deadline: a hung node is a failure,
 * not a wait), and the start of the recovery run through the CLI's start path
 * (roles, the target's hold, the cooldown).
 */
import { ApplicationFailure } from '@temporalio/common';
import type { Client } from '@temporalio/client';
import { addressFrom, databaseNodes, postgresDatabase, serviceUrlFrom, type LoadedConfig, type PostgresNodeConfig } from '../config/load';
import { FailureType } from '../contract/failures';
import { SPLIT_BRAIN, type ProbeResult, type QuorumRules, type SentinelStatus, type SentinelTarget, type SentinelTrigger } from '../contract/sentinel';
import { withPgSession } from '../lib/pg';

export type SentinelRules = SentinelStatus['rules'] & { identity: string; onCall: string[] };

export interface SentinelDependencies {
  /** The worker's own config: the sentinel's rules come from here, never from its input. */
  loaded: LoadedConfig;
  /** The region this worker probes from (`lifeboat worker --region`); undefined on the main worker. */
  region?: string;
  /** The CLI's start path (workers/dependencies.ts), with the worker's own client. */
  startRun?: (client: Client, request: { runbook: string; params: string[]; as: string; detectedAt: string; incident: string; trigger: SentinelTrigger & { declaration: string } }) => Promise<{ workflowId: string; runId: string }>;
}

export interface ProbeInput {
  target: SentinelTarget;
  /** The region whose view this probe is: it must be this worker's. */
  region: string;
  timeoutMs: number;
}

export function createSentinelActivities(deps: { sentinel?: SentinelDependencies; client?: Client }) {
  const need = (): SentinelDependencies => {
    if (!deps.sentinel) throw ApplicationFailure.nonRetryable('this worker has no config for sentinels', FailureType.NotConfigured);
    return deps.sentinel;
  };
  return {
    /** The sentinel's rules for `target`, from the worker's config (local activity: fixed in history, answered by nobody else). */
    async sentinelRules(input: { target: SentinelTarget }): Promise<SentinelRules> {
      const { loaded } = need();
      return sentinelRules(loaded, input.target);
    },

    /** What this region sees of the target now. Never throws for the target's failure: that is the verdict. */
    async probeTarget(input: ProbeInput): Promise<ProbeResult> {
      const { loaded, region } = need();
      // A probe served by another region's worker would vote for a region it is not in.
      if (region !== input.region) {
        throw ApplicationFailure.nonRetryable(`this worker probes from ${region ?? 'no region (the main worker)'}, not ${input.region}`, FailureType.NotConfigured);
      }
      const at = new Date().toISOString();
      const seen = input.target.kind === 'database'
        ? await probeDatabase(loaded, input.target.database, region, input.timeoutMs)
        : await probeRegion(loaded, input.target.region, region, input.timeoutMs);
      return { region, at, ...seen };
    },

    /** Starts the recovery run as the sentinel's identity, through the CLI's start path; a refusal is returned, not thrown. */
    async startRecovery(input: { trigger: SentinelTrigger; declaration: string; incident: string }): Promise<{ workflowId: string; runId: string } | { refused: string }> {
      const { loaded, startRun } = need();
      if (!startRun || !deps.client) throw ApplicationFailure.nonRetryable('this worker cannot start runs (no client)', FailureType.NotConfigured);
      const identity = loaded.config.sentinels?.identity;
      if (!identity) throw ApplicationFailure.nonRetryable(`no sentinels: in ${loaded.file}`, FailureType.NotConfigured);
      const { target } = input.trigger;
      const request = target.kind === 'database'
        ? { runbook: 'db-promotion', params: [`database=${target.database}`, 'mode=unplanned'] }
        : { runbook: 'regional-evacuation', params: [`region=${target.region}`, 'mode=unplanned'] };
      try {
        return await startRun(deps.client, { ...request, as: identity, detectedAt: input.trigger.detectedAt, incident: input.incident, trigger: { ...input.trigger, declaration: input.declaration } });
      } catch (err) {
        // A refusal (held by a run, within the cooldown, already running) is the answer: the sentinel records it and holds.
        const e = err as Error;
        if (e.name === 'RunRefusedError' || e.name === 'UsageError') return { refused: e.message };
        throw err;
      }
    },
  };
}

export type SentinelActivities = ReturnType<typeof createSentinelActivities>;

/** The rules for one target from a config (the CLI shows the same ones). */
export function sentinelRules(loaded: LoadedConfig, target: SentinelTarget): SentinelRules {
  const { config } = loaded;
  const s = config.sentinels;
  if (!s) throw ApplicationFailure.nonRetryable(`no sentinels: in ${loaded.file}`, FailureType.NotConfigured);
  const watched = target.kind === 'database' ? s.databases.includes(target.database) : s.services.includes(target.region);
  if (!watched) {
    throw ApplicationFailure.nonRetryable(`${target.kind === 'database' ? `database ${target.database}` : `region ${target.region}`} is not watched by sentinels: in ${loaded.file}`, FailureType.NotConfigured);
  }
  // A region's evacuation moves people's traffic: it is always confirmed by a person.
  const tier = target.kind === 'database' ? String(postgresDatabase(config, target.database).tier) : undefined;
  const tierPolicy = tier !== undefined && (tier === '1' || tier === '2' || tier === '3') ? s.tiers[tier] : undefined;
  const policy = target.kind === 'database' ? tierPolicy?.policy ?? 'confirm' : tierPolicy?.policy === 'notify' ? 'notify' : 'confirm';
  const rules: QuorumRules = { regions: [...s.regions], healthCheckIntervalSeconds: s.healthCheckIntervalSeconds, failoverThresholdSeconds: s.failoverThresholdSeconds };
  return {
    ...rules,
    probeTimeoutSeconds: s.probeTimeoutSeconds,
    minIntervalMinutes: s.minIntervalMinutes,
    policy,
    vetoSeconds: tierPolicy?.vetoSeconds ?? 60,
    identity: s.identity,
    onCall: [...config.notifications.onCall],
  };
}

type Seen = Pick<ProbeResult, 'verdict' | 'detail'>;

/** One node as `from` reaches it: writable, in recovery, or not answering within the deadline. */
async function probeNode(loaded: LoadedConfig, database: string, n: PostgresNodeConfig, from: string, timeoutMs: number): Promise<{ label: string; writable: boolean; answer: string }> {
  const spec = postgresDatabase(loaded.config, database);
  const node = n === spec.primary ? 'primary' : 'standby';
  const address = addressFrom(n, from);
  const label = `${node} ${n.region} ${n.host}:${n.port}${address.link ? ` (via ${address.link})` : ''}`;
  const started = Date.now();
  const deadline = new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs).unref());
  try {
    const inRecovery = await Promise.race([
      withPgSession(
        { host: address.host, port: address.port, user: spec.user, database: spec.database, password: spec.passwordEnv ? process.env[spec.passwordEnv] : undefined, connectionTimeoutMillis: timeoutMs, query_timeout: timeoutMs, statement_timeout: timeoutMs },
        async (c) => (await c.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r')).rows[0]?.r,
      ),
      deadline,
    ]);
    return { label, writable: inRecovery === false, answer: `${inRecovery ? 'in recovery' : 'writable'} in ${Date.now() - started} ms` };
  } catch (err) {
    return { label, writable: false, answer: `failed: ${(err as Error).message}` };
  }
}

/** Healthy while a writable primary answers from this region (the standby once promoted counts: it is the primary). */
async function probeDatabase(loaded: LoadedConfig, database: string, from: string, timeoutMs: number): Promise<Seen> {
  const nodes = await Promise.all(databaseNodes(postgresDatabase(loaded.config, database)).map((node) => probeNode(loaded, database, node, from, timeoutMs)));
  const writable = nodes.filter((n) => n.writable);
  const detail = nodes.map((n) => `${n.label}: ${n.answer}`).join('; ');
  if (writable.length > 1) return { verdict: 'healthy', detail: `${SPLIT_BRAIN} (split brain, not a lost primary): ${detail}` };
  return { verdict: writable.length === 1 ? 'healthy' : 'failing', detail };
}

/** A region is lost when its service does not answer and none of its database nodes does. */
async function probeRegion(loaded: LoadedConfig, region: string, from: string, timeoutMs: number): Promise<Seen> {
  const url = serviceUrlFrom(loaded, region, from);
  let service: string;
  let serviceUp = false;
  try {
    const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(timeoutMs) });
    serviceUp = res.ok;
    service = `service ${region}: HTTP ${res.status}`;
  } catch (err) {
    service = `service ${region}: ${(err as Error).message}`;
  }
  const nodes: Array<{ label: string; writable: boolean; answer: string }> = [];
  for (const [name, db] of Object.entries(loaded.config.databases)) {
    if (db.provider !== 'postgres') continue;
    for (const node of databaseNodes(db)) if (node.region === region) nodes.push({ ...(await probeNode(loaded, name, node, from, timeoutMs)), label: `${name} ${node === db.primary ? 'primary' : 'standby'}` });
  }
  const answering = nodes.filter((n) => !n.answer.startsWith('failed'));
  const detail = [service, ...nodes.map((n) => `${n.label}: ${n.answer}`)].join('; ');
  return { verdict: !serviceUp && answering.length === 0 ? 'failing' : 'healthy', detail };
}
