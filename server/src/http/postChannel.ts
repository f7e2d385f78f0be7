import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { memoize } from '../memo.ts';
import type { Caller } from '../gate/types.ts';
import type { JsonRpcId, JsonRpcNotification, JsonRpcRequest, JsonRpcResponse } from '../proxy/jsonrpc.ts';
import type { ClientChannel, ClientDescription } from '../proxy/upstream.ts';
import { sendJson } from './respond.ts';
import type { ResumableStream } from './replay.ts';
import type { Session } from './sessions.ts';
import { SseStream } from './sse.ts';

/** The answer formats a client takes (its Accept header). */
export interface Accepts {
  readonly json: boolean;
  readonly sse: boolean;
}

const JSON_ONLY: Accepts = { json: true, sse: false };

const parseAccept = memoize((header: string): Accepts => {
  if (header.trim() === '') return JSON_ONLY;
  const types = header.split(',').map((part) => part.split(';')[0]!.trim().toLowerCase());
  const any = types.includes('*/*');
  return {
    json: any || types.includes('application/json') || types.includes('application/*'),
    sse: types.includes('text/event-stream'),
  };
});

export function acceptsOf(header: string | undefined): Accepts {
  return header === undefined ? JSON_ONLY : parseAccept(header);
}

let statelessOrigins = 0;

/**
 * Where messages for one POSTed request go. It answers with JSON unless the backend sends something
 * for this request first (progress, logging, sampling, ...) and the client accepts SSE: then the
 * answer becomes an event stream carrying those messages and, last, the response. Within a session
 * that stream is resumable: once it has begun, its messages are kept for the client even when the
 * connection drops, and a GET with `Last-Event-ID` receives the rest, the response included.
 */
export class PostChannel implements ClientChannel {
  readonly origin: string;
  readonly keyHash: string | undefined;
  readonly requestId: JsonRpcId | undefined;
  readonly sessionId: string | undefined;
  readonly client: ClientDescription | undefined;
  readonly #res: ServerResponse;
  readonly #accepts: Accepts;
  readonly #session: Session | undefined;
  readonly #headers: () => OutgoingHttpHeaders;
  /** The answer's event stream within a session. */
  #stream: ResumableStream | undefined;
  /** The answer's event stream without a session: it ends with its connection. */
  #sse: SseStream | undefined;
  #finished = false;

  constructor(res: ServerResponse, accepts: Accepts, session: Session | undefined, caller: Caller, requestId: JsonRpcId, headers: () => OutgoingHttpHeaders) {
    this.#res = res;
    this.#accepts = accepts;
    this.#session = session;
    this.#headers = headers;
    this.sessionId = session?.id;
    this.client = session?.client;
    this.origin = session?.id ?? `stateless-${++statelessOrigins}`;
    this.keyHash = caller.record?.keyHash;
    this.requestId = requestId;
  }

  deliver(message: JsonRpcRequest | JsonRpcNotification): boolean {
    if (!this.#finished && this.#accepts.sse && this.#startStream(this.#headers)) {
      if (this.#stream) {
        // Kept for the client's resume when its connection has dropped: it is waiting for this answer.
        this.#stream.send(message);
        return true;
      }
      if (this.#sse!.send(message)) return true;
    }
    return this.#session?.deliver(message) ?? false;
  }

  finish(status: number, response: JsonRpcResponse, headers: OutgoingHttpHeaders): void {
    this.#finished = true;
    if (!this.#accepts.json && status === 200) this.#startStream(() => headers);
    if (this.#stream) {
      this.#stream.finish(response);
      return;
    }
    if (this.#res.destroyed) return;
    if (this.#sse) {
      this.#sse.send(response);
      this.#sse.end();
      return;
    }
    sendJson(this.#res, status, response, headers);
  }

  /** Turns the answer into an event stream, unless it is one already; false when the client left before it began. */
  #startStream(headers: () => OutgoingHttpHeaders): boolean {
    if (this.#stream || this.#sse) return true;
    if (this.#res.destroyed) return false;
    const connection = new SseStream(this.#res, headers(), false);
    if (this.#session) this.#stream = this.#session.streams.openAnswer(connection, this.#res.req);
    else this.#sse = connection;
    return true;
  }
}
