import type { ServerResponse } from 'node:http';
import { isObject, type JsonObject, type JsonRpcId, type JsonRpcNotification, type JsonRpcRequest } from '../proxy/jsonrpc.ts';
import { ACKNOWLEDGED, LIST_CHANGES, META_SUBSCRIPTION_ID, offeredListChanges } from '../proxy/serverListens.ts';
import type { ClientChannel, SessionDirectory } from '../proxy/upstream.ts';
import type { SessionTable } from './sessions.ts';
import { SseStream } from './sse.ts';

/** What a `subscriptions/listen` request asks for. */
export interface ListenFilter {
  /** The list-change filter fields it set to true (`toolsListChanged`, ...). */
  listChanges: string[];
  resourceSubscriptions: string[];
}

export interface ListenerLimits {
  /** Streams of one valid key. */
  perKey: number;
  /** Streams opened with a valid key, over all keys. */
  keyed: number;
  /** Streams opened without a valid key from one address. */
  perAddress: number;
  /** Streams opened without a valid key, over all addresses. */
  keyless: number;
}

export const LISTENER_LIMITS: ListenerLimits = { perKey: 10, keyed: 10_000, perAddress: 10, keyless: 1_000 };

/** Resource URIs one stream may subscribe to. */
export const MAX_RESOURCE_SUBSCRIPTIONS = 100;

const RESOURCE_UPDATED = 'notifications/resources/updated';

/** The filter of a `subscriptions/listen` request, or what is wrong with it. */
export function parseListenFilter(params: JsonObject | undefined): ListenFilter | string {
  const notifications = params?.notifications;
  if (!isObject(notifications)) return 'params.notifications must be an object saying which notifications to receive (toolsListChanged, promptsListChanged, resourcesListChanged, resourceSubscriptions)';
  const listChanges: string[] = [];
  for (const { field } of LIST_CHANGES) {
    const value = notifications[field];
    if (value !== undefined && typeof value !== 'boolean') return `params.notifications.${field} must be true or false`;
    if (value === true) listChanges.push(field);
  }
  const uris = notifications.resourceSubscriptions ?? [];
  if (!Array.isArray(uris) || !uris.every((uri) => typeof uri === 'string' && uri.length > 0)) {
    return 'params.notifications.resourceSubscriptions must be an array of resource URIs (non-empty strings)';
  }
  if (uris.length > MAX_RESOURCE_SUBSCRIPTIONS) return `params.notifications.resourceSubscriptions may name at most ${MAX_RESOURCE_SUBSCRIPTIONS} URIs; open another stream for more`;
  return { listChanges, resourceSubscriptions: [...new Set(uris as string[])] };
}

let listeners = 0;

/**
 * One open `subscriptions/listen` stream: the answer to its POST, an event stream that carries its
 * acknowledgment and then only the notifications it asked for and the server offers, each with the
 * request's id as `io.modelcontextprotocol/subscriptionId`.
 */
class Listener implements ClientChannel {
  readonly origin = `listen-${++listeners}`;
  readonly keyHash: string | undefined;
  readonly requestId: JsonRpcId;
  readonly sessionId = undefined;
  readonly listener = true;
  /** Who it counts against: its key, or without one its address. */
  readonly owner: string;
  readonly #stream: SseStream;
  readonly #methods = new Set<string>();
  #acknowledged = false;

  constructor(requestId: JsonRpcId, keyHash: string | undefined, owner: string, stream: SseStream) {
    this.requestId = requestId;
    this.keyHash = keyHash;
    this.owner = owner;
    this.#stream = stream;
  }

  get open(): boolean {
    return this.#stream.open;
  }

  /** Starts delivery with what the gate honours: the list changes asked for and offered, the URIs subscribed. */
  acknowledge(listChanges: readonly string[], uris: readonly string[]): void {
    const notifications: JsonObject = {};
    for (const { field, method } of LIST_CHANGES) {
      if (!listChanges.includes(field)) continue;
      notifications[field] = true;
      this.#methods.add(method);
    }
    if (uris.length > 0) notifications.resourceSubscriptions = uris;
    this.#acknowledged = true;
    this.#stream.send({ jsonrpc: '2.0', method: ACKNOWLEDGED, params: { _meta: { [META_SUBSCRIPTION_ID]: this.requestId }, notifications } });
  }

