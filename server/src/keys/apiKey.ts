import { hash, randomBytes } from 'node:crypto';

const KEY_PREFIX = 'pg_';
const DISPLAY_PREFIX_LENGTH = 10;

/** A new API key: `pg_` and 48 hex digits, the same shape as paygate-mcp 2.x keys. */
export function generateApiKey(): string {
  return KEY_PREFIX + randomBytes(24).toString('hex');
}

/** Keys are stored and looked up only by this hash. */
export function hashApiKey(key: string): string {
  return hash('sha256', key, 'hex');
}

/** The part of a key that may be shown: enough to recognise it, useless to call with. */
export function displayPrefix(key: string): string {
  return key.slice(0, DISPLAY_PREFIX_LENGTH);
}
