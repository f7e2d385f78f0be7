import { randomBytes } from 'node:crypto';
import { isObject, type JsonObject, type JsonRpcAnswer, type JsonRpcId, type JsonRpcNotification, type JsonRpcRequest } from '../proxy/jsonrpc.ts';
import { META_CLIENT_CAPABILITIES } from '../proxy/eras.ts';
import type { ClientChannel } from '../proxy/upstream.ts';

/**
 * Multi Round-Trip Requests for clients of 2026-07-28 in front of a 2025 server (the other way round
 * from `eraBridge.ts`). A 2025 server asks for input by a request to the client in the middle of a
 * call, which a 2026-07-28 client cannot receive. The gate holds that call open, answers the client
 * `input_required` with the server's requests as `inputRequests`, and when the client retries
 * (its envelope naming the held call), answers the server's requests with the client's
 * `inputResponses` and lets the call go on; the retry gets what comes next.
 */

/** Server requests a 2026-07-28 client answers through `inputRequests`, and the capability each needs. */
const CAPABILITY_OF: ReadonlyMap<string, string> = new Map([
  ['elicitation/create', 'elicitation'],
  ['sampling/createMessage', 'sampling'],
]);

/** A server request waiting for the client's input: its key in `inputRequests`, and the id the relay gave it. */
interface Asked {
  key: string;
  id: JsonRpcId;
  method: string;
  params: JsonObject | undefined;
}

/**
 * The channel of a call that may be held: it keeps the server's requests for input instead of
 * sending them (the client could not take them), and sends everything else (progress, logs) to the
 * client request that waits on the call now, the first attempt's or a retry's.
 */
export class InputChannel implements ClientChannel {
  readonly origin: string;
  readonly keyHash: string | undefined;
  readonly sessionId: undefined = undefined;
  /** The client request now waiting on the call. */
  target: ClientChannel;
  readonly #capabilities: JsonObject;
  #asked: Asked[] = [];
  #wake: (() => void) | undefined;
  #nextKey = 1;

  constructor(target: ClientChannel, params: JsonObject) {
    this.target = target;
    this.origin = target.origin;
    this.keyHash = target.keyHash;
    const meta = isObject(params._meta) ? params._meta : {};
    this.#capabilities = isObject(meta[META_CLIENT_CAPABILITIES]) ? meta[META_CLIENT_CAPABILITIES] : {};
  }

  get requestId(): JsonRpcId | undefined {
    return this.target.requestId;
  }

  deliver(message: JsonRpcRequest | JsonRpcNotification): boolean {
    if (!('id' in message)) return this.target.deliver(message);
    const capability = CAPABILITY_OF.get(message.method);
    // A request the client did not declare it can answer is refused to the server (as one to nobody).
    if (capability === undefined || !isObject(this.#capabilities[capability])) return false;
    this.#asked.push({ key: `input-${this.#nextKey++}`, id: message.id, method: message.method, params: message.params });
    this.#wake?.();
    return true;
  }

  /** Resolves when the server has asked for input (at once if it has already). */
  asked(): Promise<void> {
    if (this.#asked.length > 0) return Promise.resolve();
    return new Promise((resolve) => (this.#wake = resolve));
  }

  /** The server's requests as a 2026-07-28 result's `inputRequests`. */
  inputRequests(): JsonObject {
    const requests: JsonObject = {};
    for (const asked of this.#asked) requests[asked.key] = { method: asked.method, ...(asked.params === undefined ? {} : { params: asked.params }) };
    return requests;
  }

  /** Takes the server's waiting requests with the client's answer to each (an error where it gave none). */
  takeAnswers(inputResponses: unknown): Array<[JsonRpcId, JsonRpcAnswer]> {
    const given = isObject(inputResponses) ? inputResponses : {};
    const answers = this.#asked.map((asked): [JsonRpcId, JsonRpcAnswer] => {
      const response = given[asked.key];
      return [asked.id, isObject(response) ? { result: response } : { error: { code: -32603, message: `the client's retry carried no inputResponses.${asked.key}` } }];
    });
    this.#asked = [];
    this.#wake = undefined;
    return answers;
  }
}

/** What ended a wait on a held call: the server asked for input, or the call ended (answered, or failed). */
export type HeldWait = { asked: true } | { asked: false; ended: { body: JsonRpcAnswer } | { error: unknown } };

/** A call held open for a 2026-07-28 client's retry. */
export interface HeldCall<Settlement> {
  readonly id: string;
  readonly channel: InputChannel;
  /** The upstream call, never rejecting. */
  readonly ended: Promise<{ body: JsonRpcAnswer } | { error: unknown }>;
  /** Whether a client request waits on the call now; when it ends with none waiting, its charge is refunded. */
  waiting: boolean;
  /** What settling the call gave, once it is settled. */
  settlement: Promise<Settlement> | undefined;
}

/** Calls held open, by the id their envelopes carry. Each ends with its upstream call, which `callTimeoutMs` bounds. */
export class HeldCalls<Settlement> {
  readonly #calls = new Map<string, HeldCall<Settlement>>();

  /**
   * Holds a call. `settle` runs once when the upstream call ends, with whether a client request was
   * waiting for it; the call is forgotten then.
   */
  hold(channel: InputChannel, call: Promise<JsonRpcAnswer>, settle: (ended: { body: JsonRpcAnswer } | { error: unknown }, waiting: boolean) => Promise<Settlement>): HeldCall<Settlement> {
    const held: HeldCall<Settlement> = {
      id: randomBytes(12).toString('base64url'),
      channel,
      ended: call.then((body) => ({ body }), (error: unknown) => ({ error })),
      waiting: true,
      settlement: undefined,
    };
    held.settlement = held.ended.then((ended) => {
      this.#calls.delete(held.id);
      return settle(ended, held.waiting);
    });
    // A call that ends with no retry waiting has nobody to throw to; one waiting still sees the failure.
    held.settlement.catch(() => {});
    this.#calls.set(held.id, held);
    return held;
  }

  find(id: string): HeldCall<Settlement> | undefined {
    return this.#calls.get(id);
  }

  /** Waits until the server asks for input or the call ends. */
  async wait(held: HeldCall<Settlement>): Promise<HeldWait> {
    held.waiting = true;
    const next = await Promise.race([held.ended.then((ended) => ({ asked: false as const, ended })), held.channel.asked().then(() => ({ asked: true as const }))]);
    if (next.asked) held.waiting = false;
    return next;
  }
}
