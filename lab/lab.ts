/**
 * The local two-region lab: a Temporal dev server (its UI decoding through the
 * lab's codec server when payloads are encrypted) and, per configured
 * database, a PostgreSQL primary (its `primary.region`) with a hot standby
 * (its `standby.region`) on loopback. Everything it starts is recorded by pid
 * in `<stateDir>/lab.json` and stopped by `down`.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { clusterLocation, postgresDatabase, postgresDatabases, slotOf, standbyRegion, workerRegions, type LoadedConfig, type PostgresNodeConfig } from '../config/load';
import type { PostgresDatabaseConfig } from '../config/schema';
import {
  clusterPid,
  initPrimary,
  initStandby,
  liveState,
  removeCluster,
  seedPrimary,
  startCluster,
  stopCluster,
  waitForStreaming,
  type ClusterSpec,
  type NodeLiveState,
} from './postgres';
import { createRoute53Traffic } from '../activities/route53';
import { ensureBuckets, labRoute53, seedLabDns, startMailpit, startMoto, startRegionalService, startTwilioStandIn, startVersityGw } from './emulators';
import { createS3Client } from '../activities/s3';
import type { S3Client } from '@aws-sdk/client-s3';
import { isAlive, isListening, startDaemon, stopPid } from '../lib/processes';
import { temporalTarget } from '../lib/temporal';
import { startDevServer, stopDevServer, waitUntilReady } from './temporal-server';
import { labCodecServer, labKeyFile, startLabCodecServer } from './codec';
import { createKeyRingFile } from '../lib/codec';

/** The lab's Twilio stand-in accepts any token; the lab worker gets this one. */
export const LAB_TWILIO_TOKEN_ENV = 'LIFEBOAT_TWILIO_AUTH_TOKEN';
/** The lab's S3 server (versitygw) root keys, by the names runbooks/lab.yaml gives. */
export const LAB_S3_KEY_ENV = { accessKeyId: 'LIFEBOAT_S3_ACCESS_KEY_ID', secretAccessKey: 'LIFEBOAT_S3_SECRET_ACCESS_KEY' } as const;
export const LAB_ENVIRONMENT: Readonly<Record<string, string>> = {
  [LAB_TWILIO_TOKEN_ENV]: 'lifeboat-lab-token',
  [LAB_S3_KEY_ENV.accessKeyId]: 'lifeboat-lab',
  [LAB_S3_KEY_ENV.secretAccessKey]: 'lifeboat-lab-secret',
};

interface LabState {
  /** codecEndpoint: the UI's `--ui-codec-endpoint` when the lab started the dev server with one. */
  temporal?: { pid?: number; address: string; uiUrl: string; codecEndpoint?: string };
  /** The lab's workers: `main` (workflows and provider activities) and one per region (host-bound work). */
  workers?: Record<string, { pid: number; logFile: string; startedAt?: number }>;
  /** The shared parts: codec, dns, smtp, twilio, service-<region>. */
  daemons?: Record<string, { pid: number; logFile: string }>;
}

export interface LabNodeStatus extends NodeLiveState {
  node: 'primary' | 'standby';
  region: string;
  host: string;
  port: number;
  pid?: number;
}

export interface LabStatus {
  stateDir: string;
  temporal: { address: string; uiUrl: string; running: boolean; pid?: number };
  /** Payload encryption: the key ring, and the codec server the UI decodes through (CORS for uiOrigin only). */
  encryption?: { keyFile?: string; codec?: { url: string; uiOrigin: string; running: boolean; pid?: number; tokenRequired: boolean } };
  /** Route 53 weights of the app record, read live. */
  dns?: { endpoint: string; weights?: Record<string, number>; error?: string };
  /** Mailpit's inbox API; the Twilio stand-in. */
  inbox?: { url: string };
  twilio?: { url: string };
  services: Record<string, { url: string; healthy: boolean; frozen?: boolean; error?: string }>;
  /** The backups' S3 server (versitygw) with its buckets, and the restore tests' scratch server. */
  backups?: { s3?: { endpoint: string; buckets: string[]; reachable: boolean }; scratch?: { host: string; port: number; reachable: boolean } };
  /** Roles read live: `primary` is the writable node, `standby` the node in recovery. */
  databases: Record<string, { primary?: LabNodeStatus; standby?: LabNodeStatus; standbys: LabNodeStatus[]; others: LabNodeStatus[] }>;
}

