import * as vscode from 'vscode';
import { isConfigFile } from '../../server/src/lsp/files.ts';
import { CreateKey, RevokeKey, TopUp, type KeyUsage } from '../../server/src/lsp/protocol.ts';
import { runBatchCall, runBatchFile } from './batchCommands.ts';
import type { Paygate } from './paygate.ts';
import { findConfigs, pickGateRequest } from './sources.ts';
import type { PanelNode } from './usageModel.ts';

/** What every command may use: the context object and where the extension's own files are. */
export interface CommandContext {
  paygate: Paygate;
  extension: vscode.ExtensionContext;
}

type Command = (context: CommandContext) => (...args: never[]) => Promise<unknown>;

const NAMESPACE = /^[A-Za-z0-9-]{1,50}$/;
const CONFIG_TEMPLATE = `{
  // The MCP server to gate: a command, or "servers" for several, or leave it out and pick servers when starting.
  "serverCommand": "npx",
  "serverArgs": ["-y", "@modelcontextprotocol/server-everything"],
  "defaultCreditsPerCall": 1,
  "toolPricing": {},
  "globalRateLimitPerMin": 60,
  "refundOnFailure": true
}
`;

function wholeNumber(text: string): string | undefined {
  return /^\d{1,15}$/.test(text.trim()) ? undefined : 'Type a whole number of credits, such as 100';
}

/** The key a context-menu row names, or one the user picks from the panel's keys. */
async function chooseKey(context: CommandContext, node: PanelNode | undefined, purpose: string): Promise<KeyUsage | undefined> {
  if (node?.key) return node.key;
  const keys = context.paygate.requireRunning().namespaces.flatMap((namespace) => namespace.keys).filter((key) => key.active);
  if (keys.length === 0) throw new Error('The gate has no active keys: create one with "PayGate: Create API Key".');
  const chosen = await vscode.window.showQuickPick(
    keys.map((key) => ({ label: key.name || key.keyPrefix, description: `${key.keyPrefix}… · ${key.namespace} · ${key.credits} credits`, key })),
    { title: purpose, matchOnDescription: true },
  );
  return chosen?.key;
}

async function started(context: CommandContext, request: Parameters<Paygate['startGate']>[0]): Promise<void> {
  const asked = Date.now();
  const snapshot = await vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title: `PayGate: starting the gate for ${request.source.kind === 'config' ? vscode.workspace.asRelativePath(request.source.file) : 'the chosen server'}…` },
    () => context.paygate.startGate(request),
  );
  const { gate } = snapshot;
  const now = Date.now();
  context.paygate.client.outputChannel.info(
    `gate ready at ${gate.url}: ${now - asked} ms after the start was asked, ${now - context.paygate.activatedAt} ms after the extension activated`,
  );
  const action = await vscode.window.showInformationMessage(`PayGate is gating ${gate.label} at ${gate.url}`, 'Copy Endpoint', 'Show Panel');
  if (action === 'Copy Endpoint') await vscode.commands.executeCommand('paygate.copyEndpoint');
  if (action === 'Show Panel') await vscode.commands.executeCommand('paygate.showPanel');
}

/**
 * `paygate.autoStart`: when the folder opens, the gate of the workspace's one config that names its
 * servers starts without a click. With none, or several, it says why in the output and waits.
 */
export async function startOnOpen(context: CommandContext): Promise<void> {
  const configs = (await findConfigs(context.extension.globalStorageUri.fsPath)).filter((config) => config.namesServers);
  if (configs.length !== 1) {
    context.paygate.client.outputChannel.info(
      `paygate.autoStart: ${configs.length === 0 ? 'no config here names its servers' : `${configs.length} configs name their servers`}; start one with "PayGate: Start Gated Server"`,
    );
    return;
  }
  try {
    await started(context, { baseDir: configs[0]!.folder, source: { kind: 'config', file: configs[0]!.uri.fsPath } });
  } catch (error) {
    void vscode.window.showErrorMessage(`PayGate: the gate of ${vscode.workspace.asRelativePath(configs[0]!.uri)} did not start: ${(error as Error).message}`);
  }
}

