import { ErrorCode, isObject, type JsonObject, type JsonRpcAnswer, type JsonRpcId } from '../proxy/jsonrpc.ts';
import type { AnswerOutcome, ClientChannel, Upstream } from '../proxy/upstream.ts';

/**
 * Multi Round-Trip Requests for clients of the 2025 era (MCP 2026-07-28 asks for input by an
 * `input_required` result, 2025 by a server-to-client request). When a 2026-07-28 server answers a
 * 2025 client's request with `input_required`, the gate sends each of its `inputRequests` to that
 * client as the request the client's revision knows (`elicitation/create`, `sampling/createMessage`),
 * on the request's own answer stream, then retries upstream with the answers (`inputResponses`) and
 * the server's `requestState`, until the server completes: the client sees one ordinary request.
 */

/** The requests a 2025 client can be asked, and the capability it must have declared for each. */
const CAPABILITY_OF: ReadonlyMap<string, string> = new Map([
  ['elicitation/create', 'elicitation'],
  ['sampling/createMessage', 'sampling'],
]);

/** Most rounds of input one request may ask for before the gate gives up on it. */
export const MAX_INPUT_ROUNDS = 8;

/** How a request that asked for input ended: the server's last answer, or why the gate stopped asking and refunds the call. */
export type Bridged = { body: JsonRpcAnswer; failure?: undefined } | { body: JsonRpcAnswer; failure: string };

interface Asked {
  channel: ClientChannel;
  settle: (answer: JsonRpcAnswer) => void;
}

function failed(message: string): Bridged {
  return { body: { error: { code: ErrorCode.InternalError, message, data: { reason: 'input_not_given' } } }, failure: message };
}

/** The input requests of an `input_required` result a 2025 client declared it can answer, or undefined if any is not. */
function answerable(result: JsonObject, channel: ClientChannel): Array<[string, string, JsonObject | undefined]> | undefined {
  const requests = result.inputRequests;
  if (!isObject(requests)) return undefined;
  const asks: Array<[string, string, JsonObject | undefined]> = [];
  for (const [key, request] of Object.entries(requests)) {
    if (!isObject(request) || typeof request.method !== 'string') return undefined;
    const capability = CAPABILITY_OF.get(request.method);
    if (capability === undefined || !isObject(channel.client?.capabilities[capability])) return undefined;
    asks.push([key, request.method, isObject(request.params) ? request.params : undefined]);
  }
  return asks.length > 0 ? asks : undefined;
}

/** A client with a session speaks a 2025 revision (2026-07-28 requests have none): it is asked for input the 2025 way. */
export function asksTheOldWay(channel: ClientChannel, body: JsonRpcAnswer): boolean {
  return channel.client !== undefined && 'result' in body && body.result.resultType === 'input_required';
}

export class EraBridge {
  /** The gate's own requests to clients waiting for their answers, by the ids the gate gave them. */
  readonly #asked = new Map<string, Asked>();
  #nextId = 1;

  /**
   * Completes a request a 2026-07-28 server answered with `input_required`, asking the 2025 client
   * behind `channel` for each input. A request for input the client did not declare it can give is
   * left as it is (the client is told which revision it needs).
   */
  async complete(upstream: Upstream, method: string, params: JsonObject | undefined, first: JsonRpcAnswer, channel: ClientChannel, timeoutMs: number): Promise<Bridged> {
    let body = first;
    for (let round = 0; round < MAX_INPUT_ROUNDS; round++) {
      if (!('result' in body) || body.result.resultType !== 'input_required') return { body };
      const asks = answerable(body.result, channel);
      if (!asks) return { body };
      const inputResponses: JsonObject = {};
      for (const [key, asked, askedParams] of asks) {
        const answer = await this.#ask(channel, asked, askedParams, timeoutMs);
        if ('error' in answer) return failed(`the server needed input (${asked}) and the client did not give it: ${answer.error.message}; nothing was charged`);
        inputResponses[key] = answer.result;
      }
      const { requestState: _previous, inputResponses: _given, ...rest } = params ?? {};
      const state = body.result.requestState;
      body = await upstream.forward(method, { ...rest, inputResponses, ...(typeof state === 'string' ? { requestState: state } : {}) }, channel, timeoutMs);
    }
    if ('result' in body && body.result.resultType === 'input_required') return failed(`the server asked for input more than ${MAX_INPUT_ROUNDS} times for one request; nothing was charged`);
    return { body };
  }

  /** A client's answer to one of the gate's requests: only the client it was sent to may give it. */
  answer(id: JsonRpcId, answer: JsonRpcAnswer, from: { origin: string; keyHash: string | undefined }): AnswerOutcome {
    const asked = typeof id === 'string' ? this.#asked.get(id) : undefined;
    if (!asked) return 'unknown';
    const { channel } = asked;
    if (channel.origin !== from.origin && !(channel.keyHash !== undefined && channel.keyHash === from.keyHash)) return 'forbidden';
    asked.settle(answer);
    return 'delivered';
  }

  #ask(channel: ClientChannel, method: string, params: JsonObject | undefined, timeoutMs: number): Promise<JsonRpcAnswer> {
    // Strings, never numbers: the ids servers' relayed requests get are numbers, so an answer finds its asker.
    const id = `paygate-input-${this.#nextId++}`;
    return new Promise((resolve) => {
      const timer = setTimeout(() => settle({ error: { code: ErrorCode.InternalError, message: `no answer within ${timeoutMs / 1000} s` } }), timeoutMs);
      const settle = (answer: JsonRpcAnswer) => {
        clearTimeout(timer);
        this.#asked.delete(id);
        resolve(answer);
      };
      this.#asked.set(id, { channel, settle });
      if (!channel.deliver({ jsonrpc: '2.0', id, method, ...(params === undefined ? {} : { params }) })) {
        settle({ error: { code: ErrorCode.InternalError, message: 'the client cannot be reached (it accepts no event stream and has no open session stream)' } });
      }
    });
  }
}
