import { hashApiKey } from '../keys/apiKey.ts';
import { toolVisible } from '../gate/acl.ts';
import type { Gate } from '../gate/gate.ts';
import { toolPolicy } from '../gate/pricing.ts';
import type { Caller, DenyReason, KeyRecord, RateLimitStatus } from '../gate/types.ts';
import { BackendFailure } from '../proxy/backend.ts';
import { ErrorCode, isObject, type JsonObject, type JsonRpcErrorBody, type JsonRpcResponse } from '../proxy/jsonrpc.ts';
import type { ClientChannel, Relay } from '../proxy/relay.ts';
import { LedgerUnavailableError, type Charge, type Ledger, type Reservation } from '../store/ledger.ts';

/** What the transport knows about who is calling. */
export interface Credentials {
  apiKey: string | undefined;
  clientIp: string | undefined;
}

/** An answer without its JSON-RPC id (the transport adds the caller's), plus what its headers report. */
export interface Outcome {
  body: { result: JsonObject } | { error: JsonRpcErrorBody };
  /** The key the call was made with, if valid: its balance goes in `X-Credits-Remaining`. */
  record: KeyRecord | undefined;
  rateLimit: RateLimitStatus | null;
  retryAfterSeconds?: number;
  /** True when the key was missing or not valid: the transport answers HTTP 401. */
  unauthorized: boolean;
}

export interface EngineOptions {
  refundOnFailure: boolean;
  callTimeoutMs: number;
  now?: () => number;
}

const AUTH_REASONS: ReadonlySet<DenyReason> = new Set(['missing_api_key', 'invalid_api_key', 'key_revoked', 'api_key_expired']);

/** Why a settled call is refunded, or null when its charge stands. */
function refundReason(response: JsonRpcResponse, refundOnFailure: boolean): string | null {
  if (!refundOnFailure) return null;
  if ('error' in response) return `the tool call failed: ${response.error.message}`;
  return response.result.isError === true ? 'the tool reported an error (isError)' : null;
}

function fail(code: number, message: string, data?: unknown): { error: JsonRpcErrorBody } {
  return { error: data === undefined ? { code, message } : { code, message, data } };
}

/**
 * The life of one call, from key to answer: authenticate, decide, reserve the credits durably,
 * forward, then keep the charge or refund it durably before the answer goes out. Transports (HTTP,
 * the editor's daemon) call this; it knows nothing of how bytes arrive.
 */
export class Engine {
  readonly gate: Gate;
  readonly ledger: Ledger;
  readonly relay: Relay;
  readonly options: EngineOptions;
  readonly #now: () => number;

  constructor(gate: Gate, ledger: Ledger, relay: Relay, options: EngineOptions) {
    this.gate = gate;
    this.ledger = ledger;
    this.relay = relay;
    this.options = options;
    this.#now = options.now ?? Date.now;
  }

  /** The key record for a presented key, if it is stored (active or not). */
  lookup(apiKey: string | undefined): KeyRecord | undefined {
    return apiKey === undefined ? undefined : this.ledger.findByHash(hashApiKey(apiKey));
  }

  caller(credentials: Credentials): Caller {
    return { record: this.lookup(credentials.apiKey), presentedKey: credentials.apiKey !== undefined, clientIp: credentials.clientIp };
  }

