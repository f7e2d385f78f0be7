import type { IncomingMessage, ServerResponse } from 'node:http';
import type { HostPolicy } from './hostCheck.ts';
import { HttpError } from './respond.ts';

/** What MCP clients send to /mcp, in every revision (2026-07-28 adds Mcp-Method and Mcp-Name). */
const ALLOWED_HEADERS = 'Content-Type, Accept, Authorization, X-API-Key, Mcp-Session-Id, MCP-Protocol-Version, Last-Event-ID, Mcp-Method, Mcp-Name';
/** What a page may read of the gate's answers: the session, the balance, rate limits and why it was refused. */
const EXPOSED_HEADERS = 'Mcp-Session-Id, X-Credits-Remaining, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset, Retry-After, WWW-Authenticate';
const ALLOWED_METHODS = 'POST, GET, DELETE';
/** How long a browser may reuse a preflight's answer (Chromium's own cap). */
const MAX_AGE_SECONDS = '7200';

/**
 * Lets a page on an origin listed with `--allowed-origin` read the answer to its request. Only
 * listed origins get CORS headers: an unlisted loopback origin may still call a loopback gate
 * (`hostProblem` lets it), but a browser does not show that page the answer.
 */
export function allowListedOrigin(req: IncomingMessage, res: ServerResponse, policy: HostPolicy): void {
  const origin = req.headers.origin;
  if (origin === undefined || !policy.allowedOrigins.has(origin)) return;
  res.setHeader('access-control-allow-origin', origin);
  res.setHeader('access-control-expose-headers', EXPOSED_HEADERS);
  res.setHeader('vary', 'Origin');
}

/**
 * Answers `OPTIONS /mcp`. A browser's preflight from a listed origin gets 204 with what it may send;
 * from any other origin a 403 without CORS headers, so the browser refuses the request. An OPTIONS
 * without an Origin (not a browser) is told the methods.
 */
export function answerOptions(req: IncomingMessage, res: ServerResponse, policy: HostPolicy): void {
  const origin = req.headers.origin;
  if (origin === undefined) {
    res.writeHead(204, { allow: `OPTIONS, ${ALLOWED_METHODS}` }).end();
    return;
  }
  if (!policy.allowedOrigins.has(origin)) {
    throw new HttpError(403, `browsers on "${origin}" may not call this gate; add the origin with --allowed-origin if they should`);
  }
  res.writeHead(204, {
    'access-control-allow-origin': origin,
    vary: 'Origin',
    'access-control-allow-methods': ALLOWED_METHODS,
    'access-control-allow-headers': ALLOWED_HEADERS,
    'access-control-max-age': MAX_AGE_SECONDS,
  }).end();
}
