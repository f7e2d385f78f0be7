import { Buffer } from 'node:buffer';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { JsonRpcNotification, JsonRpcRequest, JsonRpcResponse } from '../proxy/jsonrpc.ts';
import { HttpError } from './respond.ts';
import { SseStream } from './sse.ts';

/** How much recent event-stream traffic is kept for clients that reconnect with `Last-Event-ID`. */
export interface ReplayLimits {
  /** Events one session keeps, oldest dropped first. */
  maxEvents: number;
  /** Bytes of messages one session keeps. */
  maxBytes: number;
  /** Bytes of messages all sessions together keep: the sessions written to least recently lose their oldest events first. */
  maxTotalBytes: number;
}

export const REPLAY_LIMITS: ReplayLimits = { maxEvents: 1_000, maxBytes: 4 * 1024 * 1024, maxTotalBytes: 64 * 1024 * 1024 };

/** Event ids are `<stream>-<sequence>`: the stream a `Last-Event-ID` resumes, and where in it. */
const EVENT_ID = /^(\d{1,15})-(\d{1,15})$/;

function eventId(stream: ResumableStream, seq: number): string {
  return `${stream.number}-${seq}`;
}

/** The first revision whose clients expect an event with an id and no data (older ones may fail to parse it). */
const PRIMING_SINCE = '2025-11-25';

function size(bytes: number): string {
  return bytes >= 1024 * 1024 ? `${bytes / 1024 / 1024} MiB` : `${bytes} bytes`;
}

function primes(req: IncomingMessage): boolean {
  const version = req.headers['mcp-protocol-version'];
  return typeof version === 'string' && version >= PRIMING_SINCE;
}

export interface KeptEvent {
  readonly seq: number;
  readonly stream: ResumableStream;
  readonly json: string;
  readonly bytes: number;
}

/** The gate-wide byte budget of the sessions' replay windows. */
export class ReplayBudget {
  readonly limits: ReplayLimits;
  #bytes = 0;
  /** Logs that keep events, least recently written first. */
  readonly #logs = new Set<EventLog>();

  constructor(limits: ReplayLimits) {
    this.limits = limits;
  }

  add(log: EventLog, bytes: number): void {
    this.#bytes += bytes;
    this.#logs.delete(log);
    this.#logs.add(log);
    while (this.#bytes > this.limits.maxTotalBytes) this.#logs.values().next().value!.dropOldest();
  }

  release(log: EventLog, bytes: number, empty: boolean): void {
    this.#bytes -= bytes;
    if (empty) this.#logs.delete(log);
  }
}

/** One session's event ids and its window of recent events. */
class EventLog {
  readonly #budget: ReplayBudget;
  /** Session-wide, so that every event id is unique within the session. */
  #seq = 0;
  #streamCount = 0;
  readonly #events: KeptEvent[] = [];
  #bytes = 0;
  /** Streams a client may still resume: unfinished, or with events in the window. */
  readonly #streams = new Map<number, ResumableStream>();
  #closed = false;

  constructor(budget: ReplayBudget) {
    this.#budget = budget;
  }

  get limits(): ReplayLimits {
    return this.#budget.limits;
  }

  get keptEvents(): number {
    return this.#events.length;
  }

  get keptBytes(): number {
    return this.#bytes;
  }

  get knownStreams(): number {
    return this.#streams.size;
  }

