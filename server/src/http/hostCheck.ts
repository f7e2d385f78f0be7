import type { IncomingHttpHeaders } from 'node:http';
import { memoize } from '../memo.ts';

const LOOPBACK_HOSTNAMES = new Set(['localhost', '127.0.0.1', '[::1]']);

export function isLoopback(host: string): boolean {
  return LOOPBACK_HOSTNAMES.has(host) || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

export interface HostPolicy {
  /** True when the gate listens on loopback only: then Host must name loopback (DNS-rebinding defence). */
  loopbackOnly: boolean;
  /** Extra origins allowed to call from a browser, e.g. `https://app.example.com`. */
  allowedOrigins: ReadonlySet<string>;
}

/** The host name of a `Host` header (`127.0.0.1:3402`, `[::1]:80`, `localhost`), or undefined if malformed. */
const hostnameOf = memoize((authority: string): string | undefined => {
  const match = /^(\[[0-9a-fA-F:.]+\]|[^:[\]]+)(?::\d{1,5})?$/.exec(authority);
  return match?.[1]?.toLowerCase();
});

/**
 * Why a request must be refused because of its `Host` or `Origin` (a web page on another site, or a
 * DNS-rebinding attack), or undefined when it may go ahead. A loopback gate also lets loopback origins
 * through (local tools send one), but only listed origins get CORS headers (`cors.ts`): a browser
 * shows a page on an unlisted origin no answer, and refuses its preflights.
 */
export function hostProblem(headers: IncomingHttpHeaders, policy: HostPolicy): string | undefined {
  const host = headers.host;
  if (policy.loopbackOnly) {
    const hostname = host === undefined ? undefined : hostnameOf(host);
    if (hostname === undefined || !LOOPBACK_HOSTNAMES.has(hostname)) {
      return `Host "${host ?? ''}" is not allowed: this gate listens on loopback and only answers requests addressed to localhost, 127.0.0.1 or [::1]`;
    }
  }
  const origin = headers.origin;
  if (origin === undefined) return undefined;
  if (policy.allowedOrigins.has(origin)) return undefined;
  let parsed: URL;
  try {
    parsed = new URL(origin);
  } catch {
    return `Origin "${origin}" is not a valid origin`;
  }
  if (policy.loopbackOnly ? LOOPBACK_HOSTNAMES.has(parsed.hostname) : parsed.host === host) return undefined;
  return `Origin "${origin}" is not allowed; add it with --allowed-origin if browsers on that site may call this gate`;
}
