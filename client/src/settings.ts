import * as vscode from 'vscode';

/** The extension's settings, read in one place. */
export interface Settings {
  host: string;
  port: number;
  stateFile: string;
  /** A Node to run the daemon with; empty means the editor's own. */
  runtime: string;
  /** Start the workspace config's gate when the folder opens. */
  autoStart: boolean;
}

export function readSettings(): Settings {
  const config = vscode.workspace.getConfiguration('paygate');
  return {
    host: config.get<string>('host', '127.0.0.1'),
    port: config.get<number>('port', 3402),
    stateFile: config.get<string>('stateFile', '.paygate/state.db'),
    runtime: config.get<string>('server.runtime', ''),
    autoStart: config.get<boolean>('autoStart', false),
  };
}

/** Settings that the running daemon cannot pick up: changing them means starting it again. */
export function needsDaemonRestart(event: vscode.ConfigurationChangeEvent): boolean {
  return event.affectsConfiguration('paygate.server.runtime');
}

/** Settings that a running gate picks up only when it starts again. */
export function needsGateRestart(event: vscode.ConfigurationChangeEvent): boolean {
  return ['paygate.host', 'paygate.port', 'paygate.stateFile'].some((name) => event.affectsConfiguration(name));
}