export interface LabUpOptions {
  /** Start the Temporal dev server too (the tests bring their own). */
  temporal: boolean;
  /** Start DNS, SMTP, the Twilio stand-in and the regional services when the config points at loopback (default true). */
  shared?: boolean;
  /** Start (or create) the database clusters (default true; false: a region's services come back before its databases). */
  databases?: boolean;
  /** Rows seeded into each new primary. */
  seedRows?: number;
  log?: (line: string) => void;
}

export class Lab {
  constructor(private readonly loaded: LoadedConfig) {}

  get stateDir(): string {
    return this.loaded.stateDir;
  }

  /** Every node of a database as cluster specs (data directory and log under the state dir); `standbys`: the further standbys with their slots. */
  clusters(database: string): { primary: ClusterSpec; standby: ClusterSpec; slot: string; standbys: Array<{ cluster: ClusterSpec; slot: string }> } {
    const spec = this.database(database);
    const cluster = (node: PostgresNodeConfig): ClusterSpec => ({
      database: spec.database,
      host: node.host,
      port: node.port,
      ...clusterLocation(this.loaded, database, node.region),
    });
    return {
      primary: cluster(spec.primary),
      standby: cluster(spec.standby),
      slot: slotOf(spec, spec.standby),
      standbys: spec.standbys.map((n) => ({ cluster: cluster(n), slot: slotOf(spec, n) })),
    };
  }

  /** Every node's cluster of a database, the further standbys first (stopped before the node they stream from). */
  private allClusters(database: string): ClusterSpec[] {
    const { primary, standby, standbys } = this.clusters(database);
    return [...standbys.map((s) => s.cluster), standby, primary];
  }

  /** Idempotent: starts what is stopped, creates what is missing, leaves running parts alone. */
  async up(options: LabUpOptions): Promise<LabStatus> {
    const say = options.log ?? (() => undefined);
    mkdirSync(path.join(this.stateDir, 'logs'), { recursive: true });
    mkdirSync(path.join(this.stateDir, 'pg'), { recursive: true });
    const keyFile = labKeyFile(this.loaded);
    if (keyFile && createKeyRingFile(keyFile)) say(`created the lab's key ring ${keyFile} (mode 0600; keep it: the lab's histories need it)`);
    await this.upCodecServer(say);
    if (options.temporal) await this.upTemporal(say);
    if (options.databases !== false) for (const name of this.pgNames()) await this.upDatabase(name, options.seedRows ?? 100, say);
    if (options.shared !== false) await this.upShared(say);
    return this.status();
  }

  /** Stops everything the lab started, by pid. Data stays for the next `up`. */
  async down(log: (line: string) => void = () => undefined): Promise<void> {
    for (const name of this.pgNames()) {
      for (const spec of this.allClusters(name)) {
        const pid = clusterPid(spec);
        if (pid) {
          log(`stopping PostgreSQL ${path.basename(spec.dataDir)} (pid ${pid})`);
          await stopCluster(spec);
        }
      }
    }
    const scratch = this.scratchSpec();
    if (scratch && clusterPid(scratch)) {
      log(`stopping the restore-test scratch server (pid ${clusterPid(scratch)})`);
      await stopCluster(scratch);
    }
    const state = this.readState();
    for (const [name, worker] of Object.entries(state.workers ?? {})) {
      if (!isAlive(worker.pid)) continue;
      log(`stopping the lab worker ${name} (pid ${worker.pid})`);
      await stopPid(worker.pid, 'SIGTERM', 30_000);
    }
    for (const [name, daemon] of Object.entries(state.daemons ?? {})) {
      if (isAlive(daemon.pid)) {
        log(`stopping ${name} (pid ${daemon.pid})`);
        await stopPid(daemon.pid, 'SIGTERM', 15_000);
      }
    }
    if (state.temporal?.pid && isAlive(state.temporal.pid)) {
      log(`stopping the Temporal dev server (pid ${state.temporal.pid})`);
      await stopDevServer(state.temporal.pid);
    }
    this.writeState({});
  }

  /** Back to the initial topology (primary in its region, fresh standby, fresh data) so a drill can be repeated. */
  async reset(options: Omit<LabUpOptions, 'temporal'> = {}): Promise<LabStatus> {
    const say = options.log ?? (() => undefined);
    for (const name of this.pgNames()) {
      for (const spec of this.allClusters(name)) {
        await stopCluster(spec);
        removeCluster(spec);
      }
      say(`reset ${name}: data removed`);
    }
    for (const name of this.pgNames()) await this.upDatabase(name, options.seedRows ?? 100, say);
    if (options.shared !== false) await this.resetShared(say);
    return this.status();
  }

