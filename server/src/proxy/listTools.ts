import { isObject, type JsonObject } from './jsonrpc.ts';
import type { ClientChannel, Upstream } from './upstream.ts';

/** A tool as a server lists it: its name, and what else the server said about it. */
export interface ListedTool {
  name: string;
  description: string | undefined;
  inputSchema: JsonObject | undefined;
}

/** A channel for requests the gate makes on its own behalf: nothing can be delivered to it. */
export const GATE_ITSELF: ClientChannel = { origin: 'paygate', keyHash: undefined, requestId: undefined, sessionId: undefined, deliver: () => false };

const MAX_PAGES = 100;

/** Every tool the servers offer, over all pages. Throws with the server's message when listing fails. */
export async function listTools(upstream: Upstream, timeoutMs: number): Promise<ListedTool[]> {
  const tools: ListedTool[] = [];
  let cursor: unknown;
  for (let page = 0; page < MAX_PAGES; page++) {
    const answer = await upstream.forward('tools/list', cursor === undefined ? undefined : { cursor }, GATE_ITSELF, timeoutMs);
    if ('error' in answer) throw new Error(`tools/list failed: ${answer.error.message}`);
    for (const tool of Array.isArray(answer.result.tools) ? answer.result.tools : []) {
      if (!isObject(tool) || typeof tool.name !== 'string') continue;
      tools.push({
        name: tool.name,
        description: typeof tool.description === 'string' ? tool.description : undefined,
        inputSchema: isObject(tool.inputSchema) ? tool.inputSchema : undefined,
      });
    }
    cursor = answer.result.nextCursor;
    if (typeof cursor !== 'string') break;
  }
  return tools;
}
