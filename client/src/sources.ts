import os from 'node:os';
import path from 'node:path';
import { parseEnv } from 'node:util';
import { parse } from 'jsonc-parser';
import * as vscode from 'vscode';
import type { StdioServer } from '../../server/src/lsp/protocol.ts';
import { inputsOf, parseMcpJson, resolveServer, type DeclaredInput, type DeclaredServer, type McpJson } from './mcpJson.ts';
import { CONFIG_GLOB } from './daemon.ts';
import type { GateRequest } from './paygate.ts';

interface FoundConfig {
  uri: vscode.Uri;
  folder: string;
  /** Whether the config names its servers; if not, it gives prices for servers picked with it. */
  namesServers: boolean;
}

interface WorkspaceMcp {
  folder: string;
  declared: McpJson;
}

type Choice = vscode.QuickPickItem & { request?: () => Promise<GateRequest | undefined> };

async function readText(uri: vscode.Uri): Promise<string> {
  return new TextDecoder().decode(await vscode.workspace.fs.readFile(uri));
}

function folderOf(uri: vscode.Uri, fallback: string): string {
  return vscode.workspace.getWorkspaceFolder(uri)?.uri.fsPath ?? fallback;
}

export async function findConfigs(fallbackDir: string): Promise<FoundConfig[]> {
  const uris = await vscode.workspace.findFiles(CONFIG_GLOB, '**/node_modules/**', 50);
  return Promise.all(
    uris.map(async (uri) => {
      let value: unknown;
      try {
        value = parse(await readText(uri), [], { allowTrailingComma: true });
      } catch {
        value = undefined;
      }
      const config = typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : {};
      return { uri, folder: folderOf(uri, fallbackDir), namesServers: ['serverCommand', 'remoteUrl', 'servers'].some((field) => field in config) };
    }),
  );
}

async function workspaceMcp(): Promise<WorkspaceMcp[]> {
  const found: WorkspaceMcp[] = [];
  for (const folder of vscode.workspace.workspaceFolders ?? []) {
    const uri = vscode.Uri.joinPath(folder.uri, '.vscode', 'mcp.json');
    let text: string;
    try {
      text = await readText(uri);
    } catch {
      continue;
    }
    found.push({ folder: folder.uri.fsPath, declared: parseMcpJson(text) });
  }
  return found;
}

/** Asks for the `${input:...}` values the servers need, each once; undefined when the user cancels. */
async function askInputs(servers: readonly DeclaredServer[], inputs: readonly DeclaredInput[]): Promise<Map<string, string> | undefined> {
  const values = new Map<string, string>();
  for (const id of new Set(servers.flatMap(inputsOf))) {
    const input = inputs.find((candidate) => candidate.id === id);
    if (!input) throw new Error(`.vscode/mcp.json refers to \${input:${id}}, but "inputs" has no entry with that id`);
    const value =
      input.type === 'pickString'
        ? await vscode.window.showQuickPick(input.options, { title: input.description, ignoreFocusOut: true })
        : await vscode.window.showInputBox({ title: input.description, password: input.password, value: input.default ?? '', ignoreFocusOut: true });
    if (value === undefined) return undefined;
    values.set(id, value);
  }
  return values;
}

async function resolveDeclared(folder: string, servers: readonly DeclaredServer[], inputs: readonly DeclaredInput[]): Promise<StdioServer[] | undefined> {
  const values = await askInputs(servers, inputs);
  if (!values) return undefined;
  const variable = (name: string): string | undefined => {
    if (name === 'workspaceFolder') return folder;
    if (name === 'workspaceFolderBasename') return path.basename(folder);
    if (name === 'userHome') return os.homedir();
    if (name === 'pathSeparator' || name === '/') return path.sep;
    if (name.startsWith('env:')) return process.env[name.slice('env:'.length)] ?? '';
    if (name.startsWith('input:')) return values.get(name.slice('input:'.length));
    return undefined;
  };
  const resolved: StdioServer[] = [];
  for (const server of servers) {
    const { envFile, ...ready } = resolveServer(server, variable);
    // As in VS Code, `env` wins over the env file.
    if (envFile !== undefined) ready.env = { ...(parseEnv(await readText(vscode.Uri.file(path.resolve(folder, envFile)))) as Record<string, string>), ...ready.env };
    resolved.push(ready);
  }
  return resolved;
}