  /**
   * Starts `command` as the lab's worker `name` (`main`, or a region's host worker) unless one started
   * after `notBefore` (ms) runs; `lab down` stops it.
   */
  async ensureWorker(name: string, command: string, args: readonly string[], say: (line: string) => void = () => undefined, notBefore = 0): Promise<number> {
    const running = this.readState().workers?.[name];
    if (running && isAlive(running.pid)) {
      if ((running.startedAt ?? 0) >= notBefore) {
        say(`lab worker ${name} already running (pid ${running.pid}, log ${running.logFile})`);
        return running.pid;
      }
      say(`restarting the lab worker ${name} (pid ${running.pid}): the code was rebuilt since it started`);
      await stopPid(running.pid, 'SIGTERM', 30_000);
    }
    const logFile = path.join(this.stateDir, 'logs', `worker-${name}.log`);
    const pid = startDaemon(command, args, logFile, { ...process.env, NODE_ENV: 'production' });
    const state = this.readState();
    this.writeState({ ...state, workers: { ...state.workers, [name]: { pid, logFile, startedAt: Date.now() } } });
    say(`lab worker ${name} started (pid ${pid}, log ${logFile})`);
    return pid;
  }

  /** The pid of a daemon the lab started (`service-east`, `dns`, ...), if it runs. */
  daemonPid(name: string): number | undefined {
    const pid = this.readState().daemons?.[name]?.pid;
    return pid !== undefined && isAlive(pid) ? pid : undefined;
  }

  /** The regions of the lab's self-managed database nodes and the sentinels' voting regions: each gets a host worker. */
  workerRegions(): string[] {
    return workerRegions(this.loaded);
  }

  async status(): Promise<LabStatus> {
    const state = this.readState();
    const { temporal } = this.loaded.config;
    const address = state.temporal?.address ?? temporal.address;
    const uiUrl = state.temporal?.uiUrl ?? temporal.uiUrl ?? `http://127.0.0.1:${this.loaded.config.lab.temporal.uiPort}`;
    const [host, port] = splitAddress(address);
    const result: LabStatus = {
      stateDir: this.stateDir,
      temporal: { address, uiUrl, running: await isListening(host, port), pid: state.temporal?.pid },
      services: {},
      databases: {},
    };
    const encryption = this.loaded.config.temporal.encryption;
    if (encryption) {
      const codec = labCodecServer(this.loaded);
      result.encryption = {
        keyFile: temporalTarget(this.loaded).encryption?.keyFile,
        ...(codec ? { codec: { url: codec.url, uiOrigin: codec.uiOrigin, running: await isListening('127.0.0.1', codec.port), pid: state.daemons?.codec?.pid, tokenRequired: !codec.unauthenticated } } : {}),
      };
    }
    const { dns, notifications, services } = this.loaded.config;
    if (dns?.endpoint) {
      try {
        result.dns = { endpoint: dns.endpoint, weights: await this.traffic()?.readWeights() };
      } catch (err) {
        result.dns = { endpoint: dns.endpoint, error: (err as Error).message };
      }
    }
    if (notifications.email) result.inbox = { url: `http://${notifications.email.smtp.host}:${this.loaded.config.lab.inbox.port}` };
    if (notifications.twilio?.apiBaseUrl) result.twilio = { url: notifications.twilio.apiBaseUrl };
    for (const [region, service] of Object.entries(services)) {
      try {
        const response = await fetch(`${service.url.replace(/\/$/, '')}/health`, { signal: AbortSignal.timeout(5000) });
        const body = (await response.json()) as { frozen?: unknown };
        result.services[region] = { url: service.url, healthy: response.status === 200, frozen: body.frozen === true };
      } catch (err) {
        result.services[region] = { url: service.url, healthy: false, error: (err as Error).message };
      }
    }
    const backups = this.loaded.config.backups;
    if (backups) {
      const s3 = loopback(backups.storage.endpoint);
      const { bucket: evidenceBucket, ledger } = this.loaded.config.evidence;
      result.backups = {
        ...(backups.storage.endpoint ? { s3: { endpoint: backups.storage.endpoint, buckets: [...Object.values(backups.storage.buckets), ...(evidenceBucket ? [evidenceBucket] : []), ...(ledger ? [ledger.bucket] : [])], reachable: s3 ? await isListening(s3.host, s3.port) : false } } : {}),
        ...(backups.scratch ? { scratch: { host: backups.scratch.host, port: backups.scratch.port, reachable: await isListening(backups.scratch.host, backups.scratch.port) } } : {}),
      };
    }
    for (const [name, spec] of postgresDatabases(this.loaded.config)) {
      const clusters = this.clusters(name);
      const nodes: LabNodeStatus[] = [];
      for (const [which, node, cluster] of [['primary', spec.primary, clusters.primary], ['standby', spec.standby, clusters.standby], ...spec.standbys.map((n, i) => ['standby', n, clusters.standbys[i]!.cluster] as const)] as const) {
        const live = await liveState(node);
        nodes.push({ node: which, region: node.region, host: node.host, port: node.port, pid: clusterPid(cluster), ...live });
      }
      const primary = nodes.find((n) => n.reachable && n.inRecovery === false && n.readOnly === false);
      const standbys = nodes.filter((n) => n.reachable && n.inRecovery === true);
      result.databases[name] = { primary, standby: standbys[0], standbys, others: nodes.filter((n) => n !== primary && !standbys.includes(n)) };
    }
    return result;
  }

