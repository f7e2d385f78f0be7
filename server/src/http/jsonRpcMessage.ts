import { isObject, type JsonRpcMessage } from '../proxy/jsonrpc.ts';

/** The message, or why the body is not one valid JSON-RPC message. */
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
