import ipaddr from 'ipaddr.js';

type Range = [ipaddr.IPv4 | ipaddr.IPv6, number];

/** True for a plain IPv4 or IPv6 address, or a CIDR range of either (e.g. `10.0.0.0/8`, `2001:db8::/32`). */
export function isValidIpRule(rule: string): boolean {
  const [address, bits, extra] = rule.split('/');
  if (extra !== undefined || address === undefined) return false;
  const isV4 = ipaddr.IPv4.isValidFourPartDecimal(address);
  if (!isV4 && !ipaddr.IPv6.isValid(address)) return false;
  if (bits === undefined) return true;
  if (!/^\d{1,3}$/.test(bits)) return false;
  return Number(bits) <= (isV4 ? 32 : 128);
}

function toRange(rule: string): Range {
  if (rule.includes('/')) return ipaddr.parseCIDR(rule);
  const address = ipaddr.parse(rule);
  return [address, address.kind() === 'ipv4' ? 32 : 128];
}

/** Parses an address, seeing IPv4-mapped IPv6 (`::ffff:1.2.3.4`) as the IPv4 address it is. */
function normalise(address: string): ipaddr.IPv4 | ipaddr.IPv6 | undefined {
  try {
    return ipaddr.process(address);
  } catch {
    return undefined;
  }
}

const compiled = new WeakMap<readonly string[], Range[]>();

function rangesOf(allowlist: readonly string[]): Range[] {
  let ranges = compiled.get(allowlist);
  if (!ranges) {
    ranges = allowlist.filter(isValidIpRule).map(toRange);
    compiled.set(allowlist, ranges);
  }
  return ranges;
}

/** Whether `clientIp` is inside one of the allowlist's ranges. An unknown address is outside. */
export function ipAllowed(allowlist: readonly string[], clientIp: string | undefined): boolean {
  if (allowlist.length === 0) return true;
  const address = clientIp === undefined ? undefined : normalise(clientIp);
  if (!address) return false;
  return rangesOf(allowlist).some(([range, bits]) => address.kind() === range.kind() && address.match(range, bits));
}