  /** The codec server the lab's UI decodes through, when the config asks for one (temporal.encryption.codecServer). */
  private async upCodecServer(say: (line: string) => void): Promise<void> {
    const codec = labCodecServer(this.loaded);
    if (!codec) return;
    const running = this.readState().daemons?.codec;
    if (!(running && isAlive(running.pid)) && (await isListening('127.0.0.1', codec.port))) {
      throw new Error(`port ${codec.port} on 127.0.0.1 is already in use by something the lab did not start: stop it or change temporal.encryption.codecServer.port`);
    }
    await this.ensureDaemon('codec', () => startLabCodecServer(this.loaded, codec, path.join(this.stateDir, 'logs', 'codec-server.log')), say);
  }

  /** Starts each shared part the config points at on loopback, unless it runs already. */
  private async upShared(say: (line: string) => void): Promise<void> {
    const { dns, notifications, services } = this.loaded.config;
    const logs = path.join(this.stateDir, 'logs');
    const dnsEndpoint = loopback(dns?.endpoint);
    if (dns && dnsEndpoint) {
      const fresh = await this.ensureDaemon('dns', () => startMoto(dnsEndpoint.host, dnsEndpoint.port, path.join(logs, 'moto.log')), say);
      if (fresh) await this.seedDns();
    }
    const smtp = notifications.email?.smtp;
    if (smtp && isLoopbackHost(smtp.host)) {
      await this.ensureDaemon('smtp', () => startMailpit(smtp.host, smtp.port, this.loaded.config.lab.inbox.port, path.join(this.stateDir, 'mailpit.db'), path.join(logs, 'mailpit.log')), say);
    }
    const twilio = loopback(notifications.twilio?.apiBaseUrl);
    if (twilio) {
      await this.ensureDaemon('twilio', () => startTwilioStandIn(twilio.host, twilio.port, path.join(this.stateDir, 'twilio-requests.jsonl'), path.join(logs, 'twilio.log')), say);
    }
    const storage = this.loaded.config.backups?.storage;
    const s3 = loopback(storage?.endpoint);
    if (storage && s3) {
      await this.ensureDaemon('s3', () => startVersityGw(s3.host, s3.port, this.s3Credentials(), path.join(this.stateDir, 's3', 'data'), path.join(this.stateDir, 's3', 'versions'), path.join(logs, 'versitygw.log')), say);
      const { bucket: evidenceBucket, ledger } = this.loaded.config.evidence;
      // Only the ledger has Object Lock (and so versioning): the backup and evidence buckets are rewritten in place.
      await ensureBuckets(this.s3Client(), [...Object.values(storage.buckets), ...(evidenceBucket ? [evidenceBucket] : [])], ledger ? [ledger.bucket] : []);
    }
    await this.upScratch(say);
    for (const [region, service] of Object.entries(services)) {
      const at = loopback(service.url);
      if (!at) continue;
      // Every region's service starts on each database's primary (cross-region for the standby region).
      const routes = Object.fromEntries(postgresDatabases(this.loaded.config).map(([name, db]) => [name, { host: db.primary.host, port: db.primary.port, database: db.database, user: db.user }]));
      await this.ensureDaemon(`service-${region}`, () => startRegionalService(region, at.host, at.port, routes, path.join(logs, `service-${region}.log`)), say);
    }
  }

