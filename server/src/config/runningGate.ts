import { DEFAULTS, type ConfigFile } from './types.ts';

/**
 * The tool names a gate running with this config offers, asked from its `/mcp` (tools/list needs
 * no key); undefined when none answers within `timeoutMs`.
 */
export async function runningGateTools(config: ConfigFile, timeoutMs = 500): Promise<Set<string> | undefined> {
  const host = config.host === undefined || config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host;
  const port = config.port ?? DEFAULTS.port;
  if (port === 0) return undefined;
  try {
    const response = await fetch(`http://${host.includes(':') ? `[${host}]` : host}:${port}/mcp`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const body = (await response.json()) as { result?: { tools?: { name?: unknown }[] } };
    const tools = body.result?.tools;
    return Array.isArray(tools) ? new Set(tools.map((tool) => tool.name).filter((name): name is string => typeof name === 'string')) : undefined;
  } catch {
    return undefined;
  }
}
