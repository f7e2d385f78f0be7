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
 */
export class Relay implements Upstream {
  readonly backend: Backend;
  readonly #sessions: SessionDirectory;
  readonly #inflightByOrigin = new Map<string, Set<InFlight>>();
  readonly #serverRequests = new Map<number, ServerRequest>();
  readonly #byProgressToken = new Map<string, InFlight>();
  readonly #subscriptions = new Map<string, Set<string>>();
  readonly #home: (() => ClientChannel | undefined) | undefined;
  #nextProgressToken = 1;

  /**
   * `home`: for a backend that serves one client only (a process of its own), where its messages go
   * while that client has no request in flight.
   */
  constructor(backend: Backend, sessions: SessionDirectory, home?: () => ClientChannel | undefined) {
    this.backend = backend;
    this.#sessions = sessions;
    this.#home = home;
    backend.onServerMessage = (message) => this.#fromBackend(message);
  }

  forward(method: string, params: JsonObject | undefined, channel: ClientChannel, timeoutMs: number): Promise<JsonRpcAnswer> {
    if ((method === 'resources/subscribe' || method === 'resources/unsubscribe') && typeof params?.uri === 'string') {
      if (channel.sessionId === undefined) {
        const message = `${method} needs an MCP session: resource updates are sent on the session's stream (initialize, then send its Mcp-Session-Id)`;
        return Promise.resolve({ error: { code: ErrorCode.InvalidRequest, message } });
      }
      if (!this.#subscription(method, params.uri, channel.origin)) return Promise.resolve({ result: {} });
    }
    const clientToken = progressTokenOf(params);
    const entry: InFlight = { upstreamId: 0, channel, progressToken: clientToken, upstreamToken: undefined };
    let upstreamParams = params;
    if (clientToken !== undefined) {
      // Two clients may pick the same token: upstream, each request gets one of the gate's own.
      entry.upstreamToken = `pg-${this.#nextProgressToken++}`;
      upstreamParams = { ...params, _meta: { ...(params!._meta as JsonObject), progressToken: entry.upstreamToken } };
      this.#byProgressToken.set(entry.upstreamToken, entry);
    }
    const forwarded = this.backend.request(method, upstreamParams, timeoutMs);
    entry.upstreamId = forwarded.upstreamId;
    this.#track(entry);
    return forwarded.response.then(
      (response) => {
        this.#untrack(entry);
        return answerOf(response);
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
    this.backend.notify(method);
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
        void this.backend.request('resources/unsubscribe', { uri }, 10_000).response.catch(() => {});
      }
    }
    this.#dropServerRequests(origin, 'the client session ended');
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
    for (const entry of this.#soleClient()) if (entry.channel.deliver(message)) return entry.channel;
    if (this.#inflightByOrigin.size > 0) return undefined;
    const home = this.#home?.();
    return home?.deliver(message) ? home : undefined;
  }

  #fromBackend(message: ServerMessage): void {
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