  /** DNS back to all traffic on the primary region; services restarted on their initial routes, unfrozen. */
  private async resetShared(say: (line: string) => void): Promise<void> {
    if (this.loaded.config.dns?.endpoint && this.readState().daemons?.dns) await this.seedDns();
    const state = this.readState();
    for (const region of Object.keys(this.loaded.config.services)) {
      const daemon = state.daemons?.[`service-${region}`];
      if (daemon && isAlive(daemon.pid)) await stopPid(daemon.pid, 'SIGTERM', 15_000);
    }
    await this.upShared(say);
  }

  /** The restore tests' scratch server: a plain PostgreSQL cluster, no replication, no data of its own. */
  private scratchSpec(): ClusterSpec | undefined {
    const scratch = this.loaded.config.backups?.scratch;
    if (!scratch || !isLoopbackHost(scratch.host)) return undefined;
    return { database: 'postgres', host: scratch.host, port: scratch.port, dataDir: path.join(this.stateDir, 'pg', 'restore-scratch'), logFile: path.join(this.stateDir, 'logs', 'restore-scratch.log') };
  }

  private async upScratch(say: (line: string) => void): Promise<void> {
    const spec = this.scratchSpec();
    if (!spec) return;
    if (!existsSync(path.join(spec.dataDir, 'PG_VERSION'))) {
      say(`creating the restore-test scratch server on port ${spec.port}`);
      removeCluster(spec);
      await initPrimary(spec);
    }
    await startCluster(spec);
  }

  /** Credentials of the lab's S3 server: the config's environment variables, else the lab's own keys. */
  s3Credentials(): { accessKeyId: string; secretAccessKey: string } {
    const storage = this.loaded.config.backups?.storage;
    const pick = (variable: string | undefined, fallback: string) => (variable ? process.env[variable] ?? LAB_ENVIRONMENT[variable] : undefined) ?? LAB_ENVIRONMENT[fallback] ?? '';
    return { accessKeyId: pick(storage?.accessKeyIdEnv, LAB_S3_KEY_ENV.accessKeyId), secretAccessKey: pick(storage?.secretAccessKeyEnv, LAB_S3_KEY_ENV.secretAccessKey) };
  }

  /** An S3 client on the lab's server (for set-up and tests; the product builds its own from the config). */
  s3Client(): S3Client {
    const storage = this.loaded.config.backups?.storage;
    if (!storage) throw new Error(`no backups.storage in ${this.loaded.file}`);
    return createS3Client({ endpoint: storage.endpoint, region: storage.region, credentials: this.s3Credentials(), checksums: storage.checksums, partSizeBytes: storage.partSizeMiB * 1024 * 1024 });
  }

  private async seedDns(): Promise<void> {
    const { dns, databases } = this.loaded.config;
    if (!dns?.endpoint) return;
    const primaryRegion = Object.values(databases)[0]?.primary.region ?? 'east';
    await seedLabDns(labRoute53(dns.endpoint, dns.region), {
      zone: dns.zone,
      record: dns.app.record,
      ttl: dns.app.ttl,
      targets: dns.app.targets,
      primaryRegion,
      databases: Object.fromEntries(Object.entries(databases).map(([name, db]) => [name, { primary: db.primary.region, standby: standbyRegion(db) }])),
    });
  }

  private traffic() {
    const dns = this.loaded.config.dns;
    if (!dns?.endpoint) return undefined;
    return createRoute53Traffic(labRoute53(dns.endpoint, dns.region), {
      zone: dns.zone, record: dns.app.record, ttl: dns.app.ttl, targets: dns.app.targets, syncPollMs: 100, syncTimeoutMs: 10_000,
    });
  }

  /** Returns true when it had to start the daemon. */
  private async ensureDaemon(name: string, start: () => Promise<number>, say: (line: string) => void): Promise<boolean> {
    const running = this.readState().daemons?.[name];
    if (running && isAlive(running.pid)) return false;
    say(`starting ${name}`);
    const pid = await start();
    const latest = this.readState();
    this.writeState({ ...latest, daemons: { ...latest.daemons, [name]: { pid, logFile: path.join(this.stateDir, 'logs') } } });
    return true;
  }

