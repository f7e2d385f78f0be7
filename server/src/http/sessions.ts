import { randomUUID } from 'node:crypto';
import type { JsonRpcNotification, JsonRpcRequest } from '../proxy/jsonrpc.ts';
import type { SessionDirectory } from '../proxy/upstream.ts';
import type { SseStream } from './sse.ts';

/** One MCP client session (`Mcp-Session-Id`). Credits belong to keys, never to sessions. */
export class Session {
  readonly id = randomUUID();
  lastSeen: number;
  /** The session's GET streams, newest last: server messages not tied to a request go to the newest. */
  readonly streams = new Set<SseStream>();

  constructor(now: number) {
    this.lastSeen = now;
  }

  deliver(message: JsonRpcRequest | JsonRpcNotification): boolean {
    const newest = [...this.streams].reverse().find((stream) => stream.open);
    return newest?.send(message) ?? false;
  }

  addStream(stream: SseStream): void {
    this.streams.add(stream);
    stream.onClose = () => this.streams.delete(stream);
  }

  close(): void {
    for (const stream of this.streams) stream.end();
  }
}

export interface SessionTableOptions {
  idleMs: number;
  maxSessions: number;
  /** Called when a session ends, by DELETE, idleness or eviction. */
  onEnd: (session: Session) => void;
}

/** Live sessions, least recently used first. */
export class SessionTable implements SessionDirectory {
  readonly #sessions = new Map<string, Session>();
  readonly #options: SessionTableOptions;
  #newest: Session | undefined;

  constructor(options: SessionTableOptions) {
    this.#options = options;
  }

  get size(): number {
    return this.#sessions.size;
  }

  create(now: number): Session {
    while (this.#sessions.size >= this.#options.maxSessions) {
      const [oldest] = this.#sessions.values();
      this.end(oldest!.id);
    }
    const session = new Session(now);
    this.#sessions.set(session.id, session);
    this.#newest = session;
    return session;
  }

  /** The session, marked as used now. */
  touch(id: string, now: number): Session | undefined {
    const session = this.#sessions.get(id);
    if (!session) return undefined;
    session.lastSeen = now;
    // Moved to the end (most recent) unless it is there already: a busy client's session usually is.
    if (session !== this.#newest) {
      this.#sessions.delete(id);
      this.#sessions.set(id, session);
      this.#newest = session;
    }
    return session;
  }

  end(id: string): boolean {
    const session = this.#sessions.get(id);
    if (!session) return false;
    this.#sessions.delete(id);
    if (this.#newest === session) this.#newest = undefined;
    session.close();
    this.#options.onEnd(session);
    return true;
  }

  /** Ends sessions idle for longer than the limit. */
  sweep(now: number): void {
    for (const session of [...this.#sessions.values()]) {
      if (now - session.lastSeen <= this.#options.idleMs) break;
      if (session.streams.size === 0) this.end(session.id);
    }
  }

  broadcast(message: JsonRpcNotification): void {
    for (const session of this.#sessions.values()) session.deliver(message);
  }

  deliverToOrigin(origin: string, message: JsonRpcNotification): void {
    this.#sessions.get(origin)?.deliver(message);
  }

  closeAll(): void {
    for (const id of [...this.#sessions.keys()]) this.end(id);
  }
}
