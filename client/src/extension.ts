import * as vscode from 'vscode';
import { registerBatchLens } from './batchCommands.ts';
import { registerCommands, startOnOpen } from './commands.ts';
import { registerMcpProvider } from './mcpProvider.ts';
import { Paygate } from './paygate.ts';
import { needsDaemonRestart, needsGateRestart, readSettings } from './settings.ts';
import { registerStatusBar } from './statusBar.ts';
import { registerUsageTree } from './usageTree.ts';

let running: Paygate | undefined;

/** Wires the parts together; each lives in its own module. */
export function activate(extension: vscode.ExtensionContext): void {
  const paygate = (running = new Paygate(extension));
  extension.subscriptions.push(
    paygate,
    registerUsageTree(paygate),
    registerStatusBar(paygate),
    registerMcpProvider(paygate),
    registerBatchLens(),
    ...registerCommands({ paygate, extension }),
    vscode.workspace.onDidChangeConfiguration(async (event) => {
      if (needsDaemonRestart(event) && (await vscode.window.showInformationMessage('PayGate: the daemon runtime changed.', 'Reload Window')) === 'Reload Window') {
        await vscode.commands.executeCommand('workbench.action.reloadWindow');
      } else if (needsGateRestart(event) && paygate.snapshot.gate.state === 'running') {
        if ((await vscode.window.showInformationMessage('PayGate: host, port or state file changed; they apply when the gate starts again.', 'Restart Gate')) === 'Restart Gate') {
          await vscode.commands.executeCommand('paygate.restartServer');
        }
      }
    }),
  );
  paygate.ready.catch((error: unknown) => void vscode.window.showErrorMessage(`PayGate: the daemon did not start: ${(error as Error).message}`));
  if (readSettings().autoStart) void startOnOpen({ paygate, extension });
}

/** Stops the daemon, which stops its gate first; VS Code waits for this. */
export function deactivate(): Promise<void> | undefined {
  return running?.client.stop();
}
