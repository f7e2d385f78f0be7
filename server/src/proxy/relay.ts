import type { Backend, BackendStatus, ServerIdentity, ServerMessage } from './backend.ts';
import {
  answerOf,
  ErrorCode,
  isObject,
  type JsonObject,
  type JsonRpcAnswer,
  type JsonRpcId,
  type JsonRpcNotification,
  type JsonRpcRequest,
} from './jsonrpc.ts';
import { isLogLevel, LOG_LEVELS, SessionLogLevels } from './logLevels.ts';
import { envelopeVersion, isModernVersion, withAnswerableCapabilities } from './eras.ts';
import { rootsList, sameRoots, type Root } from './roots.ts';
import { ServerListens } from './serverListens.ts';
import { relatedTaskOf, TaskOwners, tenantOf } from './tasks.ts';
import type { AnswerOutcome, ClientChannel, SessionDirectory, Upstream } from './upstream.ts';

interface InFlight {
  upstreamId: JsonRpcId;
  channel: ClientChannel;
  progressToken: string | number | undefined;
  upstreamToken: string | undefined;
}

interface ServerRequest {
  upstreamId: JsonRpcId;
  channel: ClientChannel;
}

const BROADCAST = new Set([
  'notifications/tools/list_changed',
  'notifications/resources/list_changed',
  'notifications/prompts/list_changed',
]);

/** A server shared by tenants (isolation "shared"): the roots the gate gives it in their stead. */
export interface SharedServer {
  roots: readonly Root[];
}

export interface RelayOptions {
  shared?: SharedServer;
  home?: () => ClientChannel | undefined;
}

/** What the gate keeps on the tenants' behalf for a server they share. */
interface Tenancy {
  roots: readonly Root[];
  tasks: TaskOwners;
  levels: SessionLogLevels;
}

/** Ids of requests servers send to clients: unique over every relay, so that an answer finds its way back. */
let nextServerRequestId = 1;

function progressTokenOf(params: JsonObject | undefined): string | number | undefined {
  const meta = params?._meta;
  if (!isObject(meta)) return undefined;
  const token = meta.progressToken;
  return typeof token === 'string' || typeof token === 'number' ? token : undefined;
}

/**
 * Carries messages between clients and one backend that serves them all. Requests from clients get
 * the backend's own ids and progress tokens; what the backend sends back on its own (progress,
 * logging, sampling, elicitation, roots) goes to the client it belongs to: by progress token when it
 * has one, otherwise to the one client with requests in flight. When several clients have requests
 * in flight, a message that names none of them is refused rather than sent to the wrong one.
 *
 * A server shared by tenants (`shared` given) keeps no tenant's state: the gate answers its
 * `roots/list` from the config and never passes a client's roots on, its tasks are each the creating
 * key's own (see `TaskOwners`), and each session's `logging/setLevel` filters what that session gets.
 */
export class Relay implements Upstream {
  readonly backend: Backend;
  readonly #sessions: SessionDirectory;
  readonly #inflightByOrigin = new Map<string, Set<InFlight>>();
  readonly #serverRequests = new Map<number, ServerRequest>();
  readonly #byProgressToken = new Map<string, InFlight>();
  readonly #subscriptions = new Map<string, Set<string>>();
  readonly #tenancy: Tenancy | undefined;
  readonly #home: (() => ClientChannel | undefined) | undefined;
  /** The gate's own subscriptions to a server that speaks only 2026-07-28. */
  readonly #listens: ServerListens;
  #nextProgressToken = 1;

  /**
   * `shared`: the backend serves every tenant (the gate keeps their roots, tasks and log levels apart).
   * `home`: the backend serves one client only (a process of its own): where its messages go while
   * that client has no request in flight.
   */
  constructor(backend: Backend, sessions: SessionDirectory, options: RelayOptions = {}) {
    this.backend = backend;
    this.#sessions = sessions;
    this.#tenancy = options.shared && { roots: options.shared.roots, tasks: new TaskOwners(), levels: new SessionLogLevels() };
    this.#home = options.home;
    this.#listens = new ServerListens(backend);
    backend.onServerMessage = (message) => this.#fromBackend(message);
    if (this.#modernServer) this.#listens.listenForListChanges();
  }

  get #modernServer(): boolean {
    return isModernVersion(this.backend.identity()?.protocolVersion);
  }

