import * as vscode from 'vscode';
import { GATE_NODE_FLAGS } from '../../server/src/lsp/protocol.ts';
import {
  CloseAction,
  ErrorAction,
  LanguageClient,
  TransportKind,
  type CloseHandlerResult,
  type ErrorHandler,
  type ErrorHandlerResult,
  type LanguageClientOptions,
  type NodeModule,
} from 'vscode-languageclient/node';

/** The files the daemon checks: the same patterns as `jsonValidation` in the manifest. */
const CONFIG_PATTERNS = ['**/paygate.json', '**/*.paygate.json', '**/.paygate/config.json'];
export const CONFIG_GLOB = `{${CONFIG_PATTERNS.join(',')}}`;

const RESTART_WINDOW_MS = 3 * 60_000;
const MAX_RESTARTS = 4;

/**
 * Restarts a daemon that stopped unexpectedly, with a notice, unless it keeps stopping. (The
 * language client would only log its own notice, as it shows nothing below errors by default.)
 */
class RestartOnCrash implements ErrorHandler {
  readonly #restarts: number[] = [];

  error(): ErrorHandlerResult {
    return { action: ErrorAction.Continue };
  }

  closed(): CloseHandlerResult {
    const now = Date.now();
    while (this.#restarts.length > 0 && now - this.#restarts[0]! > RESTART_WINDOW_MS) this.#restarts.shift();
    if (this.#restarts.length >= MAX_RESTARTS) {
      return {
        action: CloseAction.DoNotRestart,
        message: `The PayGate daemon stopped ${MAX_RESTARTS + 1} times in 3 minutes and is not restarted again. Its log is in the "PayGate" output; "Developer: Reload Window" starts it afresh.`,
      };
    }
    this.#restarts.push(now);
    const message = 'The PayGate daemon stopped unexpectedly and was restarted; the gate it ran starts again. Its log is in the "PayGate" output.';
    void vscode.window.showWarningMessage(message);
    return { action: CloseAction.Restart, message, handled: true };
  }
}

/**
 * The language client for the daemon: `dist/cli.js lsp` over IPC, on the editor's Node or on
 * `runtime`. Its output channel is "PayGate"; `paygate.trace.server` traces the messages.
 */
export function createDaemonClient(context: vscode.ExtensionContext, runtime: string | undefined): LanguageClient {
  const daemon: NodeModule = {
    module: context.asAbsolutePath('dist/cli.js'),
    args: ['lsp'],
    transport: TransportKind.ipc,
    options: { execArgv: [...GATE_NODE_FLAGS] },
    ...(runtime === undefined ? {} : { runtime }),
  };
  const options: LanguageClientOptions = {
    documentSelector: CONFIG_PATTERNS.map((pattern) => ({ scheme: 'file', pattern })),
    synchronize: { fileEvents: vscode.workspace.createFileSystemWatcher(CONFIG_GLOB) },
    errorHandler: new RestartOnCrash(),
  };
  return new LanguageClient('paygate', 'PayGate', { run: daemon, debug: daemon }, options);
}
