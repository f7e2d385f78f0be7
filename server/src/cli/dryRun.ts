import fs from 'node:fs';
import { checkConfig } from '../config/check.ts';
import { formatDiagnostic } from '../config/diagnostic.ts';
import { unknownTool } from '../config/rules.ts';
import type { GateSettings } from '../config/types.ts';
import { toolPricing } from '../gate/pricing.ts';
import { ServerSet } from '../proxy/connect.ts';
import { listTools } from '../proxy/listTools.ts';
import { StartError } from '../service.ts';
import { VERSION } from '../version.ts';

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  return rows.map((row) => row.map((cell, column) => cell.padEnd(widths[column]!)).join('  ').trimEnd()).join('\n');
}

/**
 * `wrap --dry-run`: starts the servers, prints every tool with the price and limits it would get,
 * reports prices and rules for tools no server offers, and stops. Exit 1 when the config has errors.
 */
export async function runDryRun(settings: GateSettings, configFile: string | undefined): Promise<number> {
  const servers = await ServerSet.start(settings.servers, {
    clientInfo: { name: 'paygate-mcp', version: VERSION },
    sessions: { broadcast: () => {}, deliverToOrigin: () => false },
    name: settings.name ?? 'PayGate',
    remoteIdleMs: 60_000,
    backendStderr: process.stderr,
  }).catch((error: Error) => {
    throw new StartError(error.message);
  });
  try {
    const tools = (await listTools(servers.upstream, settings.callTimeoutMs).catch((error: Error) => {
      throw new StartError(error.message);
    })).map((tool) => tool.name);
    const rows = [['tool', 'credits/call', '+credits/KiB', 'calls/min per key']];
    const policy = { ...settings, globalQuota: null };
    for (const name of [...tools].sort()) {
      const { creditsPerCall, creditsPerKbInput, rateLimitPerMin } = toolPricing(policy, name);
      rows.push([name, String(creditsPerCall), String(creditsPerKbInput), rateLimitPerMin === 0 ? 'no limit' : String(rateLimitPerMin)]);
    }
    process.stdout.write(`${table(rows)}\n`);
    const offered = new Set(tools);
    let errors = 0;
    let configPriced = new Set<string>();
    if (configFile !== undefined) {
      const checked = checkConfig(fs.readFileSync(configFile, 'utf8'), { tools: offered });
      for (const diagnostic of checked.diagnostics) process.stdout.write(`${formatDiagnostic(configFile, diagnostic)}\n`);
      errors += checked.diagnostics.filter((d) => d.severity === 'error').length;
      configPriced = new Set(Object.keys(checked.config?.toolPricing ?? {}));
    }
    for (const name of Object.keys(settings.toolPricing)) {
      if (offered.has(name) || configPriced.has(name)) continue;
      process.stdout.write(`--tool-price: warning unknown-tool ${unknownTool(name, offered).message}\n`);
    }
    return errors > 0 ? 1 : 0;
  } finally {
    await servers.close();
  }
}
