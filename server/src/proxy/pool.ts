import { BackendFailure, RELAYED_CLIENT_CAPABILITIES, type BackendState, type BackendStatus, type ServerIdentity } from './backend.ts';
import { ErrorCode, type JsonObject, type JsonRpcAnswer, type JsonRpcId } from './jsonrpc.ts';
import { Relay } from './relay.ts';
import { StdioBackend, type StdioBackendOptions } from './stdio.ts';
import type { AnswerOutcome, ClientChannel, SessionDirectory, Upstream } from './upstream.ts';

/** How a stdio server is shared: one process per API key, or per MCP session (without it: one for everyone). */
export interface Isolation {
  mode: 'key' | 'session';
  /** A process without calls for this long is stopped. */
  idleTimeoutSec: number;
  /** Most tenant processes at once (the catalog process comes on top). */
  maxProcesses: number;
}

export interface PoolOptions {
  /** How to start the server; each process gets its client's capabilities and name in its handshake. */
  backend: StdioBackendOptions;
  isolation: Isolation;
  /** How long a call may wait for a process when all are busy (never longer than its own timeout). */
  queueTimeoutMs?: number;
  /** Most calls waiting for a process; past it, a call fails at once. */
  maxQueued?: number;
}

/** One process of a pool, for /status and the usage panel. */
export interface TenantReport {
  /** key: the process of one API key; session: of one MCP session; catalog: lists for clients without either. */
  kind: 'key' | 'session' | 'catalog';
  /** The key it serves (for a session, the key of the session's first call). */
  keyHash: string | undefined;
  pid: number | undefined;
  state: BackendState;
  /** Requests forwarded and not answered yet. */
  calls: number;
  idleSeconds: number;
}

export interface PoolReport {
  isolation: Isolation['mode'];
  maxProcesses: number;
  idleTimeoutSec: number;
  /** Calls waiting for a process because all are busy. */
  queued: number;
  processes: TenantReport[];
}

interface Tenant {
  readonly kind: TenantReport['kind'];
  readonly id: string;
  readonly keyHash: string | undefined;
  readonly backend: StdioBackend;
  readonly relay: Relay;
  readonly started: Promise<void>;
  ready: boolean;
  calls: number;
  lastUsed: number;
  /** Orders tenants by last use: calls a millisecond apart must not tie. */
  useOrder: number;
  /** The client session its messages go to while none of its calls is in flight. */
  home: ClientChannel | undefined;
}

interface Waiter {
  wake: () => void;
  timer: NodeJS.Timeout | undefined;
}

/** Methods a client without a key (or, for "session", without a session) may send: they go to the catalog process. */
const LISTING = new Set(['tools/list', 'resources/list', 'resources/templates/list', 'prompts/list']);
const DEFAULT_QUEUE_TIMEOUT_MS = 30_000;
const DEFAULT_MAX_QUEUED = 1000;
const CATALOG = '(catalog)';
/** The catalog process declares no client capabilities: it is asked only for lists, and nobody's roots reach it. */
const NO_CAPABILITIES: JsonObject = {};

/**
 * A stdio MCP server run as one process per API key (`isolation: "key"`) or per MCP session
 * (`"session"`), so that what a server keeps per client (roots, tasks, log level, subscriptions, the
 * client's capabilities) belongs to one tenant. A tenant's process starts on its first request, with
 * the capabilities its client declared in `initialize`; the requests that arrive meanwhile wait for it.
 * It stops after `idleTimeoutSec` without calls, when its session ends ("session"), or when a new
 * tenant needs room and it is the least recently used idle one. When all `maxProcesses` are busy, a
 * new tenant's call waits (bounded, in order) for one to become idle, and fails with a clear error
 * past its wait. Requests without a tenant (listing without a key, or without a session for
 * "session"; the gate's own tools/list) go to one catalog process, which is how the gate learns the
 * server's identity and tools at start.
 */
export class ProcessPool implements Upstream {
  readonly label: string;
  readonly #options: PoolOptions;
  readonly #sessions: SessionDirectory;
  readonly #tenants = new Map<string, Tenant>();
  readonly #waiting: Waiter[] = [];
  readonly #idleMs: number;
  #catalog: Tenant | undefined;
  #identity: ServerIdentity | undefined;
  #lastFailure: string | undefined;
  #sweeper: NodeJS.Timeout | undefined;
  #closed = false;
  #uses = 0;