/** The config to open or check: the running gate's, the active editor's, or one of the workspace's. */
async function chooseConfig(context: CommandContext): Promise<vscode.Uri | undefined> {
  const running = context.paygate.snapshot.gate.configFile;
  if (running) return vscode.Uri.file(running);
  const active = vscode.window.activeTextEditor?.document.uri;
  if (active && isConfigFile(active.toString())) return active;
  const configs = await findConfigs(context.extension.globalStorageUri.fsPath);
  if (configs.length === 1) return configs[0]!.uri;
  if (configs.length > 1) {
    const chosen = await vscode.window.showQuickPick(configs.map((config) => ({ label: vscode.workspace.asRelativePath(config.uri), uri: config.uri })), { title: 'Which PayGate config?' });
    return chosen?.uri;
  }
  const folder = vscode.workspace.workspaceFolders?.[0];
  if (!folder) throw new Error('Open a folder first: the PayGate config (paygate.json) lives in the workspace.');
  if ((await vscode.window.showInformationMessage('This workspace has no PayGate config.', 'Create paygate.json')) !== 'Create paygate.json') return undefined;
  const uri = vscode.Uri.joinPath(folder.uri, 'paygate.json');
  await vscode.workspace.fs.writeFile(uri, new TextEncoder().encode(CONFIG_TEMPLATE));
  return uri;
}

/** Diagnostics of a document, once the daemon has checked it (or after a short wait when it has nothing to say). */
function checkedDiagnostics(uri: vscode.Uri, alreadyOpen: boolean): Promise<vscode.Diagnostic[]> {
  if (alreadyOpen) return Promise.resolve(vscode.languages.getDiagnostics(uri));
  return new Promise((resolve) => {
    const done = () => {
      listener.dispose();
      clearTimeout(timer);
      resolve(vscode.languages.getDiagnostics(uri));
    };
    const listener = vscode.languages.onDidChangeDiagnostics((event) => {
      if (event.uris.some((changed) => changed.toString() === uri.toString())) done();
    });
    const timer = setTimeout(done, 1500);
  });
}

