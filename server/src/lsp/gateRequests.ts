import { LSPErrorCodes, ResponseError, type Connection } from 'vscode-languageserver/node';
import { UserFacingError } from '../errors.ts';
import { CallBatch, CreateKey, idleSnapshot, RevokeKey, SQLITE_NODE, StartServer, Status, STOPPED, StopServer, Tools, TopUp, UsageChanged } from './protocol.ts';
import type { GateHost } from './gateHost.ts';

/** Why a gate cannot run on this Node, when that is the problem. */
function runtimeProblem(error: unknown): string | undefined {
  const code = (error as NodeJS.ErrnoException).code;
  if (code !== 'ERR_UNKNOWN_BUILTIN_MODULE' || !String((error as Error).message).includes('sqlite')) return undefined;
  return (
    `the gate keeps its ledger in node:sqlite, which this Node (${process.version}, at ${process.execPath}) does not have. ` +
    `Set the setting "paygate.server.runtime" to a Node ${SQLITE_NODE} or later, for example the output of \`which node\` after installing Node 24.`
  );
}

/**
 * The daemon's `paygate/*` requests: start and stop the editor's gate, manage keys, run batch calls,
 * and the `paygate/usageChanged` notifications that feed the usage panel. The gate's code (and
 * node:sqlite) is loaded with the first start, so that config diagnostics work on any Node.
 */
export function serveGateRequests(connection: Connection): { dispose(): Promise<void> } {
  let loading: Promise<GateHost> | undefined;
  const log = (line: string) => connection.console.info(line);
  const host = () =>
    (loading ??= import('./gateHost.ts').then(
      ({ GateHost }) => new GateHost(log, (snapshot) => void connection.sendNotification(UsageChanged, snapshot)),
      (error: unknown) => {
        loading = undefined;
        throw error;
      },
    ));

  /** Runs a request; a failure reaches the editor as a message the user can act on. */
  const answer = async <T>(what: string, work: (gate: GateHost) => Promise<T> | T): Promise<T> => {
    try {
      return await work(await host());
    } catch (error) {
      const problem = runtimeProblem(error);
      if (problem) throw new ResponseError(LSPErrorCodes.RequestFailed, problem);
      if (!(error instanceof UserFacingError)) connection.console.error(`paygate daemon: ${what} failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
      throw new ResponseError(LSPErrorCodes.RequestFailed, error instanceof Error ? error.message : String(error));
    }
  };

  connection.onRequest(StartServer, (params) => answer('starting the gate', (gate) => gate.start(params)));
  // Before the first start there is nothing to stop or report, and nothing needs loading.
  connection.onRequest(StopServer, () => (loading ? answer('stopping the gate', (gate) => gate.stop()) : STOPPED));
  connection.onRequest(Status, () =>
    loading ? answer('reading the status', (gate) => gate.snapshot()) : idleSnapshot(),
  );
  connection.onRequest(Tools, () => answer('listing the tools', (gate) => gate.tools()));
  connection.onRequest(CreateKey, (params) => answer('creating a key', (gate) => gate.createKey(params)));
  connection.onRequest(TopUp, ({ id, credits }) => answer('topping up', (gate) => gate.topUp(id, credits)));
  connection.onRequest(RevokeKey, ({ id }) => answer('revoking a key', (gate) => gate.revoke(id)));
  connection.onRequest(CallBatch, (params) => answer('running a batch', (gate) => gate.callBatch(params)));

  return {
    async dispose() {
      if (loading) await (await loading.catch(() => undefined))?.dispose();
    },
  };
}