  constructor(options: PoolOptions, sessions: SessionDirectory) {
    this.label = options.backend.label;
    this.#options = options;
    this.#sessions = sessions;
    this.#idleMs = options.isolation.idleTimeoutSec * 1000;
  }

  /** Starts the catalog process, to learn what the server offers; rejects if it cannot start. */
  async start(): Promise<void> {
    const catalog = this.#catalogTenant();
    await catalog.started;
    this.#identity = catalog.backend.identity();
    // Checked a few times per idle period: a process stops between idleTimeoutSec and a quarter more.
    this.#sweeper = setInterval(() => this.sweep(Date.now()), Math.min(Math.max(this.#idleMs / 4, 100), 30_000));
    this.#sweeper.unref();
  }

  forward(method: string, params: JsonObject | undefined, channel: ClientChannel, timeoutMs: number): Promise<JsonRpcAnswer> {
    if (this.#closed) return Promise.reject(this.#stopped());
    const id = this.#tenantId(channel);
    if (id === undefined) {
      if (this.#options.isolation.mode === 'session' && !LISTING.has(method)) return Promise.reject(this.#needsSession(method));
      return this.#through(this.#catalogTenant(), method, params, channel, timeoutMs);
    }
    const tenant = this.#tenants.get(id) ?? this.#openIfRoom(id, channel);
    if (tenant) return this.#through(tenant, method, params, channel, timeoutMs);
    return this.#waitForRoom(id, channel, timeoutMs).then((waited) => this.#through(waited, method, params, channel, timeoutMs));
  }

  cancel(origin: string, requestId: JsonRpcId, reason: string | undefined): void {
    for (const tenant of this.#all()) tenant.relay.cancel(origin, requestId, reason);
  }

  answer(id: JsonRpcId, answer: JsonRpcAnswer, from: { origin: string; keyHash: string | undefined }): AnswerOutcome {
    for (const tenant of this.#all()) {
      const outcome = tenant.relay.answer(id, answer, from);
      if (outcome !== 'unknown') return outcome;
    }
    return 'unknown';
  }

  /** Goes to the client's own process only, if it runs: one that starts later asks for roots itself. */
  notifyFromClient(method: string, from: { origin: string; keyHash: string | undefined }): void {
    const id = this.#options.isolation.mode === 'key' ? from.keyHash : from.keyHash === undefined ? undefined : from.origin;
    const tenant = id === undefined ? undefined : this.#tenants.get(id);
    if (tenant?.ready) tenant.relay.notifyFromClient(method);
  }

  forgetOrigin(origin: string): void {
    for (const tenant of this.#all()) {
      tenant.relay.forgetOrigin(origin);
      if (tenant.home?.origin === origin) tenant.home = undefined;
    }
    if (this.#options.isolation.mode === 'session') this.#stop(this.#tenants.get(origin));
  }

  identity(): ServerIdentity | undefined {
    return this.#identity;
  }

  /** Ready while processes start; down with the reason when the last one could not. */
  statuses(): Map<string, BackendStatus> {
    const status: BackendStatus = this.#lastFailure === undefined ? { state: 'ready', restarts: 0 } : { state: 'down', reason: this.#lastFailure, restarts: 0 };
    return new Map([[this.label, status]]);
  }

  pools(): Map<string, PoolReport> {
    const now = Date.now();
    const { mode, maxProcesses, idleTimeoutSec } = this.#options.isolation;
    const processes = [...this.#all()].map((tenant) => {
      const status = tenant.backend.status();
      return {
        kind: tenant.kind,
        keyHash: tenant.keyHash,
        pid: status.pid,
        state: status.state,
        calls: tenant.calls,
        idleSeconds: tenant.calls > 0 ? 0 : Math.floor((now - tenant.lastUsed) / 1000),
      };
    });
    return new Map([[this.label, { isolation: mode, maxProcesses, idleTimeoutSec, queued: this.#waiting.length, processes }]]);
  }

  /** Stops the processes that have had no calls for `idleTimeoutSec`. */
  sweep(now: number): void {
    for (const tenant of this.#all()) if (tenant.calls === 0 && now - tenant.lastUsed >= this.#idleMs) this.#stop(tenant);
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#sweeper);
    for (const waiter of this.#waiting.splice(0)) {
      clearTimeout(waiter.timer);
      waiter.wake();
    }
    const all = [...this.#all()];
    this.#tenants.clear();
    this.#catalog = undefined;
    await Promise.all(all.map((tenant) => tenant.relay.close()));
  }

  #tenantId(channel: ClientChannel): string | undefined {
    if (this.#options.isolation.mode === 'key') return channel.keyHash;
    // A session without a key may only list: it gets the catalog, so that anyone cannot take the processes.
    return channel.keyHash === undefined ? undefined : channel.sessionId;
  }

  /** Refused as a failure, not answered as an error: a call the server never saw is not charged. */
  #needsSession(method: string): BackendFailure {
    const message =
      `${method} on the MCP server "${this.label}" needs an MCP session: it runs one process per session (isolation: "session"). ` +
      'Send initialize first, then the Mcp-Session-Id it returns with each request';
    return new BackendFailure('refused', message, ErrorCode.InvalidRequest);
  }

  *#all(): Generator<Tenant> {
    if (this.#catalog) yield this.#catalog;
    yield* this.#tenants.values();
  }

  #catalogTenant(): Tenant {
    this.#catalog ??= this.#launch('catalog', CATALOG, undefined, undefined);
    return this.#catalog;
  }

  /** A process for a new tenant, if there is room or an idle one can make room; undefined when all are busy. */
  #openIfRoom(id: string, channel: ClientChannel): Tenant | undefined {
    if (this.#tenants.size >= this.#options.isolation.maxProcesses && !this.#stopIdlest()) return undefined;
    const tenant = this.#launch(this.#options.isolation.mode, id, channel.keyHash, channel);
    this.#tenants.set(id, tenant);
    return tenant;
  }

  #launch(kind: Tenant['kind'], id: string, keyHash: string | undefined, channel: ClientChannel | undefined): Tenant {
    const defaults = kind === 'catalog' ? NO_CAPABILITIES : RELAYED_CLIENT_CAPABILITIES;
    const backend = new StdioBackend({
      ...this.#options.backend,
      clientInfo: channel?.client?.clientInfo ?? this.#options.backend.clientInfo,
      clientCapabilities: channel?.client?.capabilities ?? defaults,
    });
    const tenant: Tenant = {
      kind,
      id,
      keyHash,
      backend,
      relay: new Relay(backend, this.#sessions, { home: () => tenant.home }),
      started: backend.start(),
      ready: false,
      calls: 0,
      lastUsed: Date.now(),
      useOrder: ++this.#uses,
      home: undefined,
    };
    tenant.started.then(
      () => {
        tenant.ready = true;
        this.#lastFailure = undefined;
      },
      (error: Error) => {
        this.#lastFailure = `a process of the MCP server "${this.label}" could not start: ${error.message}`;
        this.#stop(tenant);
      },
    );
    return tenant;
  }

  /** Stops the least recently used process without calls in flight; false when every one is busy. */
  #stopIdlest(): boolean {
    let idlest: Tenant | undefined;
    for (const tenant of this.#tenants.values()) if (tenant.calls === 0 && (idlest === undefined || tenant.useOrder < idlest.useOrder)) idlest = tenant;
    // The room it leaves is taken by the caller: nobody else is woken for it.
    this.#stop(idlest, false);
    return idlest !== undefined;
  }

  #stop(tenant: Tenant | undefined, wakeWaiter = true): void {
    if (!tenant) return;
    if (tenant === this.#catalog) this.#catalog = undefined;
    else if (this.#tenants.get(tenant.id) === tenant) this.#tenants.delete(tenant.id);
    else return;
    void tenant.relay.close();
    if (wakeWaiter) this.#wakeNext();
  }

  /** Waits in line until a process can be had for `id`, or fails past the wait. */
  async #waitForRoom(id: string, channel: ClientChannel, timeoutMs: number): Promise<Tenant> {
    const queueTimeoutMs = this.#options.queueTimeoutMs ?? DEFAULT_QUEUE_TIMEOUT_MS;
    const waitMs = timeoutMs > 0 ? Math.min(timeoutMs, queueTimeoutMs) : queueTimeoutMs;
    const deadline = Date.now() + waitMs;
    for (;;) {
      if (this.#waiting.length >= (this.#options.maxQueued ?? DEFAULT_MAX_QUEUED)) throw this.#busy(`${this.#waiting.length} calls are waiting already`);
      const remaining = deadline - Date.now();
      if (remaining <= 0 || !(await this.#wait(remaining))) throw this.#busy(`none became free within ${waitMs} ms`);
      if (this.#closed) throw this.#stopped();
      const existing = this.#tenants.get(id);
      if (existing) {
        // Another waiter opened this tenant's process: the room that woke this one is for the next.
        this.#wakeNext();
        return existing;
      }
      const opened = this.#openIfRoom(id, channel);
      if (opened) return opened;
    }
  }

  /** Resolves true when woken (a process may have become free), false past `ms`. */
  #wait(ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      const waiter: Waiter = { wake: () => resolve(true), timer: undefined };
      waiter.timer = setTimeout(() => {
        this.#waiting.splice(this.#waiting.indexOf(waiter), 1);
        resolve(false);
      }, ms);
      this.#waiting.push(waiter);
    });
  }

  #wakeNext(): void {
    const waiter = this.#waiting.shift();
    if (!waiter) return;
    clearTimeout(waiter.timer);
    waiter.wake();
  }

  #stopped(): BackendFailure {
    return new BackendFailure('down', `the MCP server "${this.label}" was stopped`);
  }

  #busy(why: string): BackendFailure {
    const { mode, maxProcesses } = this.#options.isolation;
    return new BackendFailure(
      'timeout',
      `the MCP server "${this.label}" runs one process per ${mode === 'key' ? 'API key' : 'session'} and all ${maxProcesses} (maxProcesses) are busy with calls: ${why}. Retry later, or raise maxProcesses`,
    );
  }

  #through(tenant: Tenant, method: string, params: JsonObject | undefined, channel: ClientChannel, timeoutMs: number): Promise<JsonRpcAnswer> {
    tenant.calls++;
    if (channel.sessionId !== undefined && tenant.kind !== 'catalog' && tenant.home?.sessionId !== channel.sessionId) tenant.home = this.#sessionChannel(channel);
    const answer = tenant.ready
      ? tenant.relay.forward(method, params, channel, timeoutMs)
      : tenant.started.then(
          () => tenant.relay.forward(method, params, channel, timeoutMs),
          (error: Error) => {
            throw new BackendFailure('down', `the MCP server "${this.label}" could not start a process for this client: ${error.message}`);
          },
        );
    return answer.finally(() => this.#release(tenant));
  }

  #release(tenant: Tenant): void {
    tenant.lastUsed = Date.now();
    tenant.useOrder = ++this.#uses;
    if (--tenant.calls === 0 && this.#waiting.length > 0 && tenant.kind !== 'catalog') this.#wakeNext();
  }

  /** The client's session, for what the process sends while none of its calls is in flight. */
  #sessionChannel(channel: ClientChannel): ClientChannel {
    const sessionId = channel.sessionId!;
    return {
      origin: sessionId,
      keyHash: channel.keyHash,
      requestId: undefined,
      sessionId,
      deliver: (message) => this.#sessions.deliverToOrigin(sessionId, message),
    };
  }
}

/** A pool as /status and the usage panel show it: processes by key prefix, never by key hash or session id. */
export interface PoolView extends Omit<PoolReport, 'processes'> {
  processes: (Omit<TenantReport, 'keyHash'> & { key: string | null })[];
}

export function poolView(report: PoolReport, keyPrefixOf: (keyHash: string) => string | undefined): PoolView {
  return {
    ...report,
    processes: report.processes.map(({ keyHash, ...process }) => ({ ...process, key: keyHash === undefined ? null : (keyPrefixOf(keyHash) ?? '(deleted key)') })),
  };
}