  /**
   * For methods that are not priced but need a valid key (resources/read, prompts/get, ...): the
   * refusal if the key does not pass the key checks (presence, validity, expiry, IP), else undefined.
   */
  authorize(caller: Caller): Outcome | undefined {
    if (this.gate.policy.shadowMode) return undefined;
    const denial = this.gate.checkKey(caller, this.#now());
    return denial && this.#refusal(denial.reason, denial.message, caller.record, null);
  }

  async callTool(caller: Caller, params: JsonObject | undefined, channel: ClientChannel): Promise<Outcome> {
    const tool = params?.name;
    if (typeof tool !== 'string' || tool === '') {
      return this.#plain(caller.record, fail(ErrorCode.InvalidParams, 'tools/call needs params.name: the name of the tool to call, as a string'));
    }
    const args = params!.arguments;
    if (args !== undefined && !isObject(args)) {
      return this.#plain(caller.record, fail(ErrorCode.InvalidParams, 'params.arguments must be an object of named arguments'));
    }
    const now = this.#now();
    const argBytes = (toolPolicy(this.gate.policy, tool).creditsPerKbInput ?? 0) > 0 ? Buffer.byteLength(JSON.stringify(args ?? {})) : 0;
    const decision = this.gate.evaluate(caller, { tool, argBytes }, now);
    if (!decision.allowed) {
      this.ledger.recordRefusal(caller.record, tool, decision.reason, 'denied', now);
      return this.#refusal(decision.reason, decision.message, caller.record, decision.rateLimit, decision.credits, decision.retryAfterSeconds);
    }
    if (decision.shadowDenial) this.ledger.recordRefusal(caller.record, tool, decision.shadowDenial.reason, 'shadow', now);
    const record = decision.record;
    let reservation: Reservation | undefined;
    if (record && !decision.shadowDenial) {
      this.gate.consume(decision.buckets);
      try {
        reservation = this.ledger.reserve(record, [{ tool, credits: decision.credits }], now);
        await reservation.durable;
      } catch (error) {
        return this.#ledgerDown(record, error);
      }
    }
    const outcome = await this.#forward('tools/call', params, channel, reservation, reservation?.charges[0]);
    return { ...outcome, rateLimit: decision.rateLimit };
  }

  /** Forwards a request that is not priced (the caller has checked the key where one is needed). */
  async forward(method: string, params: JsonObject | undefined, record: KeyRecord | undefined, channel: ClientChannel): Promise<Outcome> {
    const outcome = await this.#forward(method, params, channel, undefined, undefined);
    if (method === 'tools/list' && 'result' in outcome.body) {
      outcome.body = { result: this.#annotateTools(outcome.body.result, record) };
    }
    return { ...outcome, record };
  }

  async #forward(
    method: string,
    params: JsonObject | undefined,
    channel: ClientChannel,
    reservation: Reservation | undefined,
    charge: Charge | undefined,
  ): Promise<Outcome> {
    const record = reservation?.record;
    let response: JsonRpcResponse;
    try {
      response = await this.relay.forward(method, params, channel, this.options.callTimeoutMs).response;
    } catch (error) {
      if (!(error instanceof BackendFailure)) throw error;
      const refunded = reservation && charge ? await this.#settle(reservation, charge, error.message) : true;
      const note = reservation ? (refunded ? ' You were not charged for this call.' : '') : '';
      return this.#plain(record, fail(ErrorCode.BackendUnavailable, `${error.message}.${note}`, { reason: `backend_${error.kind}` }));
    }
    if (reservation && charge) {
      const settled = await this.#settle(reservation, charge, refundReason(response, this.options.refundOnFailure));
      if (!settled) return this.#ledgerDown(record, this.ledger.failure);
    }
    return this.#plain(record, 'error' in response ? { error: response.error } : { result: response.result });
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
    const policy = this.gate.policy;
    const tools = result.tools
      .filter((tool): tool is JsonObject => isObject(tool) && typeof tool.name === 'string')
      .filter((tool) => toolVisible(record, tool.name as string))
      .map((tool) => {
        const name = tool.name as string;
        const rule = toolPolicy(policy, name);
        const pricing = {
          creditsPerCall: rule.creditsPerCall ?? policy.defaultCreditsPerCall,
          creditsPerKbInput: rule.creditsPerKbInput ?? 0,
          rateLimitPerMin: rule.rateLimitPerMin ?? policy.globalRateLimitPerMin,
        };
        const meta = isObject(tool._meta) ? tool._meta : {};
        return { ...tool, _meta: { ...meta, 'paygate/pricing': pricing } };
      });
    return { ...result, tools };
  }

  #refusal(
    reason: DenyReason,
    message: string,
    record: KeyRecord | undefined,
    rateLimit: RateLimitStatus | null,
    creditsRequired?: number,
    retryAfterSeconds?: number,
  ): Outcome {
    const unauthorized = AUTH_REASONS.has(reason);
    const data: JsonObject = { reason };
    if (creditsRequired !== undefined && !unauthorized) data.creditsRequired = creditsRequired;
    if (record && !unauthorized) data.remainingCredits = record.credits;
    if (retryAfterSeconds !== undefined) data.retryAfterSeconds = retryAfterSeconds;
    const outcome: Outcome = {
      body: fail(unauthorized ? ErrorCode.Unauthorized : ErrorCode.PaymentRequired, message, data),
      record: unauthorized ? undefined : record,
      rateLimit,
      unauthorized,
    };
    if (retryAfterSeconds !== undefined) outcome.retryAfterSeconds = retryAfterSeconds;
    return outcome;
  }

  #plain(record: KeyRecord | undefined, body: Outcome['body']): Outcome {
    return { body, record, rateLimit: null, unauthorized: false };
  }

  #ledgerDown(record: KeyRecord | undefined, error: unknown): Outcome {
    const detail = error instanceof LedgerUnavailableError || error instanceof Error ? error.message : 'unknown error';
    return this.#plain(record, fail(ErrorCode.InternalError, `the gate cannot record charges right now, so the call was not made and nothing was charged (${detail})`));
  }
}
