import { toolVisible } from '../gate/acl.ts';
import type { PolicyEngine } from '../gate/policyEngine.ts';
import { callPrice, chargedInputBytes, toolPricing } from '../gate/pricing.ts';
import type { CallRequest, Caller, Denial, DenyReason, KeyRecord, RateLimitStatus } from '../gate/types.ts';
import { hashApiKey } from '../keys/apiKey.ts';
import { memoize } from '../memo.ts';
import { BackendFailure } from '../proxy/backend.ts';
import { envelopeVersion, META_CLIENT_CAPABILITIES } from '../proxy/eras.ts';
import { ErrorCode, isObject, type JsonObject, type JsonRpcAnswer, type JsonRpcErrorBody, type JsonRpcId } from '../proxy/jsonrpc.ts';
import { listTools } from '../proxy/listTools.ts';
import type { AnswerOutcome, ClientChannel, Upstream } from '../proxy/upstream.ts';
import { LedgerUnavailableError, type Admission, type Charge, type Ledger, type Reservation } from '../store/contract.ts';
import { asksTheOldWay, EraBridge } from './eraBridge.ts';
import { HeldCalls, InputChannel, type HeldCall } from './heldCalls.ts';
import { argumentsDigest, MAX_PENDING_REQUEST_STATES, REQUEST_STATE_TTL_MS, RequestStateSeal, type Opened, type RetryBinding } from './requestState.ts';
import type { ToolCall } from './toolCall.ts';

/** What the transport knows about who is calling. */
export interface Credentials {
  apiKey: string | undefined;
  clientIp: string | undefined;
}

/** An answer without its JSON-RPC id (the transport adds the caller's), plus what its headers report. */
export interface Outcome {
  body: JsonRpcAnswer;
  /** The key the call was made with, if valid: its balance goes in `X-Credits-Remaining`. */
  record: KeyRecord | undefined;
  rateLimit: RateLimitStatus | null;
  retryAfterSeconds?: number;
  /** Why the key was refused, when it was missing or not valid: the transport answers HTTP 401 and says why. */
  unauthorized: Denial | false;
}

export interface EngineOptions {
  refundOnFailure: boolean;
  callTimeoutMs: number;
  /** Most calls one `tools/call_batch` may carry. */
  maxBatchSize: number;
  /** How many calls of one batch run at the same time. */
  batchConcurrency: number;
  now?: () => number;
}

/** One call's upstream answer and what it finally cost. */
interface Settled {
  body: JsonRpcAnswer;
  creditsCharged: number;
  /** False when the ledger could not record the settlement: the answer must not be given out. */
  recorded: boolean;
  /** An `input_required` answer for a held call, its envelope made already. */
  sealed?: true;
}

/** Where a call stands after admission: going ahead (with its reservation, if charged), or answered already. */
type AdmissionResult =
  | { admitted: true; reservation: Reservation | undefined; rateLimit: RateLimitStatus | null; record: KeyRecord | undefined }
  | { admitted: false; outcome: Outcome };

/** The per-tool stats row of every tool that no server offers and the config does not price. */
export const UNKNOWN_TOOL = '(unknown)';

const AUTH_REASONS: ReadonlySet<DenyReason> = new Set(['missing_api_key', 'invalid_api_key', 'key_revoked', 'api_key_expired']);

/** Why a settled call is refunded, or null when its charge stands. */
function refundReason(answer: JsonRpcAnswer, refundOnFailure: boolean): string | null {
  // A Multi Round-Trip Request's interim answer (2026-07-28): the call is charged on the retry that completes it.
  if ('result' in answer && answer.result.resultType === 'input_required') return 'the server asked for more input (input_required); the retry is charged';
  if (!refundOnFailure) return null;
  if ('error' in answer) return `the tool call failed: ${answer.error.message}`;
  return answer.result.isError === true ? 'the tool reported an error (isError)' : null;
}

/** Requests a 2026-07-28 server may answer with `input_required` (Multi Round-Trip Requests), and the param that names what they ask for. */
const MULTI_ROUND_TRIP: ReadonlyMap<string, 'name' | 'uri'> = new Map([
  ['tools/call', 'name'],
  ['prompts/get', 'name'],
  ['resources/read', 'uri'],
]);