const COMMANDS: Record<string, Command> = {
  'paygate.startServer': (context) => async () => {
    const request = await pickGateRequest({
      fallbackDir: context.extension.globalStorageUri.fsPath,
      exampleServer: context.extension.asAbsolutePath('dist/example-server.js'),
      exampleConfig: context.extension.asAbsolutePath('examples/paygate.json'),
    });
    if (request) await started(context, request);
  },

  'paygate.stopServer': ({ paygate }) => async () => {
    const { gate } = paygate.snapshot;
    await paygate.stopGate();
    void vscode.window.showInformationMessage(gate.state === 'running' ? `PayGate: the gate at ${gate.url} is stopped.` : 'PayGate: no gate was running.');
  },

  'paygate.restartServer': (context) => async () => {
    const request = context.paygate.lastRequest;
    if (!request) return vscode.commands.executeCommand('paygate.startServer');
    await started(context, request);
  },

  'paygate.createKey': ({ paygate }) => async () => {
    const { gate } = paygate.requireRunning();
    const name = await vscode.window.showInputBox({ title: 'Create API key (1/3): name', value: 'customer', prompt: 'Who or what the key is for' });
    if (name === undefined) return;
    const credits = await vscode.window.showInputBox({ title: 'Create API key (2/3): credits', value: '100', validateInput: wholeNumber });
    if (credits === undefined) return;
    const namespace = await vscode.window.showInputBox({
      title: 'Create API key (3/3): namespace',
      value: 'default',
      prompt: 'The tenant the key belongs to: letters, digits and hyphens',
      validateInput: (text) => (NAMESPACE.test(text) ? undefined : 'Letters, digits and hyphens only, at most 50'),
    });
    if (namespace === undefined) return;
    const created = await paygate.client.sendRequest(CreateKey, { name, credits: Number(credits), namespace });
    await paygate.secrets.keepKey(gate.stateFile, { id: created.id, name, key: created.key });
    const copy = await vscode.window.showInformationMessage(
      `PayGate: created "${name}" (${created.keyPrefix}…) with ${credits} credits. The gate keeps only its hash; the editor keeps it for batch calls.`,
      'Copy Key',
    );
    if (copy) await vscode.env.clipboard.writeText(created.key);
  },

  'paygate.topUp': (context) => async (node?: PanelNode) => {
    const key = await chooseKey(context, node, 'Top up which key?');
    if (!key) return;
    const credits = await vscode.window.showInputBox({ title: `Top up "${key.name}": credits to add`, value: '100', validateInput: (text) => wholeNumber(text) ?? (Number(text) > 0 ? undefined : 'Add at least 1 credit') });
    if (credits === undefined) return;
    const balance = await context.paygate.client.sendRequest(TopUp, { id: key.id, credits: Number(credits) });
    void vscode.window.showInformationMessage(`PayGate: "${key.name}" now has ${balance.credits} credits.`);
  },

  'paygate.revokeKey': (context) => async (node?: PanelNode) => {
    const key = await chooseKey(context, node, 'Revoke which key?');
    if (!key) return;
    const confirmed = await vscode.window.showWarningMessage(`Revoke "${key.name}" (${key.keyPrefix}…)? Calls with it are refused from now on.`, { modal: true }, 'Revoke');
    if (confirmed !== 'Revoke') return;
    await context.paygate.client.sendRequest(RevokeKey, { id: key.id });
    await context.paygate.secrets.forgetKey(context.paygate.requireRunning().gate.stateFile, key.id);
    void vscode.window.showInformationMessage(`PayGate: "${key.name}" is revoked.`);
  },

  'paygate.copyKeyPrefix': () => async (node?: PanelNode) => {
    if (!node?.key) return;
    await vscode.env.clipboard.writeText(node.key.keyPrefix);
    vscode.window.setStatusBarMessage(`Copied ${node.key.keyPrefix}`, 3000);
  },

  'paygate.copyEndpoint': ({ paygate }) => async () => {
    const { gate } = paygate.requireRunning();
    await vscode.env.clipboard.writeText(gate.url);
    void vscode.window.showInformationMessage(`PayGate: copied ${gate.url}. Clients send their key in the X-API-Key header.`);
  },

  'paygate.openConfig': (context) => async () => {
    const uri = await chooseConfig(context);
    if (uri) await vscode.window.showTextDocument(uri);
  },

  'paygate.validateConfig': (context) => async () => {
    const uri = await chooseConfig(context);
    if (!uri) return;
    const alreadyOpen = vscode.workspace.textDocuments.some((document) => document.uri.toString() === uri.toString());
    await vscode.window.showTextDocument(uri);
    const diagnostics = await checkedDiagnostics(uri, alreadyOpen);
    const count = (severity: vscode.DiagnosticSeverity) => diagnostics.filter((diagnostic) => diagnostic.severity === severity).length;
    const errors = count(vscode.DiagnosticSeverity.Error);
    const warnings = count(vscode.DiagnosticSeverity.Warning);
    const name = vscode.workspace.asRelativePath(uri);
    if (errors + warnings === 0) {
      void vscode.window.showInformationMessage(`PayGate: ${name} has no problems.`);
      return;
    }
    const action = await vscode.window.showWarningMessage(`PayGate: ${name} has ${errors} error(s) and ${warnings} warning(s).`, 'Show Problems');
    if (action) await vscode.commands.executeCommand('workbench.actions.view.problems');
  },

  'paygate.runBatch': ({ paygate }) => () => runBatchCall(paygate),
  'paygate.runBatchFile': ({ paygate }) => (uri?: vscode.Uri) => runBatchFile(paygate, uri),
  'paygate.showPanel': () => () => Promise.resolve(vscode.commands.executeCommand('paygate.usage.focus')),
};

/** Registers every command; a failure is shown to the user with what to do, never swallowed. */
export function registerCommands(context: CommandContext): vscode.Disposable[] {
  return Object.entries(COMMANDS).map(([id, command]) => {
    const run = command(context) as (...args: unknown[]) => Promise<unknown>;
    return vscode.commands.registerCommand(id, async (...args: unknown[]) => {
      try {
        return await run(...args);
      } catch (error) {
        void vscode.window.showErrorMessage(`PayGate: ${error instanceof Error ? error.message : String(error)}`);
        return undefined;
      }
    });
  });
}
