import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { Buffer } from 'node:buffer';
import { isObject } from '../proxy/jsonrpc.ts';

/**
 * The gate's seal on a Multi Round-Trip Request's `requestState` (MCP 2026-07-28). A server that
 * answers `input_required` gives the client an opaque state to echo on its retry; every tenant
 * reaches the server as the same client (the gate), so the server cannot tell whose state it is.
 * The gate therefore hands the client an envelope instead: the server's state and the first
 * attempt's price, sealed with AES-256-GCM under a key made at start and never written down, and bound
 * to the API key, the request (method, name, a digest of the arguments), an expiry and a nonce. A
 * retry must present it; the gate opens it, checks every binding, and forwards the server's state.
 *
 * Each envelope answers one retry: its nonce is kept among the pending ones until it is used, it
 * lapses, or (past `maxPending`) the oldest pending ones are forgotten. A forgotten or used nonce
 * is refused, so the table can only err towards refusing, never towards a second use. The key and
 * the table live in memory together: a restart voids the envelopes in flight (their retries are
 * refused and charge nothing; the client calls again), where a kept key without the kept table
 * would let an envelope be used once more after every restart.
 */

/** What an envelope is bound to: who may present it, for which request. */
export interface RetryBinding {
  /** The hash of the API key of the first attempt; undefined for a call made without a stored key. */
  keyHash: string | undefined;
  method: string;
  /** The tool or prompt name, or the resource URI. */
  name: string;
  /** `argumentsDigest` of the request's arguments. */
  argsDigest: string;
}

/** What the first attempt leaves for its retry. */
export interface FirstAttempt {
  /** The server's own `requestState`, if it sent one: forwarded to it on the retry. */
  serverState: string | undefined;
  /** The credits the first attempt was priced at: the retry is charged that, whatever the price is by then. */
  credits: number;
  /** The call the gate holds open for the retry (a 2025 server's, see `heldCalls.ts`), if any. */
  held?: string | undefined;
}

/** Why a presented `requestState` is refused (`error.data.reason`). */
export type RequestStateProblem =
  | 'request_state_invalid'
  | 'request_state_foreign'
  | 'request_state_mismatch'
  | 'request_state_expired'
  | 'request_state_used';

export interface Opened extends FirstAttempt {
  readonly nonce: string;
  readonly expiresAt: number;
}

export type OpenResult = { opened: Opened } | { problem: RequestStateProblem; message: string };

export interface SealOptions {
  /** How long an envelope may be presented. */
  ttlMs: number;
  /** Most envelopes waiting for their retry; past it the oldest are forgotten (and refused). */
  maxPending: number;
  now: () => number;
  /** 32 bytes; random when absent. */
  key?: Buffer;
}

/** Prefix of every envelope: says what it is to a person who sees one, and versions the format (it is authenticated too). */
const FORMAT = 'pgrs1.';
const AAD = Buffer.from(FORMAT);
const IV_BYTES = 12;
const TAG_BYTES = 16;

export const REQUEST_STATE_TTL_MS = 10 * 60_000;
export const MAX_PENDING_REQUEST_STATES = 100_000;

/** The sealed fields, with short names: the envelope travels twice per retry. */
interface Payload {
  k: string | null;
  m: string;
  n: string;
  d: string;
  x: number;
  u: string;
  s: string | null;
  c: number;
  h?: string;
}