  private async upTemporal(say: (line: string) => void): Promise<void> {
    const { port, uiPort } = this.loaded.config.lab.temporal;
    const address = `127.0.0.1:${port}`;
    const uiUrl = `http://127.0.0.1:${uiPort}`;
    const codecEndpoint = labCodecServer(this.loaded)?.url;
    const state = this.readState();
    const logFile = path.join(this.stateDir, 'logs', 'temporal.log');
    if (await isListening('127.0.0.1', port)) {
      // Ours from an earlier `up`, or a server someone started by hand: either way, use it.
      await waitUntilReady(address, state.temporal?.pid, logFile, 30_000);
      say(`Temporal dev server already running at ${address}`);
      if (codecEndpoint && state.temporal?.codecEndpoint !== codecEndpoint) {
        say(`  it was not started by this lab with --ui-codec-endpoint ${codecEndpoint}: its UI shows encrypted payloads; 'lifeboat lab down' then 'lifeboat lab up' restarts it decoding`);
      }
      this.writeState({ ...state, temporal: { pid: state.temporal?.pid, address, uiUrl, ...(state.temporal?.codecEndpoint ? { codecEndpoint: state.temporal.codecEndpoint } : {}) } });
      return;
    }
    say(`starting the Temporal dev server at ${address} (UI ${uiUrl}${codecEndpoint ? `, decoding through ${codecEndpoint}` : ''})`);
    const server = await startDevServer({ port, uiPort, dbFile: path.join(this.stateDir, 'temporal.db'), logFile, uiCodecEndpoint: codecEndpoint });
    this.writeState({ ...state, temporal: { pid: server.pid, address: server.address, uiUrl: server.uiUrl, ...(codecEndpoint ? { codecEndpoint } : {}) } });
  }

  private async upDatabase(name: string, seedRows: number, say: (line: string) => void): Promise<void> {
    const { primary, standby, slot, standbys } = this.clusters(name);
    if (!existsSync(path.join(primary.dataDir, 'PG_VERSION'))) {
      say(`creating ${name} primary on port ${primary.port}`);
      removeCluster(primary);
      removeCluster(standby);
      for (const s of standbys) removeCluster(s.cluster);
      await initPrimary(primary);
      await startCluster(primary);
      await seedPrimary(primary, seedRows);
    } else {
      await startCluster(primary);
    }
    if (!existsSync(path.join(standby.dataDir, 'PG_VERSION'))) {
      say(`creating ${name} standby on port ${standby.port} (pg_basebackup, slot ${slot})`);
      await initStandby(primary, standby, slot);
    }
    await startCluster(standby);
    const live = await liveState(standby);
    if (live.inRecovery) await waitForStreaming(standby);
    for (const further of standbys) {
      if (!existsSync(path.join(further.cluster.dataDir, 'PG_VERSION'))) {
        say(`creating ${name} standby on port ${further.cluster.port} (pg_basebackup, slot ${further.slot})`);
        await initStandby(primary, further.cluster, further.slot);
      }
      await startCluster(further.cluster);
      if ((await liveState(further.cluster)).inRecovery) await waitForStreaming(further.cluster);
    }
    say(`${name}: primary ${primary.host}:${primary.port}, standby ${[standby, ...standbys.map((s) => s.cluster)].map((c) => `${c.host}:${c.port}`).join(', ')}`);
  }

  private database(name: string): PostgresDatabaseConfig {
    return postgresDatabase(this.loaded.config, name);
  }

  /** The databases the lab runs: the self-managed PostgreSQL pairs (Cloud SQL runs elsewhere). */
  private pgNames(): string[] {
    return postgresDatabases(this.loaded.config).map(([name]) => name);
  }

  private readState(): LabState {
    const file = path.join(this.stateDir, 'lab.json');
    if (!existsSync(file)) return {};
    return JSON.parse(readFileSync(file, 'utf8')) as LabState;
  }

  private writeState(state: LabState): void {
    mkdirSync(this.stateDir, { recursive: true });
    writeFileSync(path.join(this.stateDir, 'lab.json'), `${JSON.stringify(state, null, 2)}\n`);
  }
}

function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
}

/** host and port of a URL on loopback (the lab starts only what lives there). */
function loopback(url: string | undefined): { host: string; port: number } | undefined {
  if (!url) return undefined;
  const u = new URL(url);
  if (!isLoopbackHost(u.hostname)) return undefined;
  return { host: u.hostname, port: Number(u.port || (u.protocol === 'https:' ? 443 : 80)) };
}

function splitAddress(address: string): [string, number] {
  const i = address.lastIndexOf(':');
  return [address.slice(0, i), Number(address.slice(i + 1))];
}
