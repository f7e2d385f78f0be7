import { ProcessPool, type Isolation } from './pool.ts';
import { Relay } from './relay.ts';
import { RemoteUpstream } from './remoteUpstream.ts';
import type { Root } from './roots.ts';
import { Router } from './router.ts';
import { StdioBackend } from './stdio.ts';
import type { SessionDirectory, Upstream } from './upstream.ts';

/**
 * A server to gate. `prefix` is set when several servers share the gate; `roots` are what a shared
 * stdio server is told its clients' roots are; `isolation`, when a stdio server runs a process per key or session.
 */
export type ServerSpec =
  | { kind: 'stdio'; prefix: string | undefined; command: string; args: string[]; env: Record<string, string>; cwd: string | undefined; roots?: Root[]; isolation?: Isolation }
  | { kind: 'remote'; prefix: string | undefined; url: string; headers: Record<string, string> };

export interface ConnectOptions {
  clientInfo: { name: string; version: string };
  sessions: SessionDirectory;
  /** The gate's name for clients when several servers are merged. */
  name: string;
  /** Where wrapped servers' stderr goes. */
  backendStderr?: NodeJS.WritableStream;
  /** How long an unused upstream session of a remote server is kept for requests without a session. */
  remoteIdleMs: number;
}

/** A short description of a server, for logs and the banner. */
export function describeServer(spec: ServerSpec): string {
  const what = spec.kind === 'stdio' ? [spec.command, ...spec.args].join(' ') : spec.url;
  const isolated = spec.kind === 'stdio' && spec.isolation ? ` (a process per ${spec.isolation.mode === 'key' ? 'API key' : 'session'})` : '';
  return `${spec.prefix === undefined ? '' : `${spec.prefix}: `}${what}${isolated}`;
}

async function connectOne(spec: ServerSpec, options: ConnectOptions): Promise<Upstream> {
  const label = spec.prefix ?? (spec.kind === 'stdio' ? spec.command : new URL(spec.url).host);
  if (spec.kind === 'remote') {
    const remote = new RemoteUpstream({ label, url: new URL(spec.url), headers: spec.headers, clientInfo: options.clientInfo }, options.sessions, options.remoteIdleMs);
    try {
      await remote.start();
    } catch (error) {
      throw new Error(`cannot reach the MCP server at ${spec.url}: ${(error as Error).message}`);
    }
    return remote;
  }
  const backendOptions = {
    label,
    command: spec.command,
    args: spec.args,
    env: spec.env,
    cwd: spec.cwd,
    clientInfo: options.clientInfo,
    ...(options.backendStderr ? { stderr: options.backendStderr } : {}),
  };
  if (spec.isolation) {
    const pool = new ProcessPool({ backend: backendOptions, isolation: spec.isolation }, options.sessions);
    try {
      await pool.start();
    } catch (error) {
      await pool.close();
      throw error;
    }
    return pool;
  }
  const backend = new StdioBackend(backendOptions);
  try {
    await backend.start();
  } catch (error) {
    await backend.close();
    throw error;
  }
  return new Relay(backend, options.sessions, { shared: { roots: spec.roots ?? [] } });
}

interface Member {
  spec: ServerSpec;
  upstream: Upstream;
}

/** What makes a server another server: everything but its roots, which a running server is given anew. */
function specKey(spec: ServerSpec): string {
  return JSON.stringify({ ...spec, roots: undefined });
}

/** Starts servers together; if one cannot start, those already started are stopped again. */
async function startAll(specs: readonly ServerSpec[], options: ConnectOptions): Promise<Member[]> {
  const started = await Promise.allSettled(specs.map((spec) => connectOne(spec, options)));
  const failed = started.find((result) => result.status === 'rejected');
  if (failed) {
    await Promise.all(started.map((result) => (result.status === 'fulfilled' ? result.value.close() : undefined)));
    throw failed.reason;
  }
  return started.map((result, index) => ({ spec: specs[index]!, upstream: (result as PromiseFulfilledResult<Upstream>).value }));
}

/**
 * The servers behind a gate, joined into one upstream: one server is the upstream itself, several
 * are routed by prefix. `update` applies a new list without touching the servers that stay: new
 * ones are started, and removed ones stop taking calls at once and are stopped once the calls
 * they were given have had `drainMs` to finish.
 */
export class ServerSet {
  readonly #options: ConnectOptions;
  #members = new Map<string, Member>();
  #upstream: Upstream;
  readonly #draining = new Set<{ member: Member; timer: NodeJS.Timeout }>();

  private constructor(options: ConnectOptions, members: Map<string, Member>, upstream: Upstream) {
    this.#options = options;
    this.#members = members;
    this.#upstream = upstream;
  }

  static async start(specs: readonly ServerSpec[], options: ConnectOptions): Promise<ServerSet> {
    const members = await startAll(specs, options);
    const byKey = new Map(specs.map((spec, index) => [specKey(spec), members[index]!]));
    return new ServerSet(options, byKey, ServerSet.#join(specs, byKey, options));
  }

  get upstream(): Upstream {
    return this.#upstream;
  }

  /** Moves to `specs`; resolves with what was started and stopped, once the new set serves. */
  async update(specs: readonly ServerSpec[], drainMs: number): Promise<{ started: string[]; stopped: string[] }> {
    const wanted = new Map(specs.map((spec) => [specKey(spec), spec]));
    const added = specs.filter((spec) => !this.#members.has(specKey(spec)));
    const fresh = await startAll(added, this.#options);
    const members = new Map<string, Member>();
    for (const [key, spec] of wanted) {
      const kept = this.#members.get(key);
      if (kept?.upstream instanceof Relay && spec.kind === 'stdio') kept.upstream.setRoots(spec.roots ?? []);
      members.set(key, kept ? { spec, upstream: kept.upstream } : fresh[added.indexOf(spec)]!);
    }
    const removed = [...this.#members].filter(([key]) => !wanted.has(key));
    this.#members = members;
    this.#upstream = ServerSet.#join(specs, members, this.#options);
    for (const [, member] of removed) {
      const entry = { member, timer: setTimeout(() => this.#stop(entry), drainMs) };
      entry.timer.unref();
      this.#draining.add(entry);
    }
    return { started: added.map(describeServer), stopped: removed.map(([, member]) => describeServer(member.spec)) };
  }

  /** Closes what has been idle too long. */
  sweep(now: number): void {
    for (const { upstream } of this.#members.values()) if (upstream instanceof RemoteUpstream) upstream.sweep(now);
  }

  async close(): Promise<void> {
    const draining = [...this.#draining];
    this.#draining.clear();
    for (const entry of draining) clearTimeout(entry.timer);
    await Promise.all([...this.#members.values(), ...draining.map((entry) => entry.member)].map((member) => member.upstream.close()));
  }

  #stop(entry: { member: Member; timer: NodeJS.Timeout }): void {
    this.#draining.delete(entry);
    void entry.member.upstream.close();
  }

  static #join(specs: readonly ServerSpec[], members: ReadonlyMap<string, Member>, options: ConnectOptions): Upstream {
    const memberOf = (spec: ServerSpec) => members.get(specKey(spec))!.upstream;
    if (specs.length === 1 && specs[0]!.prefix === undefined) return memberOf(specs[0]!);
    return new Router(new Map(specs.map((spec) => [spec.prefix!, memberOf(spec)])), options.name);
  }
}