function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (isObject(value)) {
    const fields = Object.keys(value)
      .filter((field) => value[field] !== undefined)
      .sort()
      .map((field) => `${JSON.stringify(field)}:${canonical(value[field])}`);
    return `{${fields.join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/** SHA-256 of the arguments as canonical JSON (keys sorted at every depth): the same arguments in any key order match. */
export function argumentsDigest(args: unknown): string {
  return createHash('sha256').update(canonical(args ?? {})).digest('base64url');
}

function isPayload(value: unknown): value is Payload {
  return (
    isObject(value) &&
    (value.k === null || typeof value.k === 'string') &&
    typeof value.m === 'string' &&
    typeof value.n === 'string' &&
    typeof value.d === 'string' &&
    typeof value.x === 'number' &&
    typeof value.u === 'string' &&
    (value.s === null || typeof value.s === 'string') &&
    typeof value.c === 'number' &&
    (value.h === undefined || typeof value.h === 'string')
  );
}

const CALL_AGAIN = 'call it again without requestState to start over; nothing was charged';

export class RequestStateSeal {
  readonly #key: Buffer;
  readonly #ttlMs: number;
  readonly #maxPending: number;
  readonly #now: () => number;
  /** Nonces of envelopes waiting for their retry, in the order they were issued, with their expiry. */
  readonly #pending = new Map<string, number>();

  constructor(options: SealOptions) {
    this.#key = options.key ?? randomBytes(32);
    this.#ttlMs = options.ttlMs;
    this.#maxPending = options.maxPending;
    this.#now = options.now;
  }

  /** How many envelopes wait for their retry. */
  get pending(): number {
    return this.#pending.size;
  }

  /** A new envelope for a first attempt (or a retry that was asked for more input again). */
  seal(binding: RetryBinding, attempt: FirstAttempt): string {
    const now = this.#now();
    this.#forgetLapsed(now);
    const nonce = randomBytes(16).toString('base64url');
    const expiresAt = now + this.#ttlMs;
    const payload: Payload = {
      k: binding.keyHash ?? null,
      m: binding.method,
      n: binding.name,
      d: binding.argsDigest,
      x: expiresAt,
      u: nonce,
      s: attempt.serverState ?? null,
      c: attempt.credits,
      ...(attempt.held === undefined ? {} : { h: attempt.held }),
    };
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.#key, iv).setAAD(AAD);
    const sealed = Buffer.concat([iv, cipher.update(JSON.stringify(payload), 'utf8'), cipher.final(), cipher.getAuthTag()]);
    while (this.#pending.size >= this.#maxPending) this.#pending.delete(this.#pending.keys().next().value!);
    this.#pending.set(nonce, expiresAt);
    return FORMAT + sealed.toString('base64url');
  }

  /**
   * Opens an envelope presented for a retry and checks it against the retry: sealed by this gate
   * (since its start) and unaltered, for the same key, method, name and arguments, not expired,
   * and not used. On success its nonce is taken: a second presentation is refused.
   */
  open(token: unknown, binding: RetryBinding): OpenResult {
    const payload = this.#decrypt(token);
    if (!payload) {
      return {
        problem: 'request_state_invalid',
        message: `requestState was not issued by this gate, was altered, or the gate has restarted since it was issued: a retry must echo the requestState of its first attempt unchanged; ${CALL_AGAIN}`,
      };
    }
    if (payload.k !== (binding.keyHash ?? null)) {
      return { problem: 'request_state_foreign', message: `requestState was issued to another API key: only the key that made the first attempt may retry it; ${CALL_AGAIN}` };
    }
    if (payload.m !== binding.method || payload.n !== binding.name || payload.d !== binding.argsDigest) {
      return {
        problem: 'request_state_mismatch',
        message: `requestState was issued for ${payload.m} of ${JSON.stringify(payload.n)} with other arguments: a retry must repeat its first attempt's name and arguments; ${CALL_AGAIN}`,
      };
    }
    const now = this.#now();
    if (payload.x <= now) {
      return { problem: 'request_state_expired', message: `requestState expired at ${new Date(payload.x).toISOString()} (a retry may follow its first attempt for ${this.#ttlMs / 1000} s); ${CALL_AGAIN}` };
    }
    if (!this.#pending.delete(payload.u)) {
      return { problem: 'request_state_used', message: `requestState has been used already: each one answers a single retry; ${CALL_AGAIN}` };
    }
    return { opened: { serverState: payload.s ?? undefined, credits: payload.c, held: payload.h, nonce: payload.u, expiresAt: payload.x } };
  }

  /** Gives an opened envelope back, when its retry was refused before it ran (no credits, a rate limit): it may be presented again. */
  restore(opened: Opened): void {
    if (opened.expiresAt > this.#now()) this.#pending.set(opened.nonce, opened.expiresAt);
  }

  #decrypt(token: unknown): Payload | undefined {
    if (typeof token !== 'string' || !token.startsWith(FORMAT)) return undefined;
    const sealed = Buffer.from(token.slice(FORMAT.length), 'base64url');
    if (sealed.length < IV_BYTES + TAG_BYTES) return undefined;
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.#key, sealed.subarray(0, IV_BYTES), { authTagLength: TAG_BYTES }).setAAD(AAD);
      decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
      const plain = Buffer.concat([decipher.update(sealed.subarray(IV_BYTES, sealed.length - TAG_BYTES)), decipher.final()]);
      const payload: unknown = JSON.parse(plain.toString('utf8'));
      return isPayload(payload) ? payload : undefined;
    } catch {
      return undefined;
    }
  }

  /** Forgets pending nonces that have lapsed; they were issued in order of expiry, so only the oldest are looked at. */
  #forgetLapsed(now: number): void {
    for (const [nonce, expiresAt] of this.#pending) {
      if (expiresAt > now) return;
      this.#pending.delete(nonce);
    }
  }
}
