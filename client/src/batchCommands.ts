import * as vscode from 'vscode';
import { CallBatch, Tools } from '../../server/src/lsp/protocol.ts';
import { argumentSkeleton, argumentsProblem, batchReport, parseBatchFile, type BatchCall } from './batchFormat.ts';
import type { Paygate } from './paygate.ts';

export const BATCH_FILES = '**/*.batch.json';

/** The key a batch runs with: the dev key, a key created in the editor, or one typed in. */
async function pickKey(paygate: Paygate): Promise<{ key: string; label: string } | undefined> {
  const { gate, namespaces } = paygate.requireRunning();
  const active = new Set(namespaces.flatMap((namespace) => namespace.keys).filter((key) => key.active).map((key) => key.id));
  const kept = (await paygate.secrets.keys(gate.stateFile)).filter((key) => active.has(key.id));
  type KeyChoice = vscode.QuickPickItem & { key?: string };
  const choices: KeyChoice[] = [
    ...(paygate.devKey ? [{ label: '$(key) Dev key', description: 'vscode-dev: the editor\'s own key', key: paygate.devKey }] : []),
    ...kept.map((key) => ({ label: `$(key) ${key.name}`, description: `${key.key.slice(0, 10)}… created in the editor`, key: key.key })),
    { label: '$(edit) Enter a key…', description: 'any key of this gate' },
  ];
  const chosen = await vscode.window.showQuickPick(choices, { title: 'Run the batch with which key?' });
  if (!chosen) return undefined;
  if (chosen.key) return { key: chosen.key, label: chosen.label.replace('$(key) ', '') };
  const typed = await vscode.window.showInputBox({ title: 'API key', password: true, prompt: 'The key to run the batch with', validateInput: (text) => (text.trim() ? undefined : 'Type a key') });
  return typed === undefined ? undefined : { key: typed.trim(), label: `${typed.trim().slice(0, 10)}…` };
}

async function runAndShow(paygate: Paygate, calls: BatchCall[]): Promise<void> {
  const key = await pickKey(paygate);
  if (!key) return;
  const outcome = await paygate.client.sendRequest(CallBatch, { apiKey: key.key, calls });
  const document = await vscode.workspace.openTextDocument({ language: 'markdown', content: batchReport(calls, outcome, key.label) });
  await vscode.window.showTextDocument(document, { preview: false });
}

/** "Run Batch Call…": pick tools from the live list, edit each call's arguments as JSON, pick a key, run, show the results. */
export async function runBatchCall(paygate: Paygate): Promise<void> {
  paygate.requireRunning();
  const tools = await paygate.client.sendRequest(Tools);
  const picked = await vscode.window.showQuickPick(
    tools.map((tool) => ({ label: tool.name, description: `${tool.creditsPerCall} credits`, detail: tool.description, tool })),
    { title: 'Tools to call in one batch (all admitted or none)', canPickMany: true, matchOnDetail: true },
  );
  if (!picked || picked.length === 0) return;
  const calls: BatchCall[] = [];
  for (const [index, { tool }] of picked.entries()) {
    const text = await vscode.window.showInputBox({
      title: `Arguments for ${tool.name} (${index + 1}/${picked.length})`,
      prompt: 'A JSON object',
      value: JSON.stringify(argumentSkeleton(tool.inputSchema)),
      validateInput: argumentsProblem,
      ignoreFocusOut: true,
    });
    if (text === undefined) return;
    calls.push({ name: tool.name, arguments: JSON.parse(text) as Record<string, unknown> });
  }
  await runAndShow(paygate, calls);
}

/** "Run Batch File": the calls of a `*.batch.json` file (the active editor's, or the CodeLens's). */
export async function runBatchFile(paygate: Paygate, uri: vscode.Uri | undefined): Promise<void> {
  const target = uri ?? vscode.window.activeTextEditor?.document.uri;
  if (!target) throw new Error('Open a *.batch.json file first: {"calls": [{"name": "tool", "arguments": {}}]}');
  const document = await vscode.workspace.openTextDocument(target);
  const parsed = parseBatchFile(document.getText());
  if ('problem' in parsed) throw new Error(`${vscode.workspace.asRelativePath(target)}: ${parsed.problem}`);
  paygate.requireRunning();
  await runAndShow(paygate, parsed.calls);
}

/** A "Run batch" CodeLens at the top of every `*.batch.json` file. */
export function registerBatchLens(): vscode.Disposable {
  return vscode.languages.registerCodeLensProvider(
    { pattern: BATCH_FILES },
    {
      provideCodeLenses: (document) => [
        new vscode.CodeLens(new vscode.Range(0, 0, 0, 0), { title: '$(play) Run batch', command: 'paygate.runBatchFile', arguments: [document.uri] }),
      ],
    },
  );
}