function serverChoices(mcp: readonly WorkspaceMcp[], pricing: string | undefined): Choice[] {
  const choices: Choice[] = [];
  for (const { folder, declared } of mcp) {
    const where = vscode.workspace.asRelativePath(path.join(folder, '.vscode', 'mcp.json'));
    const gate = (servers: DeclaredServer[], label: string) => async (): Promise<GateRequest | undefined> => {
      const resolved = await resolveDeclared(folder, servers, declared.inputs);
      if (!resolved) return undefined;
      return { baseDir: folder, source: { kind: 'servers', label, servers: resolved, ...(pricing === undefined ? {} : { config: pricing }) } };
    };
    if (declared.servers.length > 1) {
      choices.push({
        label: `$(server-environment) All servers in ${where}`,
        description: declared.servers.map((server) => server.name).join(', '),
        detail: 'One gate; each server\'s tools under its name, as name:tool',
        request: gate(declared.servers, where),
      });
    }
    for (const server of declared.servers) {
      choices.push({ label: `$(server) ${server.name}`, description: [server.command, ...server.args].join(' '), detail: `from ${where}`, request: gate([server], server.name) });
    }
  }
  return choices;
}

function commandChoices(baseDir: string, exampleServer: string, exampleConfig: string, pricing: string | undefined): Choice[] {
  return [
    {
      label: '$(terminal) Enter a command line…',
      detail: 'Any stdio MCP server, quoted as in a shell: npx -y @modelcontextprotocol/server-everything',
      request: async () => {
        const commandLine = await vscode.window.showInputBox({
          title: 'The MCP server to gate',
          prompt: 'A command line that starts a stdio MCP server, quoted as in a shell',
          placeHolder: 'npx -y @modelcontextprotocol/server-everything',
          ignoreFocusOut: true,
          validateInput: (text) => (text.trim() === '' ? 'Type the command that starts the server' : undefined),
        });
        return commandLine === undefined ? undefined : { baseDir, source: { kind: 'command', commandLine, ...(pricing === undefined ? {} : { config: pricing }) } };
      },
    },
    {
      label: '$(beaker) The bundled example server',
      detail: 'A demo with a few tools at different prices',
      request: async () => ({ baseDir, source: { kind: 'command', commandLine: `"${process.execPath}" "${exampleServer}"`, config: exampleConfig } }),
    },
  ];
}

/** Asks for a choice; given a promise, the picker opens at once and shows it is busy until the choices are known. */
async function pick(title: string, choices: Choice[] | Promise<Choice[]>): Promise<GateRequest | undefined> {
  const chosen = await vscode.window.showQuickPick(choices, { title, matchOnDescription: true, matchOnDetail: true, ignoreFocusOut: true });
  return chosen?.request?.();
}

export interface SourceOptions {
  /** The folder for the state when no workspace folder is open. */
  fallbackDir: string;
  exampleServer: string;
  exampleConfig: string;
}

/**
 * Asks what to gate: a PayGate config of the workspace, the stdio servers of `.vscode/mcp.json`,
 * a command line, or the bundled example. Servers picked without a config get their prices from
 * the workspace's one config that names no servers, if there is one.
 */
export function pickGateRequest(options: SourceOptions): Promise<GateRequest | undefined> {
  return pick('Start a gated server', gateChoices(options));
}

async function gateChoices(options: SourceOptions): Promise<Choice[]> {
  const baseDir = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath ?? options.fallbackDir;
  const [configs, mcp] = await Promise.all([findConfigs(options.fallbackDir), workspaceMcp()]);
  const pricingOnly = configs.filter((config) => !config.namesServers);
  const pricing = pricingOnly.length === 1 ? pricingOnly[0]!.uri.fsPath : undefined;
  const configChoices: Choice[] = configs.map((config) => ({
    label: `$(file-code) ${vscode.workspace.asRelativePath(config.uri)}`,
    description: config.namesServers ? 'servers, prices and limits from this config' : 'prices and limits from this config; pick the servers next',
    request: async () => {
      if (config.namesServers) return { baseDir: config.folder, source: { kind: 'config', file: config.uri.fsPath } };
      const servers = [...serverChoices(mcp, config.uri.fsPath), ...commandChoices(config.folder, options.exampleServer, options.exampleConfig, config.uri.fsPath)];
      return pick(`Servers to gate with the prices of ${vscode.workspace.asRelativePath(config.uri)}`, servers);
    },
  }));
  for (const { declared } of mcp) {
    if (declared.skipped.length > 0) vscode.window.setStatusBarMessage(`PayGate: skipped in mcp.json: ${declared.skipped.join('; ')}`, 10_000);
  }
  return [...configChoices, ...serverChoices(mcp, pricing), ...commandChoices(baseDir, options.exampleServer, options.exampleConfig, pricing)];
}
