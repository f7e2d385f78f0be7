import * as vscode from 'vscode';
import { State, type LanguageClient } from 'vscode-languageclient/node';
import {
  idleSnapshot,
  STOPPED,
  StartServer,
  Status,
  StopServer,
  UsageChanged,
  type StartServerParams,
  type UsageSnapshot,
} from '../../server/src/lsp/protocol.ts';
import { createDaemonClient } from './daemon.ts';
import { chooseRuntime } from './runtime.ts';
import { Secrets } from './secrets.ts';
import { readSettings } from './settings.ts';

/** A gate start as the user asked for it, without the secrets: enough to start it again. */
export type GateRequest = Omit<StartServerParams, 'adminKey' | 'devKey' | 'defaults'>;

function editorHasSqlite(): boolean {
  // getBuiltinModule is missing on Node before 22.3 (and 20.16): such a Node has no node:sqlite either.
  return process.getBuiltinModule?.('node:sqlite') !== undefined;
}

/**
 * The extension's one context object: it owns the daemon's client and everything disposable, and
 * holds the latest usage snapshot, which the panel, the status bar and the MCP provider show.
 * The daemon decides; this only asks and shows.
 */
export class Paygate implements vscode.Disposable {
  readonly client: LanguageClient;
  readonly secrets: Secrets;
  readonly activatedAt = Date.now();
  /** Resolves once the daemon answers. */
  readonly ready: Promise<void>;
  #snapshot: UsageSnapshot = idleSnapshot();
  #lastRequest: GateRequest | undefined;
  #devKey: string | undefined;
  readonly #changed = new vscode.EventEmitter<UsageSnapshot>();
  readonly onDidChangeSnapshot = this.#changed.event;
  readonly #disposables: vscode.Disposable[] = [this.#changed];

  constructor(context: vscode.ExtensionContext) {
    this.secrets = new Secrets(context.secrets);
    const choice = chooseRuntime(readSettings().runtime, process.versions.node, editorHasSqlite());
    this.client = createDaemonClient(context, choice.runtime);
    if (choice.warning) void this.#warnAboutRuntime(choice.warning);
    this.#disposables.push(
      this.client.onNotification(UsageChanged, (snapshot) => this.#show(snapshot)),
      this.client.onDidChangeState(({ oldState, newState }) => {
        if (oldState === State.Starting && newState === State.Running && this.#snapshot.gate.state === 'running') void this.#restartAfterCrash();
      }),
    );
    this.ready = this.client.start().then(async () => {
      this.#show(await this.client.sendRequest(Status));
      this.client.outputChannel.info(`daemon ready ${Date.now() - this.activatedAt} ms after the extension activated`);
    });
  }

  get snapshot(): UsageSnapshot {
    return this.#snapshot;
  }

  /** The key the editor's own calls use on the running gate. */
  get devKey(): string | undefined {
    return this.#snapshot.gate.state === 'running' ? this.#devKey : undefined;
  }

  get lastRequest(): GateRequest | undefined {
    return this.#lastRequest;
  }

  /** Starts a gate (the daemon stops the one running first) and keeps its dev key. */
  async startGate(request: GateRequest): Promise<UsageSnapshot> {
    await this.ready;
    const settings = readSettings();
    this.#lastRequest = request;
    const result = await this.client.sendRequest(StartServer, {
      ...request,
      defaults: { host: settings.host, port: settings.port, stateFile: settings.stateFile },
      adminKey: await this.secrets.adminKey(),
      devKey: await this.secrets.devKey(request.baseDir),
    });
    await this.secrets.keepDevKey(request.baseDir, result.devKey);
    this.#devKey = result.devKey;
    this.#show({ ...this.#snapshot, gate: result.status });
    return this.#snapshot;
  }

  async stopGate(): Promise<void> {
    await this.ready;
    this.#show({ ...this.#snapshot, gate: await this.client.sendRequest(StopServer) });
  }

  /** The running gate's snapshot, or an error telling the user to start one. */
  requireRunning(): UsageSnapshot & { gate: { url: string; stateFile: string } } {
    const { gate } = this.#snapshot;
    if (gate.state !== 'running' || gate.url === undefined || gate.stateFile === undefined) {
      throw new Error('No gate is running: start one with "PayGate: Start Gated Server".');
    }
    return this.#snapshot as UsageSnapshot & { gate: { url: string; stateFile: string } };
  }

  dispose(): void {
    for (const disposable of this.#disposables) disposable.dispose();
  }

  #show(snapshot: UsageSnapshot): void {
    this.#snapshot = snapshot;
    void vscode.commands.executeCommand('setContext', 'paygate.gateState', snapshot.gate.state);
    this.#changed.fire(snapshot);
  }

  /** The daemon was restarted after a crash, which took its gate down: start that gate again. */
  async #restartAfterCrash(): Promise<void> {
    this.#show({ ...this.#snapshot, gate: STOPPED });
    if (!this.#lastRequest) return;
    try {
      await this.startGate(this.#lastRequest);
    } catch (error) {
      void vscode.window.showErrorMessage(`PayGate: the gate could not be started again after the daemon restarted: ${(error as Error).message}`);
    }
  }

  async #warnAboutRuntime(warning: string): Promise<void> {
    this.client.outputChannel.warn(warning);
    if ((await vscode.window.showWarningMessage(warning, 'Open Settings')) === 'Open Settings') {
      await vscode.commands.executeCommand('workbench.action.openSettings', 'paygate.server.runtime');
    }
  }
}
