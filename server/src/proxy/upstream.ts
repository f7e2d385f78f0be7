import type { BackendStatus, ServerIdentity } from './backend.ts';
import type { JsonObject, JsonRpcAnswer, JsonRpcId, JsonRpcNotification, JsonRpcRequest } from './jsonrpc.ts';

/** Where messages for one client go: the open answer to its request, or its session's stream. */
export interface ClientChannel {
  /** The client session, or a value unique to one stateless request. */
  readonly origin: string;
  /** Hash of the API key the client presented, if any: only it may answer requests sent here. */
  readonly keyHash: string | undefined;
  /** The client's id for the request this channel answers, so that the client can cancel it. */
  readonly requestId: JsonRpcId | undefined;
  /** The client's MCP session, if it has one. */
  readonly sessionId: string | undefined;
  /** Sends a message to the client; false when there is no way to reach it now. */
  deliver(message: JsonRpcRequest | JsonRpcNotification): boolean;
}

/** The clients with a session, for notifications that concern all of them. */
export interface SessionDirectory {
  broadcast(message: JsonRpcNotification): void;
  deliverToOrigin(origin: string, message: JsonRpcNotification): void;
}

export type AnswerOutcome = 'delivered' | 'unknown' | 'forbidden';

/** What the gate forwards to: one MCP server, or several behind prefixes. */
export interface Upstream {
  /**
   * Forwards a client request and gives the server's answer, for the caller to send with the
   * client's own id. Rejects with a `BackendFailure` when the server cannot answer.
   */
  forward(method: string, params: JsonObject | undefined, channel: ClientChannel, timeoutMs: number): Promise<JsonRpcAnswer>;
  /** Passes a client's cancellation of one of its requests on. */
  cancel(origin: string, requestId: JsonRpcId, reason: string | undefined): void;
  /** A client's answer to a request a server sent it. */
  answer(id: JsonRpcId, answer: JsonRpcAnswer, from: { origin: string; keyHash: string | undefined }): AnswerOutcome;
  /** A notification from a client for every server (roots/list_changed). */
  notifyAll(method: string): void;
  /** Forgets a client whose session ended. */
  forgetOrigin(origin: string): void;
  /** What the gate tells clients in `initialize`; undefined until a server has answered its handshake. */
  identity(): ServerIdentity | undefined;
  /** The servers' states, by label. */
  statuses(): Map<string, BackendStatus>;
  close(): Promise<void>;
}