/** What a retry's envelope must be bound to: the key, and the request as its first attempt made it. */
function retryBinding(keyHash: string | undefined, method: string, params: JsonObject | undefined): RetryBinding {
  const name = params?.[MULTI_ROUND_TRIP.get(method) ?? 'name'];
  return { keyHash, method, name: typeof name === 'string' ? name : '', argsDigest: argumentsDigest(params?.arguments) };
}

/** A retry's params as the server takes them: with its own `requestState` in place of the gate's envelope, or none if it sent none. */
function withServerState(params: JsonObject, serverState: string | undefined): JsonObject {
  const { requestState: _envelope, ...rest } = params;
  return serverState === undefined ? rest : { ...rest, requestState: serverState };
}

/** A 2026-07-28 request from a client that can give elicitation or sampling: a 2025 server's request for them is held for its retry. */
function asksForInputItself(params: JsonObject): boolean {
  if (envelopeVersion(params) === undefined) return false;
  const capabilities = (params._meta as JsonObject)[META_CLIENT_CAPABILITIES];
  return isObject(capabilities) && (isObject(capabilities.elicitation) || isObject(capabilities.sampling));
}

function fail(code: number, message: string, data?: unknown): { error: JsonRpcErrorBody } {
  return { error: data === undefined ? { code, message } : { code, message, data } };
}

/** An answer with nothing for the rate-limit headers and no refusal of the key. */
export function plain(record: KeyRecord | undefined, body: JsonRpcAnswer): Outcome {
  return { body, record, rateLimit: null, unauthorized: false };
}

/** The answer to admitted calls: their body, with the key and rate limit they were admitted under. */
function admitted(admission: { record: KeyRecord | undefined; rateLimit: RateLimitStatus | null }, body: JsonRpcAnswer): Outcome {
  return { body, record: admission.record, rateLimit: admission.rateLimit, unauthorized: false };
}

/**
 * paygate-mcp 2.9.0's message for a refusal, then ours: its clients match on the start
 * (`Payment required: insufficient_credits: need 5, have 2 — not enough credits: …`).
 */
function refusalMessage(denial: Denial, ours: string): string {
  return `Payment required: ${denial.legacyReason} — ${ours}`;
}

/** A single call's refusal says only why. */
function describeSingle(denial: Denial): { message: string; data: JsonObject } {
  return { message: denial.message, data: {} };
}

