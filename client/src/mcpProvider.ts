import { createHash } from 'node:crypto';
import * as vscode from 'vscode';
import type { Paygate } from './paygate.ts';

export const PROVIDER_ID = 'paygate.gatedServers';

/**
 * Offers the running gate to VS Code's own MCP client as a Streamable HTTP server that sends the
 * dev key, so that chat's tool calls go through the gate and show in the usage panel. The version
 * changes with the gate's tools and prices, which makes VS Code refresh them.
 */
export function registerMcpProvider(paygate: Paygate): vscode.Disposable {
  if (typeof vscode.lm?.registerMcpServerDefinitionProvider !== 'function') {
    paygate.client.outputChannel.info('this editor has no MCP server API: the gated endpoint is not offered to its chat');
    return new vscode.Disposable(() => {});
  }
  const changed = new vscode.EventEmitter<void>();
  let offered = '';
  const version = () => {
    const { gate, servers } = paygate.snapshot;
    const tools = servers.flatMap((server) => server.tools.map((tool) => `${tool.name}=${tool.creditsPerCall}+${tool.creditsPerKbInput}`));
    return JSON.stringify([gate.state, gate.url, paygate.devKey !== undefined, tools]);
  };
  const listener = paygate.onDidChangeSnapshot(() => {
    const now = version();
    if (now === offered) return;
    offered = now;
    changed.fire();
  });
  const registration = vscode.lm.registerMcpServerDefinitionProvider(PROVIDER_ID, {
    onDidChangeMcpServerDefinitions: changed.event,
    provideMcpServerDefinitions: () => {
      const { gate } = paygate.snapshot;
      const key = paygate.devKey;
      if (gate.state !== 'running' || gate.url === undefined || key === undefined) return [];
      const revision = createHash('sha256').update(version()).digest('hex').slice(0, 12);
      return [new vscode.McpHttpServerDefinition(`PayGate: ${gate.label ?? 'gated server'}`, vscode.Uri.parse(gate.url), { 'X-API-Key': key }, revision)];
    },
  });
  return vscode.Disposable.from(registration, listener, changed);
}
