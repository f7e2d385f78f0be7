import type { JsonObject } from '../proxy/jsonrpc.ts';
import { parseToolCall, type CallProblem, type ToolCall } from './toolCall.ts';

/** paygate-mcp's method for several tool calls in one request, admitted all or none. */
export const BATCH_METHOD = 'tools/call_batch';

/** The calls of a `tools/call_batch`, or what is wrong with them, naming the index. */
export function parseBatch(params: JsonObject | undefined, maxBatchSize: number): { calls: ToolCall[] } | CallProblem {
  const calls = params?.calls;
  if (!Array.isArray(calls)) return { problem: 'tools/call_batch needs params.calls: an array of {name, arguments}', reason: 'invalid_params' };
  if (calls.length === 0) return { problem: 'params.calls is empty: give at least one {name, arguments}', reason: 'invalid_params' };
  if (calls.length > maxBatchSize) return { problem: `params.calls has ${calls.length} calls; a batch may have at most ${maxBatchSize}`, reason: 'invalid_params' };
  const parsed: ToolCall[] = [];
  for (const [index, call] of calls.entries()) {
    const item = parseToolCall(call, `params.calls[${index}]`);
    if ('problem' in item) return item;
    parsed.push(item);
  }
  return { calls: parsed };
}
