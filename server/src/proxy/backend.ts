import { isObject, type JsonObject, type JsonRpcAnswer, type JsonRpcId, type JsonRpcNotification, type JsonRpcRequest, type JsonRpcResponse } from './jsonrpc.ts';

export type BackendState = 'starting' | 'ready' | 'down' | 'stopped';

export interface BackendStatus {
  state: BackendState;
  /** Why the backend is not ready, in words. */
  reason?: string;
  restarts: number;
  pid?: number;
}

/**
 * Why a forwarded request got no answer from the backend (`refused`: the gate could not send it
 * there, and `code` says why in JSON-RPC terms). Calls that fail this way are always refunded.
 */
export class BackendFailure extends Error {
  readonly kind: 'down' | 'crashed' | 'timeout' | 'refused';
  readonly code: number | undefined;

  constructor(kind: 'down' | 'crashed' | 'timeout' | 'refused', message: string, code?: number) {
    super(message);
    this.kind = kind;
    this.code = code;
  }
}

/** The backend's own `initialize` result: its capabilities, identity and instructions. */
export interface ServerIdentity {
  protocolVersion: string;
  capabilities: JsonObject;
  serverInfo: JsonObject;
  instructions?: string;
}

export interface ForwardedRequest {
  /** The id the request carries upstream; the backend's answer and its progress refer to it. */
  upstreamId: JsonRpcId;
  response: Promise<JsonRpcResponse>;
}

/** A message the backend starts: a request to the client (sampling, elicitation, roots) or a notification. */
export type ServerMessage = JsonRpcRequest | JsonRpcNotification;

/** An MCP server behind the gate. The gate is its only client; ids on this side are the backend's own. */
export interface Backend {
  readonly label: string;
  status(): BackendStatus;
  identity(): ServerIdentity | undefined;
  /** Starts the backend and completes the MCP handshake; rejects if the first start fails. */
  start(): Promise<void>;
  request(method: string, params: JsonObject | undefined, timeoutMs: number): ForwardedRequest;
  notify(method: string, params?: JsonObject): void;
  /** Answers a request the backend sent to the client. */
  respond(upstreamId: JsonRpcId, answer: JsonRpcAnswer): void;
  onServerMessage: ((message: ServerMessage) => void) | undefined;
  onStatusChange: ((status: BackendStatus) => void) | undefined;
  close(): Promise<void>;
}

/** The revision the gate asks backends for in its own handshake. */
export const BACKEND_PROTOCOL_VERSION = '2025-11-25';

/** The gate's capabilities towards backends: it relays these requests to its own clients. */
export const RELAYED_CLIENT_CAPABILITIES = { sampling: {}, elicitation: {}, roots: { listChanged: true } };

export function handshakeParams(clientInfo: { name: string; version: string }, capabilities: JsonObject = RELAYED_CLIENT_CAPABILITIES): JsonObject {
  return { protocolVersion: BACKEND_PROTOCOL_VERSION, capabilities, clientInfo };
}

/** The backend's identity from its answer to `initialize`; throws when it refused. */
export function identityFrom(answer: JsonRpcResponse, label: string): ServerIdentity {
  if ('error' in answer) throw new Error(`the MCP server "${label}" refused initialize: ${answer.error.message}`);
  const result = answer.result;
  return {
    protocolVersion: typeof result.protocolVersion === 'string' ? result.protocolVersion : BACKEND_PROTOCOL_VERSION,
    capabilities: isObject(result.capabilities) ? result.capabilities : {},
    serverInfo: isObject(result.serverInfo) ? result.serverInfo : { name: label, version: '0' },
    ...(typeof result.instructions === 'string' ? { instructions: result.instructions } : {}),
  };
}