  forward(method: string, params: JsonObject | undefined, channel: ClientChannel, timeoutMs: number): Promise<JsonRpcAnswer> {
    const modern = this.#modernServer;
    // Once per start of the server: a stream that ended with its process is opened again here.
    if (modern) this.#listens.listenForListChanges();
    if (this.#tenancy) {
      const refusal = this.#tenancy.tasks.refusal(method, params, channel);
      if (refusal) return Promise.resolve(refusal);
      if (method === 'logging/setLevel') return this.#setLevel(params, channel, timeoutMs);
    }
    if ((method === 'resources/subscribe' || method === 'resources/unsubscribe') && typeof params?.uri === 'string') {
      if (channel.sessionId === undefined && !channel.listener) {
        const message = `${method} needs an MCP session: resource updates are sent on the session's stream (initialize, then send its Mcp-Session-Id)`;
        return Promise.resolve({ error: { code: ErrorCode.InvalidRequest, message } });
      }
      if (!this.#subscription(method, params.uri, channel.origin)) return Promise.resolve({ result: {} });
      const subscribed = modern ? this.#subscribeModern(method, params.uri, timeoutMs) : this.#send(method, params, channel, timeoutMs);
      return method === 'resources/subscribe' ? this.#keepIfSubscribed(subscribed, params.uri, channel.origin) : subscribed;
    }
    return this.#send(method, params, channel, timeoutMs);
  }

  /** A 2026-07-28 server has no resources/subscribe: the gate holds a subscriptions/listen stream per URI instead. */
  #subscribeModern(method: 'resources/subscribe' | 'resources/unsubscribe', uri: string, timeoutMs: number): Promise<JsonRpcAnswer> {
    if (method === 'resources/subscribe') return this.#listens.subscribe(uri, timeoutMs);
    this.#listens.unsubscribe(uri);
    return Promise.resolve({ result: {} });
  }

