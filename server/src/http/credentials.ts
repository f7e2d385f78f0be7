import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import type { Credentials } from '../engine/engine.ts';
import { gcra } from '../gate/gcra.ts';
import { clientIp } from './clientIp.ts';

/** The API key from `X-API-Key`, or from `Authorization: Bearer <key>`. */
export function apiKeyOf(headers: IncomingHttpHeaders): string | undefined {
  const direct = headers['x-api-key'];
  if (typeof direct === 'string' && direct.trim() !== '') return direct.trim();
  const authorization = headers.authorization;
  if (typeof authorization === 'string') {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    if (match) return match[1];
  }
  return undefined;
}

/** Who is calling: the key presented and the client's address (forwarded-for only from trusted proxies). */
export function credentialsOf(req: IncomingMessage, trustedProxies: number): Credentials {
  return { apiKey: apiKeyOf(req.headers), clientIp: clientIp(req, trustedProxies) };
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

const FAILURES_PER_MINUTE = 10;
const MINUTE_MS = 60_000;

/**
 * Checks `X-Admin-Key` in constant time, and locks out an address after repeated wrong keys
 * (10 a minute, refilling at that rate).
 */
export class AdminGuard {
  readonly #expected: Buffer;
  readonly #failures = new Map<string, number>();

  constructor(adminKey: string) {
    this.#expected = digest(adminKey);
  }

  /** 'ok', 'denied' (wrong or missing key) or the seconds to wait when locked out. */
  check(headers: IncomingHttpHeaders, address: string, now: number): 'ok' | 'denied' | { retryAfterSeconds: number } {
    const tat = this.#failures.get(address);
    const locked = gcra(tat, now, FAILURES_PER_MINUTE, MINUTE_MS);
    if (!locked.allowed) return { retryAfterSeconds: Math.max(1, Math.ceil(locked.retryAfterMs / 1000)) };
    const given = headers['x-admin-key'];
    if (typeof given === 'string' && timingSafeEqual(digest(given), this.#expected)) return 'ok';
    this.#failures.set(address, locked.tat);
    return 'denied';
  }

  sweep(now: number): void {
    for (const [address, tat] of this.#failures) if (tat <= now) this.#failures.delete(address);
  }
}
