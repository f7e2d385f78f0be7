import type { IncomingMessage } from 'node:http';

export const LOCAL_HOSTNAMES = new Set(['localhost', '127.0.0.1', '[::1]']);

/**
 * DNS-rebinding protection: only loopback names are accepted in Host (and Origin, when present).
 * Returns why the request is refused, or undefined when it may go on.
 */
export function checkHostAndOrigin(req: IncomingMessage): string | undefined {
  const host = req.headers.host;
  if (!host) return 'Missing Host header';
  let hostname: string;
  try {
    hostname = new URL(`http://${host}`).hostname;
  } catch {
    return `Invalid Host: ${host}`;
  }
  if (!LOCAL_HOSTNAMES.has(hostname)) return `Invalid Host: ${host}`;
  const origin = req.headers.origin;
  if (origin !== undefined) {
    let originHost: string | undefined;
    try {
      originHost = new URL(origin).hostname;
    } catch {
      originHost = undefined;
    }
    if (originHost === undefined || !LOCAL_HOSTNAMES.has(originHost)) return `Invalid Origin: ${origin}`;
  }
  return undefined;
}