  /** A subscription the server refused is not kept: the next client to ask tries again. */
  #keepIfSubscribed(subscribed: Promise<JsonRpcAnswer>, uri: string, origin: string): Promise<JsonRpcAnswer> {
    const forget = () => this.#subscription('resources/unsubscribe', uri, origin);
    return subscribed.then(
      (answer) => {
        if ('error' in answer) forget();
        return answer;
      },
      (error: unknown) => {
        forget();
        throw error;
      },
    );
  }

  #send(method: string, params: JsonObject | undefined, channel: ClientChannel, timeoutMs: number): Promise<JsonRpcAnswer> {
    const clientToken = progressTokenOf(params);
    const entry: InFlight = { upstreamId: 0, channel, progressToken: clientToken, upstreamToken: undefined };
    // A 2025 session's client is asked for input by the gate when a 2026-07-28 server needs it: the server must know it can be.
    let upstreamParams = channel.client && this.#modernServer && envelopeVersion(params) === undefined ? withAnswerableCapabilities(params, channel.client.capabilities) : params;
    if (clientToken !== undefined) {
      // Two clients may pick the same token: upstream, each request gets one of the gate's own.
      entry.upstreamToken = `pg-${this.#nextProgressToken++}`;
      upstreamParams = { ...upstreamParams, _meta: { ...(upstreamParams!._meta as JsonObject), progressToken: entry.upstreamToken } };
      this.#byProgressToken.set(entry.upstreamToken, entry);
    }
    const forwarded = this.backend.request(method, upstreamParams, timeoutMs);
    entry.upstreamId = forwarded.upstreamId;
    this.#track(entry);
    return forwarded.response.then(
      (response) => {
        this.#untrack(entry);
        const answer = answerOf(response);
        return this.#tenancy ? this.#tenancy.tasks.answered(method, channel, answer) : answer;
      },
      (error: unknown) => {
        this.#untrack(entry);
        throw error;
      },
    );
  }

  cancel(origin: string, requestId: JsonRpcId, reason: string | undefined): void {
    for (const entry of this.#inflightByOrigin.get(origin) ?? []) {
      if (entry.channel.requestId !== requestId) continue;
      this.backend.notify('notifications/cancelled', { requestId: entry.upstreamId, ...(reason === undefined ? {} : { reason }) });
    }
  }

  answer(id: JsonRpcId, answer: JsonRpcAnswer, from: { origin: string; keyHash: string | undefined }): AnswerOutcome {
    if (typeof id !== 'number') return 'unknown';
    const pending = this.#serverRequests.get(id);
    if (!pending) return 'unknown';
    const sameClient = pending.channel.origin === from.origin || (pending.channel.keyHash !== undefined && pending.channel.keyHash === from.keyHash);
    if (!sameClient) return 'forbidden';
    this.#serverRequests.delete(id);
    this.backend.respond(pending.upstreamId, answer);
    return 'delivered';
  }

  notifyFromClient(method: string): void {
    // A shared server's roots are the config's: no client's roots/list_changed reaches it.
    if (this.#tenancy) return;
    this.backend.notify(method);
  }

  /** Gives a shared server new roots (a reloaded config), telling it to ask for them again. */
  setRoots(roots: readonly Root[]): void {
    if (!this.#tenancy || sameRoots(roots, this.#tenancy.roots)) return;
    this.#tenancy.roots = roots;
    this.backend.notify('notifications/roots/list_changed');
  }

  identity(): ServerIdentity | undefined {
    return this.backend.identity();
  }

  statuses(): Map<string, BackendStatus> {
    return new Map([[this.backend.label, this.backend.status()]]);
  }

  close(): Promise<void> {
    return this.backend.close();
  }

  /** What the relay holds for clients now: each entry is freed when its request or session ends. */
  held(): { origins: number; progressTokens: number; serverRequests: number; subscriptions: number } {
    return {
      origins: this.#inflightByOrigin.size,
      progressTokens: this.#byProgressToken.size,
      serverRequests: this.#serverRequests.size,
      subscriptions: this.#subscriptions.size,
    };
  }

  /**
   * Keeps one upstream subscription per resource for all clients: true when the request must go to
   * the backend, false when it can be answered at once.
   */
  #subscription(method: 'resources/subscribe' | 'resources/unsubscribe', uri: string, origin: string): boolean {
    let origins = this.#subscriptions.get(uri);
    if (method === 'resources/subscribe') {
      if (!origins) this.#subscriptions.set(uri, (origins = new Set()));
      const first = origins.size === 0;
      origins.add(origin);
      return first;
    }
    if (!origins?.delete(origin)) return false;
    if (origins.size > 0) return false;
    this.#subscriptions.delete(uri);
    return true;
  }

  forgetOrigin(origin: string): void {
    for (const [uri, origins] of this.#subscriptions) {
      if (origins.delete(origin) && origins.size === 0) {
        this.#subscriptions.delete(uri);
        if (this.#modernServer) this.#listens.unsubscribe(uri);
        else void this.backend.request('resources/unsubscribe', { uri }, 10_000).response.catch(() => {});
      }
    }
    const level = this.#tenancy?.levels.forget(origin);
    if (level !== undefined) void this.backend.request('logging/setLevel', { level }, 10_000).response.catch(() => {});
    this.#dropServerRequests(origin, 'the client session ended');
  }

  /**
   * A session's log level is its own: it is kept by the gate, and the server is asked for the most
   * verbose level any session wants. A request without a session receives nothing later to filter.
   */
  #setLevel(params: JsonObject | undefined, channel: ClientChannel, timeoutMs: number): Promise<JsonRpcAnswer> {
    const level = params?.level;
    if (!isLogLevel(level)) {
      return Promise.resolve({ error: { code: ErrorCode.InvalidParams, message: `params.level must be one of ${LOG_LEVELS.join(', ')}` } });
    }
    if (channel.sessionId === undefined) return Promise.resolve({ result: {} });
    const upstreamLevel = this.#tenancy!.levels.set(channel.origin, level);
    if (upstreamLevel === undefined) return Promise.resolve({ result: {} });
    return this.#send('logging/setLevel', { ...params, level: upstreamLevel }, channel, timeoutMs);
  }

  /** Whether a client wants a message: log messages below its session's level are not sent to it. */
  #wants(origin: string, message: JsonRpcRequest | JsonRpcNotification): boolean {
    return message.method !== 'notifications/message' || !this.#tenancy || this.#tenancy.levels.admits(origin, message.params?.level);
  }

  /** Tells the backend that its requests to a client that is gone will not be answered. */
  #dropServerRequests(origin: string, why: string): void {
    for (const [id, pending] of this.#serverRequests) {
      if (pending.channel.origin !== origin) continue;
      this.#serverRequests.delete(id);
      this.backend.respond(pending.upstreamId, { error: { code: ErrorCode.InternalError, message: why } });
    }
  }

  #track(entry: InFlight): void {
    let set = this.#inflightByOrigin.get(entry.channel.origin);
    if (!set) this.#inflightByOrigin.set(entry.channel.origin, (set = new Set()));
    set.add(entry);
  }

  #untrack(entry: InFlight): void {
    if (entry.upstreamToken !== undefined) this.#byProgressToken.delete(entry.upstreamToken);
    const { origin, sessionId } = entry.channel;
    const set = this.#inflightByOrigin.get(origin);
    if (!set || !set.delete(entry) || set.size > 0) return;
    this.#inflightByOrigin.delete(origin);
    // A request without a session is a client of its own: once it is answered, nobody can answer what was sent to it.
    if (sessionId === undefined && this.#serverRequests.size > 0) this.#dropServerRequests(origin, 'the client request it was sent with has ended');
  }

  /** The channels of the only client with requests in flight, newest first; none if zero or several clients. */
  #soleClient(): InFlight[] {
    if (this.#inflightByOrigin.size !== 1) return [];
    const [entries] = this.#inflightByOrigin.values();
    return [...entries!].reverse();
  }

  #deliverToSoleClient(message: JsonRpcRequest | JsonRpcNotification): ClientChannel | undefined {
    for (const entry of this.#soleClient()) {
      if (!this.#wants(entry.channel.origin, message)) return undefined;
      if (entry.channel.deliver(message)) return entry.channel;
    }
    if (this.#inflightByOrigin.size > 0) return undefined;
    const home = this.#home?.();
    return home?.deliver(message) ? home : undefined;
  }

  /**
   * A message about a task goes to its owner only: to one of the owner's requests in flight (a
   * `tasks/result` waiting for it, usually), else, for a notification, to the session that created
   * the task. A request the owner cannot take now is refused to the server.
   */
  #toTaskOwner(message: ServerMessage, taskId: string): void {
    const owner = this.#tenancy!.tasks.ownerOf(taskId);
    const entries: InFlight[] = [];
    if (owner) for (const set of this.#inflightByOrigin.values()) for (const entry of set) if (tenantOf(entry.channel) === owner.tenant) entries.push(entry);
    entries.reverse();
    if ('id' in message) {
      const id = nextServerRequestId++;
      const channel = entries.find((entry) => entry.channel.deliver({ ...message, id }))?.channel;
      if (channel) this.#serverRequests.set(id, { upstreamId: message.id, channel });
      else this.backend.respond(message.id, { error: { code: ErrorCode.MethodNotFound, message: `the gate cannot relay ${message.method}: the client that owns task ${taskId} has no request in flight to receive it` } });
      return;
    }
    if (entries.some((entry) => this.#wants(entry.channel.origin, message) && entry.channel.deliver(message))) return;
    if (owner && this.#wants(owner.origin, message)) this.#sessions.deliverToOrigin(owner.origin, message);
  }

  #fromBackend(received: ServerMessage): void {
    const message = this.#listens.receive(received);
    if (!message) return;
    const taskId = this.#tenancy && relatedTaskOf(message);
    if (taskId !== undefined) {
      this.#toTaskOwner(message, taskId);
      return;
    }
    if ('id' in message) {
      this.#serverRequest(message);
      return;
    }
    const params = message.params;
    if (message.method === 'notifications/progress' && params) {
      const entry = typeof params.progressToken === 'string' ? this.#byProgressToken.get(params.progressToken) : undefined;
      if (entry?.progressToken !== undefined) {
        entry.channel.deliver({ ...message, params: { ...params, progressToken: entry.progressToken } });
      }
      return;
    }
    if (message.method === 'notifications/cancelled' && params) {
      for (const [id, pending] of this.#serverRequests) {
        if (pending.upstreamId !== params.requestId) continue;
        this.#serverRequests.delete(id);
        pending.channel.deliver({ ...message, params: { ...params, requestId: id } });
      }
      return;
    }
    if (BROADCAST.has(message.method)) {
      this.#sessions.broadcast(message);
      return;
    }
    if (message.method === 'notifications/resources/updated' && typeof params?.uri === 'string') {
      for (const origin of this.#subscriptions.get(params.uri) ?? []) this.#sessions.deliverToOrigin(origin, message);
      return;
    }
    this.#deliverToSoleClient(message);
  }

  #serverRequest(request: JsonRpcRequest): void {
    if (request.method === 'ping') {
      this.backend.respond(request.id, { result: {} });
      return;
    }
    if (request.method === 'roots/list' && this.#tenancy) {
      this.backend.respond(request.id, rootsList(this.#tenancy.roots));
      return;
    }
    const id = nextServerRequestId++;
    const channel = this.#deliverToSoleClient({ ...request, id });
    if (channel) {
      this.#serverRequests.set(id, { upstreamId: request.id, channel });
      return;
    }
    const why =
      this.#inflightByOrigin.size > 1
        ? 'several clients have calls in flight on this server, so the gate cannot tell which one it is for'
        : 'no client that could answer it is connected';
    this.backend.respond(request.id, { error: { code: ErrorCode.MethodNotFound, message: `the gate cannot relay ${request.method}: ${why}` } });
  }
}
