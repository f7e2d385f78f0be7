import type { BackendStatus, ServerIdentity } from './backend.ts';
import { isObject, type JsonObject, type JsonRpcAnswer, type JsonRpcId, type JsonRpcNotification, type JsonRpcRequest } from './jsonrpc.ts';
import type { PoolReport } from './pool.ts';

/** What a client said about itself in `initialize`: a server process of its own is started with it. */
export interface ClientDescription {
  capabilities: JsonObject;
  clientInfo: { name: string; version: string } | undefined;
}

/** The client's description from its `initialize` params. */
export function clientDescriptionOf(params: JsonObject | undefined): ClientDescription {
  const info = params?.clientInfo;
  const named = isObject(info) && typeof info.name === 'string' && typeof info.version === 'string';
  return {
    capabilities: isObject(params?.capabilities) ? params.capabilities : {},
    clientInfo: named ? { name: info.name as string, version: info.version as string } : undefined,
  };
}

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
  /** What the client said in `initialize`, when it has a session. */
  readonly client?: ClientDescription | undefined;
  /** A `subscriptions/listen` stream (2026-07-28): it has no session, yet receives the resource updates it subscribed to. */
  readonly listener?: boolean;
  /** Sends a message to the client; false when there is no way to reach it now. */
  deliver(message: JsonRpcRequest | JsonRpcNotification): boolean;
}

/** The clients with a session, for notifications that concern all of them. */
export interface SessionDirectory {
  broadcast(message: JsonRpcNotification): void;
  /** Sends a message to one session; false when it has no open stream. */
  deliverToOrigin(origin: string, message: JsonRpcRequest | JsonRpcNotification): boolean;
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
  /** A client's notification for the servers (roots/list_changed); a server with a process per client passes it to that client's only. */
  notifyFromClient(method: string, from: { origin: string; keyHash: string | undefined }): void;
  /** Forgets a client whose session ended. */
  forgetOrigin(origin: string): void;
  /** What the gate tells clients in `initialize`; undefined until a server has answered its handshake. */
  identity(): ServerIdentity | undefined;
  /** The servers' states, by label. */
  statuses(): Map<string, BackendStatus>;
  /** The process pools of servers isolated per key or session, by label. */
  pools?(): Map<string, PoolReport>;
  close(): Promise<void>;
}