/** Runs `work` over `items` with at most `limit` at a time, keeping the order of results. */
async function boundedMap<T, R>(items: readonly T[], limit: number, work: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await work(items[index]!, index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/**
 * The life of a call, from key to answer: authenticate, decide, reserve the credits durably,
 * forward, then keep the charge or refund it durably before the answer goes out. Batches follow the
 * same path with all-or-nothing admission. Transports (HTTP, the editor's daemon) call this; it
 * knows nothing of how bytes arrive.
 */
export class Engine {
  readonly policyEngine: PolicyEngine;
  readonly ledger: Ledger;
  /** Replaced when the config's servers change; calls in flight keep the one they started with. */
  upstream: Upstream;
  /** Replaced when the config changes. */
  options: EngineOptions;
  readonly #now: () => number;
  /** Clients present the same key on every call: its hash is worked out once. */
  readonly #hashOf = memoize(hashApiKey, 1024);
  /** Every tool name the servers have listed: per-tool stats are kept for these and the priced tools. */
  readonly #offeredTools = new Set<string>();
  /** Seals the `requestState` of interim `input_required` answers to the key and request of their first attempt. */
  readonly #requestStates: RequestStateSeal;
  /** Asks 2025 clients, the 2025 way, for the input 2026-07-28 servers ask for by `input_required`. */
  readonly #eraBridge = new EraBridge();
  /** 2025 servers' calls held open for a 2026-07-28 client's retry, which carries the input they asked for. */
  readonly #held = new HeldCalls<Settled>();

  constructor(policyEngine: PolicyEngine, ledger: Ledger, upstream: Upstream, options: EngineOptions) {
    this.policyEngine = policyEngine;
    this.ledger = ledger;
    this.upstream = upstream;
    this.options = options;
    this.#now = options.now ?? Date.now;
    this.#requestStates = new RequestStateSeal({ ttlMs: REQUEST_STATE_TTL_MS, maxPending: MAX_PENDING_REQUEST_STATES, now: this.#now });
    ledger.toolStatsRow = (tool) => this.#statsRow(tool);
  }

  /**
   * Asks the servers for their tools, so that calls are counted per tool before any client has
   * listed them. Clients' own `tools/list` answers teach the engine too (after a list change).
   */
  async learnTools(timeoutMs: number): Promise<void> {
    for (const tool of await listTools(this.upstream, timeoutMs)) this.#offeredTools.add(tool.name);
  }

  /** A client's answer to a request the gate or a server sent it. */
  answer(id: JsonRpcId, answer: JsonRpcAnswer, from: { origin: string; keyHash: string | undefined }): AnswerOutcome {
    const outcome = this.#eraBridge.answer(id, answer, from);
    return outcome === 'unknown' ? this.upstream.answer(id, answer, from) : outcome;
  }

  /** Who is calling: the stored key record for a presented key (active or not), if there is one. */
  async caller(credentials: Credentials): Promise<Caller> {
    const { apiKey, clientIp } = credentials;
    const record = apiKey === undefined ? undefined : await this.ledger.findByHash(this.#hashOf(apiKey));
    return { record, presentedKey: apiKey !== undefined, clientIp };
  }

  /**
   * For methods that are not priced but need a valid key (resources/read, prompts/get, ...): the
   * refusal if the key does not pass the key checks (presence, validity, expiry, IP), else undefined.
   */
  authorize(caller: Caller): Outcome | undefined {
    if (this.policyEngine.policy.shadowMode) return undefined;
    const denial = this.policyEngine.checkKey(caller, this.#now());
    return denial && this.#refusal(denial, denial.message, caller.record, null, {});
  }

  /**
   * `tools/call`, its params checked already (`parseToolCall`). A retry of a Multi Round-Trip
   * Request (one that carries `requestState`) must present the envelope its first attempt got: it
   * is refused before anything is charged or forwarded unless the envelope is sound, and it is
   * priced as its first attempt was.
   */
  async callTool(caller: Caller, call: ToolCall, channel: ClientChannel): Promise<Outcome> {
    const { name: tool, arguments: args } = call;
    let retry: Opened | undefined;
    if (call.params.requestState !== undefined) {
      const opened = this.authorize(caller) ?? this.#openRetry(caller.record, 'tools/call', call.params);
      if ('body' in opened) return opened;
      retry = opened.retry;
      if (retry.held !== undefined) return this.#resume(caller, call, retry, channel);
    }
    const request: CallRequest = { tool, argBytes: chargedInputBytes(this.policyEngine.policy, tool, args) };
    if (retry) request.credits = retry.credits;
    const admission = await this.#admit(caller, [request], describeSingle);
    if (!admission.admitted) {
      if (retry) this.#requestStates.restore(retry);
      return admission.outcome;
    }
    const charge = admission.reservation?.charges[0];
    const params = retry ? withServerState(call.params, retry.serverState) : call.params;
    const credits = charge?.credits ?? callPrice(this.policyEngine.policy, request);
    const settled = asksForInputItself(params)
      ? await this.#runHoldable(params, channel, admission.reservation, charge, caller.record, credits)
      : await this.#run('tools/call', params, channel, admission.reservation, charge);
    if (!settled.recorded) return this.#unrecorded(admission.record);
    return admitted(admission, settled.sealed ? settled.body : this.#sealInterim(settled.body, caller.record, 'tools/call', call.params, credits));
  }

  /**
   * `tools/call_batch`, its calls checked already (`parseBatch`): every call is checked first (key,
   * ACL, rate limits, credits, spending limit, quotas, each call counting as if made alone); if any
   * would be refused, nothing runs and nothing is charged. Otherwise the total is reserved at once, the calls run in parallel (bounded), and
   * each failed call is refunded on its own.
   */
  async callBatch(caller: Caller, calls: readonly ToolCall[], channel: ClientChannel): Promise<Outcome> {
    const requests = calls.map((call) => ({ tool: call.name, argBytes: chargedInputBytes(this.policyEngine.policy, call.name, call.arguments) }));
    const admission = await this.#admit(caller, requests, (denial, failedIndex, totalCredits) => ({
      message: `call ${failedIndex} (${requests[failedIndex]?.tool ?? 'the key'}) was refused, so nothing in the batch ran and nothing was charged: ${denial.message}`,
      data: { failedIndex, totalCreditsRequired: totalCredits },
    }));
    if (!admission.admitted) return admission.outcome;
    const { reservation } = admission;
    const settled = await boundedMap(calls, this.options.batchConcurrency, (call, index) =>
      this.#run('tools/call', { name: call.name, arguments: call.arguments ?? {} }, channel, reservation, reservation?.charges[index]),
    );
    if (settled.some((item) => !item.recorded)) return this.#unrecorded(admission.record);
    const result = {
      results: settled.map((item, index) => {
        const call = calls[index]!;
        const price = reservation?.charges[index]?.credits ?? callPrice(this.policyEngine.policy, requests[index]!);
        const body = this.#sealInterim(item.body, caller.record, 'tools/call', call.params, price);
        return { tool: call.name, ...body, creditsCharged: item.creditsCharged };
      }),
      totalCreditsCharged: settled.reduce((sum, item) => sum + item.creditsCharged, 0),
      remainingCredits: admission.record?.credits ?? null,
    };
    return admitted(admission, { result });
  }

  /**
   * Forwards a request that is not priced (the caller has checked the key where one is needed).
   * `prompts/get` and `resources/read` may be Multi Round-Trip Requests: their `requestState` is
   * sealed and checked as a tool call's is.
   */
  async forward(method: string, params: JsonObject | undefined, record: KeyRecord | undefined, channel: ClientChannel): Promise<Outcome> {
    let forwarded = params;
    if (params?.requestState !== undefined && MULTI_ROUND_TRIP.has(method)) {
      const opened = this.#openRetry(record, method, params);
      if ('body' in opened) return opened;
      forwarded = withServerState(params, opened.retry.serverState);
    }
    const { body } = await this.#run(method, forwarded, channel, undefined, undefined);
    if (method === 'tools/list' && 'result' in body) return plain(record, { result: this.#annotateTools(body.result, record) });
    return plain(record, MULTI_ROUND_TRIP.has(method) ? this.#sealInterim(body, record, method, params, 0) : body);
  }

  /** The first attempt's envelope, opened for its retry by the key that made it (and used up), or the refusal of an envelope that is not sound. */
  #openRetry(record: KeyRecord | undefined, method: string, params: JsonObject): { retry: Opened } | Outcome {
    const opened = this.#requestStates.open(params.requestState, retryBinding(record?.keyHash, method, params));
    if ('problem' in opened) return plain(record, fail(ErrorCode.InvalidParams, opened.message, { reason: opened.problem }));
    return { retry: opened.opened };
  }

  /** An interim `input_required` answer with the server's `requestState` sealed into the gate's envelope; other answers as they are. */
  #sealInterim(body: JsonRpcAnswer, record: KeyRecord | undefined, method: string, params: JsonObject | undefined, credits: number): JsonRpcAnswer {
    if (!('result' in body) || body.result.resultType !== 'input_required') return body;
    const { requestState } = body.result;
    const serverState = typeof requestState === 'string' ? requestState : undefined;
    const envelope = this.#requestStates.seal(retryBinding(record?.keyHash, method, params), { serverState, credits });
    return { result: { ...body.result, requestState: envelope } };
  }

  /** Decides on the calls and, if they may go ahead, reserves their credits durably. */
  async #admit(
    caller: Caller,
    calls: readonly CallRequest[],
    describe: (denial: Denial, failedIndex: number, totalCredits: number) => { message: string; data: JsonObject },
  ): Promise<AdmissionResult> {
    let admission: Admission;
    try {
      admission = await this.ledger.admit(this.policyEngine, caller, calls, this.#now());
    } catch (error) {
      if (!(error instanceof LedgerUnavailableError)) throw error;
      return { admitted: false, outcome: this.#ledgerDown(caller.record, error) };
    }
    const { decision, reservation } = admission;
    if (!decision.allAllowed) {
      const { message, data } = describe(decision, decision.failedIndex, decision.totalCredits);
      return { admitted: false, outcome: this.#refusal(decision, message, caller.record, decision.rateLimit, { creditsRequired: decision.totalCredits, ...data }) };
    }
    return { admitted: true, reservation, rateLimit: decision.rateLimit, record: decision.record };
  }

  /**
   * A 2026-07-28 client's tool call: run as `#run` does, except that when the server asks the client
   * for input mid-call (a 2025 server's request), the call is held open and the client is answered
   * `input_required`; its charge stays reserved until the call ends.
   */
  async #runHoldable(params: JsonObject, channel: ClientChannel, reservation: Reservation | undefined, charge: Charge | undefined, record: KeyRecord | undefined, credits: number): Promise<Settled> {
    const input = new InputChannel(channel, params);
    const forwarded = this.upstream.forward('tools/call', params, input, this.options.callTimeoutMs);
    const held = this.#held.hold(input, forwarded, (ended, waiting) => this.#settleEnded(ended, reservation, charge, waiting));
    return this.#nextOf(held, retryBinding(record?.keyHash, 'tools/call', params), credits);
  }

  /** A retry naming a held call: the server gets the client's input, and the retry waits for what the call does next. */
  async #resume(caller: Caller, call: ToolCall, retry: Opened, channel: ClientChannel): Promise<Outcome> {
    const held = this.#held.find(retry.held!);
    if (!held) {
      const message = 'the call this requestState continues has ended (no retry came before it timed out, or the server ended it); call it again without requestState; nothing was charged for it';
      return plain(caller.record, fail(ErrorCode.InvalidParams, message, { reason: 'request_state_expired' }));
    }
    held.channel.target = channel;
    const from = { origin: held.channel.origin, keyHash: held.channel.keyHash };
    for (const [id, answer] of held.channel.takeAnswers(call.params.inputResponses)) this.upstream.answer(id, answer, from);
    const settled = await this.#nextOf(held, retryBinding(caller.record?.keyHash, 'tools/call', call.params), retry.credits);
    if (!settled.recorded) return this.#unrecorded(caller.record);
    return plain(caller.record, settled.sealed ? settled.body : this.#sealInterim(settled.body, caller.record, 'tools/call', call.params, retry.credits));
  }

  /** What a held call does next: asks for input (the client gets `input_required` with an envelope naming the call), or ends. */
  async #nextOf(held: HeldCall<Settled>, binding: RetryBinding, credits: number): Promise<Settled> {
    const next = await this.#held.wait(held);
    if (!next.asked) return held.settlement!;
    const requestState = this.#requestStates.seal(binding, { serverState: undefined, credits, held: held.id });
    return { body: { result: { resultType: 'input_required', inputRequests: held.channel.inputRequests(), requestState } }, creditsCharged: 0, recorded: true, sealed: true };
  }

  /** Settles a held call once it has ended; refunded if no client request was waiting for its result. */
  async #settleEnded(ended: { body: JsonRpcAnswer } | { error: unknown }, reservation: Reservation | undefined, charge: Charge | undefined, waiting: boolean): Promise<Settled> {
    if ('error' in ended) return this.#failed(ended.error, reservation, charge);
    return this.#settleAnswer(ended.body, reservation, charge, waiting ? undefined : 'the call ended with no retry waiting for its result');
  }

  /** Keeps or refunds an answered call's charge durably: refunded for `refund`, else as `refundReason` says. */
  async #settleAnswer(body: JsonRpcAnswer, reservation: Reservation | undefined, charge: Charge | undefined, refund: string | undefined): Promise<Settled> {
    if (!reservation || !charge) return { body, creditsCharged: 0, recorded: true };
    const reason = refund ?? refundReason(body, this.options.refundOnFailure);
    const recorded = await this.#settle(reservation, charge, reason);
    return { body, creditsCharged: reason === null ? charge.credits : 0, recorded };
  }

  /** A call the server could not answer: refunded, and the client told so. */
  async #failed(error: unknown, reservation: Reservation | undefined, charge: Charge | undefined): Promise<Settled> {
    if (!(error instanceof BackendFailure)) throw error;
    const recorded = reservation && charge ? await this.#settle(reservation, charge, error.message) : true;
    const note = reservation && recorded ? ' You were not charged for this call.' : '';
    return { body: fail(error.code ?? ErrorCode.BackendUnavailable, `${error.message}.${note}`, { reason: `backend_${error.kind}` }), creditsCharged: 0, recorded };
  }

  /** Forwards one request and, if it carries a charge, keeps or refunds the charge durably. */
  async #run(method: string, params: JsonObject | undefined, channel: ClientChannel, reservation: Reservation | undefined, charge: Charge | undefined): Promise<Settled> {
    let body: JsonRpcAnswer;
    let unfinished: string | undefined;
    try {
      const upstream = this.upstream;
      const { callTimeoutMs } = this.options;
      body = await upstream.forward(method, params, channel, callTimeoutMs);
      if (asksTheOldWay(channel, body)) ({ body, failure: unfinished } = await this.#eraBridge.complete(upstream, method, params, body, channel, callTimeoutMs));
    } catch (error) {
      return this.#failed(error, reservation, charge);
    }
    return this.#settleAnswer(body, reservation, charge, unfinished);
  }

  /** Settles a charge durably; false if the ledger could not record it. */
  async #settle(reservation: Reservation, charge: Charge, reason: string | null): Promise<boolean> {
    try {
      await this.ledger.settle(reservation, charge, reason, this.#now());
      return true;
    } catch {
      return false;
    }
  }

  #annotateTools(result: JsonObject, record: KeyRecord | undefined): JsonObject {
    if (!Array.isArray(result.tools)) return result;
    const policy = this.policyEngine.policy;
    const listed = result.tools.filter((tool): tool is JsonObject => isObject(tool) && typeof tool.name === 'string');
    for (const tool of listed) this.#offeredTools.add(tool.name as string);
    const tools = listed
      .filter((tool) => toolVisible(record, tool.name as string))
      .map((tool) => {
        const meta = isObject(tool._meta) ? tool._meta : {};
        return { ...tool, _meta: { ...meta, 'paygate/pricing': toolPricing(policy, tool.name as string) } };
      });
    return { ...result, tools };
  }

  #statsRow(tool: string): string {
    return this.#offeredTools.has(tool) || Object.hasOwn(this.policyEngine.policy.toolPricing, tool) ? tool : UNKNOWN_TOOL;
  }

  #refusal(denial: Denial, message: string, record: KeyRecord | undefined, rateLimit: RateLimitStatus | null, extra: JsonObject): Outcome {
    const unauthorized = AUTH_REASONS.has(denial.reason) && denial;
    const data: JsonObject = { reason: denial.reason };
    if (!unauthorized) {
      Object.assign(data, extra);
      if (record) data.remainingCredits = record.credits;
    }
    if (denial.retryAfterSeconds !== undefined) data.retryAfterSeconds = denial.retryAfterSeconds;
    const outcome: Outcome = {
      body: fail(unauthorized ? ErrorCode.Unauthorized : ErrorCode.PaymentRequired, refusalMessage(denial, message), data),
      record: unauthorized ? undefined : record,
      rateLimit,
      unauthorized,
    };
    if (denial.retryAfterSeconds !== undefined) outcome.retryAfterSeconds = denial.retryAfterSeconds;
    return outcome;
  }

  /** The charge could not be recorded before the call: it was not made. */
  #ledgerDown(record: KeyRecord | undefined, error: unknown): Outcome {
    const detail = error instanceof Error ? error.message : 'unknown error';
    return plain(record, fail(ErrorCode.InternalError, `the gate cannot record charges right now, so the call was not made and nothing was charged (${detail})`));
  }

  /** The call ran but its settlement could not be recorded: its answer is withheld, and the next start refunds it. */
  #unrecorded(record: KeyRecord | undefined): Outcome {
    const detail = this.ledger.failure?.message ?? 'unknown error';
    return plain(record, fail(ErrorCode.InternalError, `the gate could not record the outcome of this call, so its answer is withheld and you will not be charged (${detail})`));
  }
}
