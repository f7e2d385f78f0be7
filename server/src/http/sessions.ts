import { randomUUID } from 'node:crypto';
import type { JsonRpcNotification, JsonRpcRequest } from '../proxy/jsonrpc.ts';
import type { ClientDescription, SessionDirectory } from '../proxy/upstream.ts';
import { REPLAY_LIMITS, ReplayBudget, SessionStreams, type ReplayLimits } from './replay.ts';

/** Who opened a session: the hash of the valid key sent with `initialize` (none: a keyless session), and from where. */
export interface SessionOpener {
  keyHash: string | undefined;
  address: string;
  /** What the client said about itself in `initialize`. */
  client?: ClientDescription;
}

/** One MCP client session (`Mcp-Session-Id`). Credits belong to keys, never to sessions. */
export class Session {
  readonly id = randomUUID();
  /** The key the session was opened with; undefined for a session opened without a valid key. */
  readonly keyHash: string | undefined;
  readonly address: string;
  readonly client: ClientDescription | undefined;
  lastSeen: number;
  /** The session's event streams: server messages not tied to a request go to its newest GET stream. */
  readonly streams: SessionStreams;

  constructor(now: number, opener: SessionOpener, replay: ReplayBudget) {
    this.lastSeen = now;
    this.keyHash = opener.keyHash;
    this.address = opener.address;
    this.streams = new SessionStreams(replay);
    this.client = opener.client;
  }

  deliver(message: JsonRpcRequest | JsonRpcNotification): boolean {
    return this.streams.deliver(message);
  }

  close(): void {
    this.streams.close();
  }
}

export interface SessionTableOptions {
  idleMs: number;
  /** Sessions opened with a valid key. */
  maxSessions: number;
  /** Sessions opened without a valid key, over all addresses. */
  maxKeyless: number;
  /** Sessions opened without a valid key from one address. */
  maxKeylessPerAddress: number;
  /** Called when a session ends, by DELETE, idleness or eviction. */
  onEnd: (session: Session) => void;
  /** What sessions keep for clients that resume a stream; REPLAY_LIMITS unless given. */
  replay?: ReplayLimits;
}

/** Sessions of one kind, least recently used first. */
class SessionList {
  readonly #sessions = new Map<string, Session>();
  #newest: Session | undefined;

  get size(): number {
    return this.#sessions.size;
  }

  get(id: string): Session | undefined {
    return this.#sessions.get(id);
  }

  oldest(): Session | undefined {
    return this.#sessions.values().next().value;
  }

  add(session: Session): void {
    this.#sessions.set(session.id, session);
    this.#newest = session;
  }

  /** Marks the session as the most recently used. */
  use(session: Session): void {
    // Moved to the end unless it is there already: a busy client's session usually is.
    if (session === this.#newest) return;
    this.#sessions.delete(session.id);
    this.#sessions.set(session.id, session);
    this.#newest = session;
  }

  delete(session: Session): void {
    this.#sessions.delete(session.id);
    if (this.#newest === session) this.#newest = undefined;
  }

  values(): MapIterator<Session> {
    return this.#sessions.values();
  }
}

/**
 * Live sessions. Sessions opened with a valid key and sessions opened without one are kept apart:
 * anyone can open keyless sessions, so they have their own, smaller limits (per address and in all),
 * and opening one only ever ends another keyless session, never one of a client with a key.
 */
export class SessionTable implements SessionDirectory {
  readonly #keyed = new SessionList();
  readonly #keyless = new SessionList();
  /** Keyless sessions by address, oldest first. */
  readonly #keylessByAddress = new Map<string, Set<Session>>();
  readonly #options: SessionTableOptions;
  readonly #replay: ReplayBudget;

  constructor(options: SessionTableOptions) {
    this.#options = options;
    this.#replay = new ReplayBudget(options.replay ?? REPLAY_LIMITS);
  }

  get size(): number {
    return this.#keyed.size + this.#keyless.size;
  }

  create(now: number, opener: SessionOpener): Session {
    const session = new Session(now, opener, this.#replay);
    if (session.keyHash !== undefined) {
      while (this.#keyed.size >= this.#options.maxSessions) this.#end(this.#keyed.oldest()!);
      this.#keyed.add(session);
      return session;
    }
    const fromAddress = this.#keylessByAddress.get(session.address) ?? new Set<Session>();
    while (fromAddress.size >= this.#options.maxKeylessPerAddress) this.#end(fromAddress.values().next().value!);
    while (this.#keyless.size >= this.#options.maxKeyless) this.#end(this.#keyless.oldest()!);
    fromAddress.add(session);
    this.#keylessByAddress.set(session.address, fromAddress);
    this.#keyless.add(session);
    return session;
  }

  /** The live session with this id, not marked as used. */
  find(id: string): Session | undefined {
    return this.#find(id);
  }

  /** The session, marked as used now. */
  touch(id: string, now: number): Session | undefined {
    const session = this.#find(id);
    if (!session) return undefined;
    session.lastSeen = now;
    this.#listOf(session).use(session);
    return session;
  }

  end(id: string): boolean {
    const session = this.#find(id);
    if (!session) return false;
    this.#end(session);
    return true;
  }

  /** Ends sessions idle for longer than the limit. */
  sweep(now: number): void {
    for (const list of [this.#keyed, this.#keyless]) {
      for (const session of [...list.values()]) {
        if (now - session.lastSeen <= this.#options.idleMs) break;
        if (!session.streams.connected) this.#end(session);
      }
    }
  }

  broadcast(message: JsonRpcNotification): void {
    for (const list of [this.#keyed, this.#keyless]) for (const session of list.values()) session.deliver(message);
  }

  deliverToOrigin(origin: string, message: JsonRpcRequest | JsonRpcNotification): boolean {
    return this.#find(origin)?.deliver(message) ?? false;
  }

  closeAll(): void {
    for (const list of [this.#keyed, this.#keyless]) for (const session of [...list.values()]) this.#end(session);
  }

  #find(id: string): Session | undefined {
    return this.#keyed.get(id) ?? this.#keyless.get(id);
  }

  #listOf(session: Session): SessionList {
    return session.keyHash === undefined ? this.#keyless : this.#keyed;
  }

  #end(session: Session): void {
    this.#listOf(session).delete(session);
    if (session.keyHash === undefined) {
      const fromAddress = this.#keylessByAddress.get(session.address);
      fromAddress?.delete(session);
      if (fromAddress?.size === 0) this.#keylessByAddress.delete(session.address);
    }
    session.close();
    this.#options.onEnd(session);
  }
}
