/**
 * The lab's links between regions: each link (one region reaching one node or
 * service of another) is its own Toxiproxy proxy, so a drill can cut or slow
 * one link and leave every other as it was. A cut disables the proxy, which
 * closes its listener and its open connections: the far side is unreachable
 * from that region only. Toxiproxy keeps no region names, so they live in the
 * link's name (`west->east:orders-primary`) and a reattached proxy still knows
 * them. Set-up (scripts/toolchain.sh, ensure_toxiproxy) builds the server.
 */
import { databaseNodes, postgresDatabases, type LoadedConfig } from '../config/load';
import { GiveUp, isAlive, isListening, startDaemon, stopPid, waitFor } from '../lib/processes';

export interface Endpoint {
  host: string;
  port: number;
}

export interface LinkSpec {
  /** `from->to:what`, e.g. `west->east:orders-primary`. */
  name: string;
  from: string;
  to: string;
  /** Where `from` connects; the proxy listens here. */
  listen: Endpoint;
  /** The real node or service in `to`. */
  upstream: Endpoint;
}

export interface LinkState extends LinkSpec {
  enabled: boolean;
  toxics: { name: string; type: string; stream: string; attributes: Record<string, unknown> }[];
}

/** A set of links: a predicate, or every link between two regions in either direction. */
export type LinkSelector = ((link: LinkState) => boolean) | { between: [string, string] };

interface ToxiproxyProxy {
  name: string;
  listen: string;
  upstream: string;
  enabled: boolean;
  toxics: LinkState['toxics'];
}

export function toxiproxyBinary(): string {
  const bin = process.env.LIFEBOAT_TOXIPROXY_BIN;
  if (!bin) throw new Error('LIFEBOAT_TOXIPROXY_BIN (the toxiproxy-server to run) is not set: run through an entry script whose set-up calls ensure_toxiproxy from scripts/toolchain.sh (scripts/test.sh, npm test)');
  return bin;
}

/** The regions a link joins, read back from its name (Toxiproxy stores nothing else). */
export function regionsOf(name: string): { from: string; to: string } {
  const match = /^(.+?)->(.+?):.+$/.exec(name);
  if (!match?.[1] || !match[2]) throw new Error(`link name ${JSON.stringify(name)} is not of the form from->to:what`);
  return { from: match[1], to: match[2] };
}

const address = (e: Endpoint) => `${e.host}:${e.port}`;

function endpoint(hostPort: string): Endpoint {
  const at = hostPort.lastIndexOf(':');
  return { host: hostPort.slice(0, at), port: Number(hostPort.slice(at + 1)) };
}

function selects(selector: LinkSelector): (link: LinkState) => boolean {
  if (typeof selector === 'function') return selector;
  const [a, b] = selector.between;
  return (l) => (l.from === a && l.to === b) || (l.from === b && l.to === a);
}

export class LinkProxy {
  private constructor(
    readonly pid: number,
    readonly port: number,
    readonly host: string,
  ) {}

  /** Starts toxiproxy-server as a daemon (it outlives this process, like the lab's other parts) and waits for its API. */
  static async start(opts: { port: number; logFile: string; host?: string }): Promise<LinkProxy> {
    const host = opts.host ?? '127.0.0.1';
    const pid = startDaemon(toxiproxyBinary(), ['-host', host, '-port', String(opts.port)], opts.logFile);
    await waitFor(`Toxiproxy on ${host}:${opts.port} (log: ${opts.logFile})`, async () => {
      if (!isAlive(pid)) throw new GiveUp(`Toxiproxy exited; see ${opts.logFile}`);
      return (await isListening(host, opts.port)) ? true : undefined;
    }, 30_000, 100);
    return new LinkProxy(pid, opts.port, host);
  }

  /** The proxy a previous command started, recorded by pid and port. */
  static attach(pid: number, port: number, host = '127.0.0.1'): LinkProxy {
    if (!isAlive(pid)) throw new Error(`Toxiproxy (pid ${pid}, ${host}:${port}) is not running`);
    return new LinkProxy(pid, port, host);
  }