  deliver(message: JsonRpcRequest | JsonRpcNotification): boolean {
    if (!this.#acknowledged || 'id' in message) return false;
    // Resource updates are routed here by the relay only for the URIs this stream subscribed to.
    if (message.method !== RESOURCE_UPDATED && !this.#methods.has(message.method)) return false;
    const meta = isObject(message.params?._meta) ? message.params._meta : {};
    return this.#stream.send({ ...message, params: { ...message.params, _meta: { ...meta, [META_SUBSCRIPTION_ID]: this.requestId } } });
  }

  /** Ends the stream as the gate's own decision: the response to the listen request says it ended cleanly. */
  end(): void {
    this.#stream.send({ jsonrpc: '2.0', id: this.requestId, result: { resultType: 'complete', _meta: { [META_SUBSCRIPTION_ID]: this.requestId } } });
    this.#stream.end();
  }
}

/** A listen request the table is asked to serve. */
export interface ListenRequest {
  id: JsonRpcId;
  filter: ListenFilter;
  /** The valid key it came with; undefined without one (it may then only listen for list changes). */
  keyHash: string | undefined;
  address: string;
  /** The capabilities of the server behind the gate: list changes are honoured where it offers them. */
  capabilities: JsonObject;
  /** Subscribes the stream to one resource upstream; true when the server took it. */
  subscribe: (uri: string, channel: ClientChannel) => Promise<boolean>;
}

/**
 * The open `subscriptions/listen` streams, bounded per key, per address without a key, and in all
 * (listeners without a key have their own room, so they never take a keyed client's). A stream leaves
 * the table when its client closes it; `onEnd` then lets the servers forget its subscriptions.
 */
export class ListenerTable {
  readonly #byOrigin = new Map<string, Listener>();
  readonly #byOwner = new Map<string, number>();
  readonly #limits: ListenerLimits;
  readonly #onEnd: (origin: string) => void;
  #keyed = 0;
  #keyless = 0;

  constructor(onEnd: (origin: string) => void, limits: ListenerLimits = LISTENER_LIMITS) {
    this.#onEnd = onEnd;
    this.#limits = limits;
  }

  get size(): number {
    return this.#byOrigin.size;
  }

  /** Why a stream for this key (or address, without a key) cannot be opened now; undefined if it can. */
  refusal(keyHash: string | undefined, address: string): string | undefined {
    const owned = this.#byOwner.get(ownerOf(keyHash, address)) ?? 0;
    const limits = this.#limits;
    if (keyHash !== undefined) {
      if (owned >= limits.perKey) return `this API key has ${owned} subscriptions/listen streams open, the most allowed: close one before opening another`;
      if (this.#keyed >= limits.keyed) return `the gate has ${this.#keyed} subscriptions/listen streams open, the most allowed: retry later`;
      return undefined;
    }
    if (owned >= limits.perAddress) return `${owned} subscriptions/listen streams without an API key are open from ${address}, the most allowed: close one, or listen with a key`;
    if (this.#keyless >= limits.keyless) return `the gate has ${this.#keyless} subscriptions/listen streams without an API key open, the most allowed: retry later, or listen with a key`;
    return undefined;
  }

  /** Opens the stream on `res` (check `refusal` first); it is acknowledged once its resources are subscribed. */
  async open(request: ListenRequest, res: ServerResponse): Promise<void> {
    const stream = new SseStream(res, { 'x-accel-buffering': 'no' }, true);
    const listener = new Listener(request.id, request.keyHash, ownerOf(request.keyHash, request.address), stream);
    this.#add(listener);
    stream.onClose = () => this.#remove(listener);
    const offered = offeredListChanges(request.capabilities);
    const listChanges = request.filter.listChanges.filter((field) => offered[field] === true);
    const uris = request.filter.resourceSubscriptions;
    const taken = await Promise.all(uris.map((uri) => request.subscribe(uri, listener)));
    if (listener.open) listener.acknowledge(listChanges, uris.filter((_uri, index) => taken[index]));
  }

  broadcast(message: JsonRpcNotification): void {
    for (const listener of this.#byOrigin.values()) listener.deliver(message);
  }

  deliverToOrigin(origin: string, message: JsonRpcRequest | JsonRpcNotification): boolean {
    return this.#byOrigin.get(origin)?.deliver(message) ?? false;
  }

  /** Ends every stream cleanly (the gate is stopping). */
  closeAll(): void {
    for (const listener of [...this.#byOrigin.values()]) listener.end();
  }

  #add(listener: Listener): void {
    this.#byOrigin.set(listener.origin, listener);
    this.#byOwner.set(listener.owner, (this.#byOwner.get(listener.owner) ?? 0) + 1);
    if (listener.keyHash === undefined) this.#keyless++;
    else this.#keyed++;
  }

  #remove(listener: Listener): void {
    if (!this.#byOrigin.delete(listener.origin)) return;
    const owned = this.#byOwner.get(listener.owner)! - 1;
    if (owned === 0) this.#byOwner.delete(listener.owner);
    else this.#byOwner.set(listener.owner, owned);
    if (listener.keyHash === undefined) this.#keyless--;
    else this.#keyed--;
    this.#onEnd(listener.origin);
  }
}

function ownerOf(keyHash: string | undefined, address: string): string {
  return keyHash === undefined ? `address:${address}` : `key:${keyHash}`;
}

/** Everyone the servers' own notifications may go to: the sessions of 2025-era clients and the listen streams of 2026-07-28 ones. */
export class Recipients implements SessionDirectory {
  readonly #sessions: SessionTable;
  readonly #listeners: ListenerTable;

  constructor(sessions: SessionTable, listeners: ListenerTable) {
    this.#sessions = sessions;
    this.#listeners = listeners;
  }

  broadcast(message: JsonRpcNotification): void {
    this.#sessions.broadcast(message);
    this.#listeners.broadcast(message);
  }

  deliverToOrigin(origin: string, message: JsonRpcRequest | JsonRpcNotification): boolean {
    return this.#sessions.deliverToOrigin(origin, message) || this.#listeners.deliverToOrigin(origin, message);
  }
}
