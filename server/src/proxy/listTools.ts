import { isObject, type JsonObject } from './jsonrpc.ts';
import { allPages } from './pages.ts';
import type { ClientChannel, Upstream } from './upstream.ts';

/** A tool as a server lists it: its name, and what else the server said about it. */
export interface ListedTool {
  name: string;
  description: string | undefined;
  inputSchema: JsonObject | undefined;
}

/** A channel for requests the gate makes on its own behalf: nothing can be delivered to it. */
export const GATE_ITSELF: ClientChannel = { origin: 'paygate', keyHash: undefined, requestId: undefined, sessionId: undefined, deliver: () => false };

/** Every tool the servers offer, over all pages. Throws with the server's message when listing fails. */
export async function listTools(upstream: Upstream, timeoutMs: number): Promise<ListedTool[]> {
  const { items, failure } = await allPages(upstream, 'tools/list', 'tools', GATE_ITSELF, timeoutMs);
  if (failure !== undefined) throw new Error(`tools/list failed: ${failure}`);
  return items
    .filter((tool) => typeof tool.name === 'string')
    .map((tool) => ({
      name: tool.name as string,
      description: typeof tool.description === 'string' ? tool.description : undefined,
      inputSchema: isObject(tool.inputSchema) ? tool.inputSchema : undefined,
    }));
}
