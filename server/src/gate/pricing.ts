import type { CallRequest, Policy, ToolPolicy } from './types.ts';

const NO_TOOL_POLICY: ToolPolicy = {};

export function toolPolicy(policy: Policy, tool: string): ToolPolicy {
  return Object.hasOwn(policy.toolPricing, tool) ? (policy.toolPricing[tool] ?? NO_TOOL_POLICY) : NO_TOOL_POLICY;
}

/**
 * Credits for one call: the tool's price (or the default price), plus `creditsPerKbInput` for every
 * started KiB of JSON arguments.
 */
export function priceOf(policy: Policy, tool: string, argBytes: number): number {
  const rule = toolPolicy(policy, tool);
  const base = rule.creditsPerCall ?? policy.defaultCreditsPerCall;
  const perKb = rule.creditsPerKbInput ?? 0;
  return perKb > 0 && argBytes > 0 ? base + Math.ceil((argBytes / 1024) * perKb) : base;
}

/** Credits for one call to decide on: its fixed price, else the tool's price now. */
export function callPrice(policy: Policy, call: CallRequest): number {
  return call.credits ?? priceOf(policy, call.tool, call.argBytes);
}

/**
 * The size of a call's JSON arguments in bytes, as pricing needs it: measured only for tools that
 * charge per KiB of input (0 for the others, which saves serialising every call's arguments).
 */
export function chargedInputBytes(policy: Policy, tool: string, args: unknown): number {
  return (toolPolicy(policy, tool).creditsPerKbInput ?? 0) > 0 ? Buffer.byteLength(JSON.stringify(args ?? {})) : 0;
}

/** Calls per minute one key may make to the tool: its own limit or the global one, whichever is lower; 0 means none. */
function effectiveRateLimit(policy: Policy, tool: string): number {
  const own = toolPolicy(policy, tool).rateLimitPerMin ?? 0;
  const global = policy.globalRateLimitPerMin;
  return own > 0 && (global === 0 || own < global) ? own : global;
}

/** What a tool costs and how often a key may call it, as clients, the panel and dry runs are told. */
export interface ToolPricing {
  creditsPerCall: number;
  creditsPerKbInput: number;
  /** Calls per minute per key; 0 means no limit. */
  rateLimitPerMin: number;
}

export function toolPricing(policy: Policy, tool: string): ToolPricing {
  const rule = toolPolicy(policy, tool);
  return {
    creditsPerCall: rule.creditsPerCall ?? policy.defaultCreditsPerCall,
    creditsPerKbInput: rule.creditsPerKbInput ?? 0,
    rateLimitPerMin: effectiveRateLimit(policy, tool),
  };
}
