import type { Backend, ServerMessage } from './backend.ts';
import { ErrorCode, isObject, type JsonObject, type JsonRpcAnswer, type JsonRpcId } from './jsonrpc.ts';

export const LISTEN_METHOD = 'subscriptions/listen';
export const ACKNOWLEDGED = 'notifications/subscriptions/acknowledged';
export const META_SUBSCRIPTION_ID = 'io.modelcontextprotocol/subscriptionId';

/** The filter fields of `subscriptions/listen` for list changes, by the capability that offers them. */
export const LIST_CHANGES = [
  { field: 'toolsListChanged', capability: 'tools', method: 'notifications/tools/list_changed' },
  { field: 'promptsListChanged', capability: 'prompts', method: 'notifications/prompts/list_changed' },
  { field: 'resourcesListChanged', capability: 'resources', method: 'notifications/resources/list_changed' },
] as const;

/** The list-change filter fields a server's capabilities say it sends. */
export function offeredListChanges(capabilities: JsonObject): JsonObject {
  const filter: JsonObject = {};
  for (const { field, capability } of LIST_CHANGES) {
    const offered = capabilities[capability];
    if (isObject(offered) && offered.listChanged === true) filter[field] = true;
  }
  return filter;
}

interface Opening {
  settle: (answer: JsonRpcAnswer) => void;
  uri: string | undefined;
}

/**
 * The gate's own `subscriptions/listen` streams to a server that speaks only 2026-07-28, which has no
 * `resources/subscribe`: one stream for the list changes the server offers, kept open while the server
 * runs, and one per resource URI that some client is subscribed to, cancelled when the last one goes.
 * What arrives on them loses the server's subscription id, so that the relay fans it out like a
 * legacy server's notifications.
 */
export class ServerListens {
  readonly #backend: Backend;
  readonly #byUri = new Map<string, JsonRpcId>();
  readonly #opening = new Map<JsonRpcId, Opening>();
  #lists: JsonRpcId | undefined;

  constructor(backend: Backend) {
    this.#backend = backend;
  }

  /** Opens the list-changes stream unless it is open (or the server offers no list changes). */
  listenForListChanges(): void {
    const identity = this.#backend.identity();
    if (this.#lists !== undefined || !identity || this.#backend.status().state !== 'ready') return;
    const filter = offeredListChanges(identity.capabilities);
    if (Object.keys(filter).length === 0) return;
    const id = this.#open(filter, undefined, () => {
      if (this.#lists === id) this.#lists = undefined;
    });
    this.#lists = id;
  }

  /** Subscribes to one resource: answered once the server acknowledges the stream with the URI in it. */
  subscribe(uri: string, timeoutMs: number): Promise<JsonRpcAnswer> {
    const answer = new Promise<JsonRpcAnswer>((settle) => {
      const id = this.#open({ resourceSubscriptions: [uri] }, { settle, uri }, (why) => {
        if (this.#byUri.get(uri) === id) this.#byUri.delete(uri);
        this.#settle(id, { error: { code: ErrorCode.InternalError, message: `the MCP server "${this.#backend.label}" ended the subscription to ${uri}: ${why}` } });
      });
      this.#byUri.set(uri, id);
    });
    if (timeoutMs <= 0) return answer;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<JsonRpcAnswer>((resolve) => {
      timer = setTimeout(() => {
        this.unsubscribe(uri);
        resolve({ error: { code: ErrorCode.InternalError, message: `the MCP server "${this.#backend.label}" did not acknowledge the subscription to ${uri} within ${timeoutMs} ms` } });
      }, timeoutMs);
    });
    return Promise.race([answer, late]).finally(() => clearTimeout(timer));
  }

  unsubscribe(uri: string): void {
    const id = this.#byUri.get(uri);
    if (id === undefined) return;
    this.#byUri.delete(uri);
    this.#opening.delete(id);
    this.#backend.notify('notifications/cancelled', { requestId: id, reason: 'no client is subscribed any more' });
  }

  /**
   * A message from the server as the relay fans it out: acknowledgments of the gate's own streams are
   * taken here (undefined), and notifications lose the server's subscription id.
   */
  receive(message: ServerMessage): ServerMessage | undefined {
    if ('id' in message) return message;
    const meta = message.params?._meta;
    if (!isObject(meta) || !(META_SUBSCRIPTION_ID in meta)) return message;
    const id = meta[META_SUBSCRIPTION_ID] as JsonRpcId;
    if (message.method === ACKNOWLEDGED) {
      const opening = this.#opening.get(id);
      const acknowledged = isObject(message.params?.notifications) ? message.params.notifications.resourceSubscriptions : undefined;
      if (opening?.uri !== undefined && !(Array.isArray(acknowledged) && acknowledged.includes(opening.uri))) {
        this.#settle(id, { error: { code: ErrorCode.InvalidParams, message: `the MCP server "${this.#backend.label}" does not offer updates of ${opening.uri}` } });
        this.unsubscribe(opening.uri);
        return undefined;
      }
      this.#settle(id, { result: {} });
      return undefined;
    }
    const { [META_SUBSCRIPTION_ID]: _id, ...rest } = meta;
    const params = { ...message.params };
    if (Object.keys(rest).length > 0) params._meta = rest;
    else delete params._meta;
    return { ...message, params };
  }

  /** Opens a stream; `ended` runs once the server answers it (it ends it) or it fails (the server stopped). */
  #open(filter: JsonObject, opening: Opening | undefined, ended: (why: string) => void): JsonRpcId {
    const forwarded = this.#backend.request(LISTEN_METHOD, { notifications: filter }, 0);
    if (opening) this.#opening.set(forwarded.upstreamId, opening);
    forwarded.response.then(
      () => ended('it closed the stream'),
      (error: Error) => ended(error.message),
    );
    return forwarded.upstreamId;
  }

  #settle(id: JsonRpcId, answer: JsonRpcAnswer): void {
    const opening = this.#opening.get(id);
    if (!opening) return;
    this.#opening.delete(id);
    opening.settle(answer);
  }
}