  open(kind: StreamKind): ResumableStream {
    const stream = new ResumableStream(this, ++this.#streamCount, kind);
    this.#streams.set(stream.number, stream);
    return stream;
  }

  /** An id for an event that carries no message. */
  mark(stream: ResumableStream): string {
    return eventId(stream, ++this.#seq);
  }

  /** Keeps a message sent on a stream and gives its event id. */
  record(stream: ResumableStream, json: string): string {
    const seq = ++this.#seq;
    const { maxEvents, maxBytes } = this.#budget.limits;
    const bytes = Buffer.byteLength(json);
    if (this.#closed || bytes > maxBytes) {
      stream.lostThrough = seq;
    } else {
      this.#events.push({ seq, stream, json, bytes });
      this.#bytes += bytes;
      stream.kept++;
      while (this.#events.length > maxEvents || this.#bytes > maxBytes) this.dropOldest();
      this.#budget.add(this, bytes);
    }
    return eventId(stream, seq);
  }

  dropOldest(): void {
    const event = this.#events.shift();
    if (!event) return;
    this.#bytes -= event.bytes;
    event.stream.kept--;
    event.stream.lostThrough = event.seq;
    this.forgetIfDone(event.stream);
    this.#budget.release(this, event.bytes, this.#events.length === 0);
  }

  forgetIfDone(stream: ResumableStream): void {
    if (stream.kept === 0 && stream.done && !stream.connected) this.#streams.delete(stream.number);
  }

  /** The stream a client that last received `lastEventId` resumes, and the events it missed; or why it cannot. */
  find(lastEventId: string): { stream: ResumableStream; missed: KeptEvent[] } | 'malformed' | 'gone' {
    const match = EVENT_ID.exec(lastEventId);
    if (!match) return 'malformed';
    const stream = this.#streams.get(Number(match[1]));
    const after = Number(match[2]);
    if (!stream || after > this.#seq || stream.lostThrough > after) return 'gone';
    return { stream, missed: this.#events.filter((event) => event.stream === stream && event.seq > after) };
  }

  close(): void {
    this.#closed = true;
    while (this.#events.length > 0) this.dropOldest();
    this.#streams.clear();
  }
}

/** A GET stream, or the event stream that answers one POSTed request. */
type StreamKind = 'get' | 'answer';

/** One logical event stream of a session. It outlives its connections: a client resumes it on a new one. */
export class ResumableStream {
  readonly number: number;
  readonly kind: StreamKind;
  readonly #log: EventLog;
  #connection: SseStream | undefined;
  /** Events of this stream in the session's window. */
  kept = 0;
  /** The last event of this stream that left the window. */
  lostThrough = 0;
  /** An answer that has its response, or a GET stream that newer ones replaced: nothing more is sent on it. */
  done = false;

  constructor(log: EventLog, number: number, kind: StreamKind) {
    this.#log = log;
    this.number = number;
    this.kind = kind;
  }

  get connected(): boolean {
    return this.#connection?.open ?? false;
  }

  /** Sends on the current connection, if there is one, and keeps the message for a resume; true when sent. */
  send(message: JsonRpcRequest | JsonRpcNotification | JsonRpcResponse): boolean {
    const json = JSON.stringify(message);
    const id = this.#log.record(this, json);
    return this.#connection?.sendEvent(json, id) ?? false;
  }

  /** Sends the response that ends an answer stream. */
  finish(response: JsonRpcResponse): void {
    this.send(response);
    this.done = true;
    this.#connection?.end();
    this.#log.forgetIfDone(this);
  }

  /**
   * Makes `connection` the stream's connection, after sending it the events it missed; an answer
   * that has its response ends there. A connection it replaces is ended.
   */
  attach(connection: SseStream, missed: readonly KeptEvent[], onClose?: () => void): void {
    connection.onClose = () => {
      if (this.#connection === connection) this.#connection = undefined;
      onClose?.();
      this.#log.forgetIfDone(this);
    };
    for (const event of missed) connection.sendEvent(event.json, eventId(this, event.seq));
    if (this.kind === 'answer' && this.done) {
      connection.end();
      return;
    }
    const previous = this.#connection;
    this.#connection = connection;
    previous?.end();
  }

  prime(connection: SseStream): void {
    connection.prime(this.#log.mark(this));
  }
}

/**
 * A session's event streams and their replay window. Every event carries an id; a client that
 * reconnects with `GET` and `Last-Event-ID` receives the events it missed on that stream (a GET
 * stream or a POST's answer), then the stream goes on live.
 */
export class SessionStreams {
  readonly #log: EventLog;
  /** GET streams: the newest with a connection receives what is sent to the session; with none connected, the newest keeps it. */
  #gets: ResumableStream[] = [];
  /** Connections opened with GET. */
  readonly #connections = new Set<SseStream>();

  constructor(budget: ReplayBudget) {
    this.#log = new EventLog(budget);
  }

  /** A client is connected to one of the session's streams. */
  get connected(): boolean {
    return this.#connections.size > 0;
  }

  /** What the session's replay window holds. */
  get window(): { events: number; bytes: number; streams: number } {
    return { events: this.#log.keptEvents, bytes: this.#log.keptBytes, streams: this.#log.knownStreams };
  }

  /** `GET /mcp`: a new stream, or with `Last-Event-ID` the stream it names, resumed. */
  open(req: IncomingMessage, res: ServerResponse): void {
    const lastEventId = req.headers['last-event-id'];
    if (lastEventId === undefined) {
      const stream = this.#log.open('get');
      const connection = this.#connect(res);
      this.#gets.push(stream);
      stream.attach(connection, [], () => this.#disconnected(connection));
      if (primes(req)) stream.prime(connection);
      this.#retireOlderGets();
      return;
    }
    const found = typeof lastEventId === 'string' ? this.#log.find(lastEventId) : 'malformed';
    const shown = JSON.stringify(String(lastEventId).slice(0, 64));
    if (found === 'malformed') {
      throw new HttpError(400, `Last-Event-ID ${shown} is not an event id of this gate (they look like 3-41): send the id of the last event received on this session`);
    }
    if (found === 'gone') {
      const { maxEvents, maxBytes } = this.#log.limits;
      throw new HttpError(
        410,
        `the events after Last-Event-ID ${shown} are not kept (a session keeps at most its last ${maxEvents} events and ${size(maxBytes)}, ` +
          `fewer when the gate is busy, and only for its own streams): open the stream again without Last-Event-ID, and send again a request whose answer was on that stream`,
      );
    }
    const { stream, missed } = found;
    const connection = this.#connect(res);
    if (stream.kind === 'get') {
      this.#gets = this.#gets.filter((get) => get !== stream);
      this.#gets.push(stream);
      stream.done = false;
    }
    stream.attach(connection, missed, () => this.#disconnected(connection));
    this.#retireOlderGets();
  }

  /** The event stream that answers a POSTed request, on its own connection. */
  openAnswer(connection: SseStream, req: IncomingMessage): ResumableStream {
    const stream = this.#log.open('answer');
    stream.attach(connection, []);
    if (primes(req)) stream.prime(connection);
    return stream;
  }

  /** Sends a message that belongs to no request; true when a connected client received it. */
  deliver(message: JsonRpcRequest | JsonRpcNotification): boolean {
    const target = this.#gets.findLast((stream) => stream.connected) ?? this.#gets.at(-1);
    return target?.send(message) ?? false;
  }

  close(): void {
    for (const connection of [...this.#connections]) connection.end();
    this.#log.close();
  }

  #connect(res: ServerResponse): SseStream {
    const connection = new SseStream(res, {}, true);
    this.#connections.add(connection);
    return connection;
  }

  #disconnected(connection: SseStream): void {
    this.#connections.delete(connection);
    this.#retireOlderGets();
  }

  /** Keeps the GET streams that are connected, and the newest: the others get nothing more. */
  #retireOlderGets(): void {
    const newest = this.#gets.at(-1);
    const [kept, retired] = [[], []] as [ResumableStream[], ResumableStream[]];
    for (const stream of this.#gets) (stream === newest || stream.connected ? kept : retired).push(stream);
    this.#gets = kept;
    for (const stream of retired) {
      stream.done = true;
      this.#log.forgetIfDone(stream);
    }
  }
}
