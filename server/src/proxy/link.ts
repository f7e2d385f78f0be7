import type { BackendFailure, ForwardedRequest, ServerMessage } from './backend.ts';
import type { JsonObject, JsonRpcAnswer, JsonRpcId, JsonRpcMessage } from './jsonrpc.ts';
import { PendingRequests } from './pending.ts';

/**
 * The JSON-RPC side every backend shares, whatever carries the bytes: the gate's own request ids,
 * the requests waiting for answers (one that times out is cancelled upstream), and where the
 * server's messages go. `send` puts one message on the wire.
 */
export class JsonRpcLink {
  readonly #send: (message: JsonRpcMessage) => void;
  readonly #pending: PendingRequests;
  #nextId = 1;

  constructor(label: string, send: (message: JsonRpcMessage) => void) {
    this.#send = send;
    this.#pending = new PendingRequests(label, (upstreamId) =>
      this.notify('notifications/cancelled', { requestId: upstreamId, reason: 'timed out at the gate' }),
    );
  }

  /** Sends a request; its answer settles `response`, or it fails after `timeoutMs` (0: never). */
  request(method: string, params: JsonObject | undefined, timeoutMs: number): ForwardedRequest {
    const upstreamId = this.#nextId++;
    const response = this.#pending.wait(upstreamId, method, timeoutMs);
    this.#send({ jsonrpc: '2.0', id: upstreamId, method, ...(params === undefined ? {} : { params }) });
    return { upstreamId, response };
  }

  /** A request that is not sent, because the backend cannot take it. */
  refuse(failure: BackendFailure): ForwardedRequest {
    return { upstreamId: this.#nextId++, response: Promise.reject(failure) };
  }

  notify(method: string, params?: JsonObject): void {
    this.#send({ jsonrpc: '2.0', method, ...(params === undefined ? {} : { params }) });
  }

  respond(upstreamId: JsonRpcId, answer: JsonRpcAnswer): void {
    this.#send({ jsonrpc: '2.0', id: upstreamId, ...answer });
  }

  /** A message from the server: an answer settles its request; a request or notification is the server's own. */
  receive(message: JsonRpcMessage, onServerMessage: ((message: ServerMessage) => void) | undefined): void {
    if ('method' in message) onServerMessage?.(message);
    else this.#pending.settle(message);
  }

  /** Fails one request in flight, e.g. when the transport could not deliver it. */
  fail(upstreamId: number, failure: BackendFailure): void {
    this.#pending.fail(upstreamId, failure);
  }

  failAll(kind: BackendFailure['kind'], reason: string): void {
    this.#pending.failAll(kind, reason);
  }
}
