import { isObject, type JsonObject } from '../proxy/jsonrpc.ts';

/** paygate-mcp's method for several tool calls in one request, admitted all or none. */
export const BATCH_METHOD = 'tools/call_batch';

export interface BatchCall {
  name: string;
  arguments: JsonObject | undefined;
}

/** The calls of a `tools/call_batch`, or what is wrong with them, naming the index. */
export function parseBatch(params: JsonObject | undefined, maxBatchSize: number): { calls: BatchCall[] } | { problem: string } {
  const calls = params?.calls;
  if (!Array.isArray(calls)) return { problem: 'tools/call_batch needs params.calls: an array of {name, arguments}' };
  if (calls.length === 0) return { problem: 'params.calls is empty: give at least one {name, arguments}' };
  if (calls.length > maxBatchSize) return { problem: `params.calls has ${calls.length} calls; a batch may have at most ${maxBatchSize}` };
  const parsed: BatchCall[] = [];
  for (const [index, call] of calls.entries()) {
    if (!isObject(call)) return { problem: `params.calls[${index}] must be an object {name, arguments}` };
    if (typeof call.name !== 'string' || call.name === '') return { problem: `params.calls[${index}].name must be the tool's name, as a string` };
    if (call.arguments !== undefined && !isObject(call.arguments)) return { problem: `params.calls[${index}].arguments must be an object of named arguments` };
    parsed.push({ name: call.name, arguments: call.arguments });
  }
  return { calls: parsed };
}
