import type { IncomingMessage } from 'node:http';

/**
 * The client's address. With `trustedProxies` > 0, that many proxies in front of the gate are
 * trusted to append to `X-Forwarded-For`; the address they saw is taken from the right, so a client
 * cannot choose its own by sending the header.
 */
export function clientIp(req: IncomingMessage, trustedProxies: number): string | undefined {
  const direct = req.socket.remoteAddress;
  if (trustedProxies <= 0) return direct;
  const header = req.headers['x-forwarded-for'];
  const forwarded = (Array.isArray(header) ? header.join(',') : (header ?? ''))
    .split(',')
    .map((part) => part.trim())
    .filter(Boolean);
  const chain = direct === undefined ? forwarded : [...forwarded, direct];
  return chain[Math.max(0, chain.length - 1 - trustedProxies)];
}