  /** One API call; a failure names the call, the HTTP status and Toxiproxy's own message. */
  private async call<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T | undefined> {
    const what = `Toxiproxy ${method} ${path} (${this.host}:${this.port})`;
    let res: Response;
    try {
      res = await fetch(`http://${this.host}:${this.port}${path}`, {
        method,
        headers: body === undefined ? undefined : { 'Content-Type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (err) {
      throw new Error(`${what} did not answer: ${(err as Error & { cause?: Error }).cause?.message ?? (err as Error).message}`);
    }
    const text = await res.text();
    if (!res.ok) throw new Error(`${what} failed: HTTP ${res.status}: ${text.trim()}`);
    return text ? (JSON.parse(text) as T) : undefined;
  }

  /** Creates the links that are missing and re-points those whose addresses changed; the rest (even cut ones) stay as they are. */
  async ensure(links: LinkSpec[]): Promise<void> {
    for (const l of links) {
      const named = regionsOf(l.name);
      if (named.from !== l.from || named.to !== l.to) throw new Error(`link ${l.name} says ${named.from}->${named.to} but joins ${l.from}->${l.to}`);
    }
    await this.call('POST', '/populate', links.map((l) => ({ name: l.name, listen: address(l.listen), upstream: address(l.upstream) })));
  }

  async list(): Promise<LinkState[]> {
    const proxies = (await this.call<Record<string, ToxiproxyProxy>>('GET', '/proxies')) ?? {};
    return Object.values(proxies)
      .map((p) => ({ name: p.name, ...regionsOf(p.name), listen: endpoint(p.listen), upstream: endpoint(p.upstream), enabled: p.enabled, toxics: p.toxics }))
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  /** The links a selector picks; picking none is an error (a drill that cuts nothing would pass for a drill). */
  private async pick(selector: LinkSelector | string): Promise<LinkState[]> {
    const links = await this.list();
    const picked = links.filter(typeof selector === 'string' ? (l) => l.name === selector : selects(selector));
    if (picked.length === 0) throw new Error(`no link matches ${typeof selector === 'object' ? `between ${selector.between.join(' and ')}` : typeof selector === 'string' ? selector : 'the predicate'} (links: ${links.map((l) => l.name).join(', ') || 'none'})`);
    return picked;
  }

  /** Disables the picked links: their listeners close and open connections drop. Returns the names cut. */
  async cut(selector: LinkSelector): Promise<string[]> {
    const picked = await this.pick(selector);
    for (const l of picked) await this.call('POST', `/proxies/${encodeURIComponent(l.name)}`, { enabled: false });
    return picked.map((l) => l.name);
  }

  /** Delays every chunk by `ms` each way (a round trip gets at least 2 × ms); setting it again replaces the delay. */
  async lag(selector: LinkSelector | string, ms: number): Promise<string[]> {
    const picked = await this.pick(selector);
    for (const l of picked) {
      for (const stream of ['upstream', 'downstream'] as const) {
        const toxic = `lag_${stream}`;
        const base = `/proxies/${encodeURIComponent(l.name)}/toxics`;
        const attributes = { latency: ms, jitter: 0 };
        if (l.toxics.some((t) => t.name === toxic)) await this.call('POST', `${base}/${toxic}`, { attributes });
        else await this.call('POST', base, { name: toxic, type: 'latency', stream, toxicity: 1, attributes });
      }
    }
    return picked.map((l) => l.name);
  }

  /** Re-enables every link and removes every toxic. */
  async heal(): Promise<void> {
    await this.call('POST', '/reset');
  }

  async stop(): Promise<void> {
    await stopPid(this.pid);
  }
}

/**
 * The links a config describes: every `via` address of a database node (`databases.<db>.<node>.via.<region>`)
 * is where that region reaches the node, so the proxy listens there and forwards to the node itself.
 */
export function linksOf(loaded: LoadedConfig): LinkSpec[] {
  const links: LinkSpec[] = [];
  for (const [name, db] of postgresDatabases(loaded.config)) {
    for (const n of databaseNodes(db)) {
      // The configured roles name the first two nodes' links; a further standby is named by its region.
      const node = n === db.primary ? 'primary' : n === db.standby ? 'standby' : `standby-${n.region}`;
      for (const [from, listen] of Object.entries(n.via ?? {})) {
        if (from === n.region) continue;
        links.push({ name: `${from}->${n.region}:${name}-${node}`, from, to: n.region, listen, upstream: { host: n.host, port: n.port } });
      }
    }
  }
  return links;
}
