import { NAMESPACE_PATTERN } from '../../gate/namespace.ts';
import { HttpError } from '../respond.ts';

/** A whole-number query parameter within bounds, or undefined when absent. */
export function intParam(url: URL, name: string, min: number, max: number): number | undefined {
  const raw = url.searchParams.get(name);
  if (raw === null) return undefined;
  const value = Number(raw);
  if (!/^\d+$/.test(raw) || value < min || value > max) throw new HttpError(400, `?${name} must be a whole number from ${min} to ${max}`);
  return value;
}

const NAMESPACE = new RegExp(NAMESPACE_PATTERN);

export function namespaceParam(url: URL): string | undefined {
  const raw = url.searchParams.get('namespace');
  if (raw === null) return undefined;
  if (!NAMESPACE.test(raw)) throw new HttpError(400, '?namespace must be letters, digits and hyphens, at most 50 characters');
  return raw.toLowerCase();
}

/** `?since=` as milliseconds: an ISO date and time. */
export function sinceParam(url: URL): number | undefined {
  const raw = url.searchParams.get('since');
  if (raw === null) return undefined;
  const ms = Date.parse(raw);
  if (Number.isNaN(ms)) throw new HttpError(400, '?since must be an ISO 8601 date or date and time, such as 2026-11-01T00:00:00Z');
  return ms;
}
