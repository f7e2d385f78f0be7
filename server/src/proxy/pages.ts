import { isObject, type JsonObject } from './jsonrpc.ts';
import type { ClientChannel, Upstream } from './upstream.ts';

/** Past this many pages a list is taken as complete: a server that keeps sending cursors must not loop the gate forever. */
const MAX_PAGES = 100;

/** A list over all its pages, as far as the server gave it. */
export interface Pages {
  items: JsonObject[];
  /** The server's message when a page was refused; the items are those of the pages before it. */
  failure?: string;
}

/** Follows `nextCursor` through a list method (`tools/list`, `resources/list`, ...), collecting `field` of each page. */
export async function allPages(upstream: Upstream, method: string, field: string, channel: ClientChannel, timeoutMs: number): Promise<Pages> {
  const items: JsonObject[] = [];
  let cursor: unknown;
  for (let page = 0; page < MAX_PAGES; page++) {
    const answer = await upstream.forward(method, cursor === undefined ? undefined : { cursor }, channel, timeoutMs);
    if ('error' in answer) return { items, failure: answer.error.message };
    const got = answer.result[field];
    if (Array.isArray(got)) items.push(...got.filter(isObject));
    cursor = answer.result.nextCursor;
    if (typeof cursor !== 'string') break;
  }
  return { items };
}
