import { SQLITE_NODE } from '../../server/src/lsp/protocol.ts';

function atLeast(version: string, minimum: string): boolean {
  const have = version.replace(/^v/, '').split('.').map(Number);
  const need = minimum.split('.').map(Number);
  for (let index = 0; index < need.length; index++) {
    if ((have[index] ?? 0) !== need[index]) return (have[index] ?? 0) > need[index]!;
  }
  return true;
}

export interface RuntimeChoice {
  /** The Node that runs the daemon; undefined means the editor's own. */
  runtime: string | undefined;
  /** Said to the user when the daemon will run without `node:sqlite`: config checks work, gates do not. */
  warning: string | undefined;
}

/**
 * Which Node runs the daemon: the one in `paygate.server.runtime` when set, else the editor's own.
 * When the editor's own lacks `node:sqlite` and no runtime is set, the warning says what to do.
 */
export function chooseRuntime(setting: string, editorNode: string, editorHasSqlite: boolean): RuntimeChoice {
  const configured = setting.trim();
  if (configured !== '') return { runtime: configured, warning: undefined };
  if (editorHasSqlite) return { runtime: undefined, warning: undefined };
  const why = atLeast(editorNode, SQLITE_NODE) ? 'without node:sqlite' : `older than ${SQLITE_NODE}, without node:sqlite`;
  return {
    runtime: undefined,
    warning:
      `PayGate: this editor's Node (${editorNode}) is ${why}, which gates need for their ledger. ` +
      `Config checks still work. To run gates, set "paygate.server.runtime" to a Node ${SQLITE_NODE} or later.`,
  };
}
