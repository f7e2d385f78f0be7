import { BackendFailure, type BackendStatus, type ServerIdentity } from './backend.ts';
import type { JsonObject, JsonRpcAnswer, JsonRpcId } from './jsonrpc.ts';
import { Relay } from './relay.ts';
import { RemoteBackend, type RemoteBackendOptions } from './remote.ts';
import type { AnswerOutcome, ClientChannel, SessionDirectory, Upstream } from './upstream.ts';

interface Scope {
  relay: Relay;
  started: Promise<void>;
  lastUsed: number;
  /** Requests forwarded through it and not answered yet. */
  calls: number;
}

/** Upstream sessions kept for API keys at most: opening one more closes the least recently used idle one. */
export const MAX_KEY_SESSIONS = 1000;

/**
 * A remote MCP server shared by the gate's clients without sharing sessions: each client session
 * gets an upstream session of its own, and requests without a session get one per API key. Upstream
 * sessions are opened on first use and closed when the client's session ends or, for keys, after
 * `idleMs` without use or when `maxKeySessions` others are open.
 */
export class RemoteUpstream implements Upstream {
  readonly label: string;
  readonly #options: RemoteBackendOptions;
  readonly #sessions: SessionDirectory;
  readonly #idleMs: number;
  readonly #maxKeySessions: number;
  readonly #scopes = new Map<string, Scope>();
  #identity: ServerIdentity | undefined;
  #status: BackendStatus = { state: 'starting', restarts: 0 };

  constructor(options: RemoteBackendOptions, sessions: SessionDirectory, idleMs: number, maxKeySessions = MAX_KEY_SESSIONS) {
    this.label = options.label;
    this.#options = options;
    this.#sessions = sessions;
    this.#idleMs = idleMs;
    this.#maxKeySessions = maxKeySessions;
  }

  /** Checks that the server answers, and learns what it offers, with a session of its own. */
  async start(): Promise<void> {
    const probe = new RemoteBackend(this.#options);
    try {
      await probe.start();
      this.#identity = probe.identity();
      this.#status = { state: 'ready', restarts: 0 };
    } finally {
      await probe.close();
    }
  }

  forward(method: string, params: JsonObject | undefined, channel: ClientChannel, timeoutMs: number): Promise<JsonRpcAnswer> {
    const scope = this.#scope(channel.sessionId === undefined ? `key:${channel.keyHash ?? ''}` : `session:${channel.sessionId}`);
    scope.calls++;
    return scope.started
      .then(
        () => scope.relay.forward(method, params, channel, timeoutMs),
        (error: Error) => {
          throw new BackendFailure('down', `the MCP server "${this.label}" could not be reached: ${error.message}`);
        },
      )
      .finally(() => scope.calls--);
  }

  cancel(origin: string, requestId: JsonRpcId, reason: string | undefined): void {
    for (const scope of this.#scopes.values()) scope.relay.cancel(origin, requestId, reason);
  }

  answer(id: JsonRpcId, answer: JsonRpcAnswer, from: { origin: string; keyHash: string | undefined }): AnswerOutcome {
    for (const scope of this.#scopes.values()) {
      const outcome = scope.relay.answer(id, answer, from);
      if (outcome !== 'unknown') return outcome;
    }
    return 'unknown';
  }

  notifyFromClient(method: string): void {
    for (const scope of this.#scopes.values()) scope.relay.notifyFromClient(method);
  }

  forgetOrigin(origin: string): void {
    for (const scope of this.#scopes.values()) scope.relay.forgetOrigin(origin);
    this.#closeScope(`session:${origin}`);
  }

  identity(): ServerIdentity | undefined {
    return this.#identity;
  }

  statuses(): Map<string, BackendStatus> {
    return new Map([[this.label, this.#status]]);
  }

  /** How many upstream sessions are open for keys (requests without a client session). */
  get keySessions(): number {
    let count = 0;
    for (const name of this.#scopes.keys()) if (name.startsWith('key:')) count++;
    return count;
  }

  /** Closes upstream sessions of keys that have not been used for a while. */
  sweep(now: number): void {
    for (const [name, scope] of this.#scopes) if (name.startsWith('key:') && now - scope.lastUsed > this.#idleMs) this.#closeScope(name);
  }

  async close(): Promise<void> {
    await Promise.all([...this.#scopes.keys()].map((name) => this.#closeScope(name)));
  }

  #scope(name: string): Scope {
    let scope = this.#scopes.get(name);
    if (!scope) {
      if (name.startsWith('key:')) this.#makeRoomForKey();
      const backend = new RemoteBackend(this.#options);
      backend.onStatusChange = (status) => {
        if (status.state !== 'stopped') this.#status = status;
      };
      scope = { relay: new Relay(backend, this.#sessions), started: backend.start(), lastUsed: 0, calls: 0 };
      scope.started.catch(() => this.#scopes.delete(name));
      this.#scopes.set(name, scope);
    }
    scope.lastUsed = Date.now();
    return scope;
  }

  /** Closes the least recently used key session without calls in flight, when as many as allowed are open. */
  #makeRoomForKey(): void {
    let open = 0;
    let idlest: [string, Scope] | undefined;
    for (const entry of this.#scopes) {
      if (!entry[0].startsWith('key:')) continue;
      open++;
      if (entry[1].calls === 0 && (idlest === undefined || entry[1].lastUsed < idlest[1].lastUsed)) idlest = entry;
    }
    if (open >= this.#maxKeySessions && idlest) void this.#closeScope(idlest[0]);
  }

  #closeScope(name: string): Promise<void> {
    const scope = this.#scopes.get(name);
    if (!scope) return Promise.resolve();
    this.#scopes.delete(name);
    return scope.relay.close();
  }
}
