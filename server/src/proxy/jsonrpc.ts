/** JSON-RPC 2.0 as MCP uses it. */
export type JsonRpcId = string | number;

export type JsonObject = Record<string, unknown>;

export interface JsonRpcRequest {
  jsonrpc: '2.0';
  id: JsonRpcId;
  method: string;
  params?: JsonObject;
}

export interface JsonRpcNotification {
  jsonrpc: '2.0';
  method: string;
  params?: JsonObject;
}

export interface JsonRpcErrorBody {
  code: number;
  message: string;
  data?: unknown;
}

export interface JsonRpcResult {
  jsonrpc: '2.0';
  id: JsonRpcId;
  result: JsonObject;
}

export interface JsonRpcError {
  jsonrpc: '2.0';
  id: JsonRpcId | null;
  error: JsonRpcErrorBody;
}

export type JsonRpcResponse = JsonRpcResult | JsonRpcError;

/** A response without its id: what passes between the gate's parts, each side adding the id it speaks. */
export type JsonRpcAnswer = { result: JsonObject } | { error: JsonRpcErrorBody };

export function answerOf(response: JsonRpcResponse): JsonRpcAnswer {
  return 'error' in response ? { error: response.error } : { result: response.result };
}

export type JsonRpcMessage = JsonRpcRequest | JsonRpcNotification | JsonRpcResponse;

/** Standard and MCP error codes. */
export const ErrorCode = {
  ParseError: -32700,
  InvalidRequest: -32600,
  MethodNotFound: -32601,
  InvalidParams: -32602,
  InternalError: -32603,
  /** paygate-mcp's code for every refusal by the gate (from a closed MCP payments draft). */
  PaymentRequired: -32402,
  /** A key is missing or not valid. */
  Unauthorized: -32001,
  /** The backend could not be reached, died, or did not answer in time. */
  BackendUnavailable: -32002,
} as const;

export function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function errorResponse(id: JsonRpcId | null, code: number, message: string, data?: unknown): JsonRpcError {
  const error: JsonRpcErrorBody = { code, message };
  if (data !== undefined) error.data = data;
  return { jsonrpc: '2.0', id, error };
}

/** The message, or why the value is not one valid JSON-RPC message (from a client's body or a server's line). */
export function classify(value: unknown): JsonRpcMessage | string {
  if (Array.isArray(value)) {
    return 'JSON-RPC batch arrays are not supported (MCP removed them in 2025-06-18): send one message per request, or several tool calls as one tools/call_batch';
  }
  if (!isObject(value)) return 'the body must be a JSON-RPC message: a JSON object';
  if (value.jsonrpc !== '2.0') return 'the message must have "jsonrpc": "2.0"';
  const id = value.id;
  const validId = typeof id === 'string' || (typeof id === 'number' && Number.isFinite(id));
  if ('method' in value) {
    if (typeof value.method !== 'string' || value.method === '') return '"method" must be a non-empty string';
    if (value.params !== undefined && !isObject(value.params)) return '"params" must be an object';
    if (id !== undefined && !validId) return '"id" must be a string or a number';
    return value as unknown as JsonRpcMessage;
  }
  if ('result' in value || 'error' in value) {
    if (!validId) return 'a response must carry the string or number id of the request it answers';
    if ('result' in value && !isObject(value.result)) return '"result" must be an object';
    if ('error' in value && !(isObject(value.error) && Number.isInteger(value.error.code) && typeof value.error.message === 'string')) {
      return '"error" must be an object with an integer "code" and a string "message"';
    }
    return value as unknown as JsonRpcMessage;
  }
  return 'the message is neither a request, a notification nor a response: it needs "method", "result" or "error"';
}
