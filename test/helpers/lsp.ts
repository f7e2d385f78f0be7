import { spawn, type ChildProcess } from 'node:child_process';
import { after } from 'node:test';
import {
  createProtocolConnection,
  InitializedNotification,
  InitializeRequest,
  PublishDiagnosticsNotification,
  StreamMessageReader,
  StreamMessageWriter,
  type PublishDiagnosticsParams,
  type ProtocolConnection,
} from 'vscode-languageserver-protocol/node';
import { UsageChanged, type UsageSnapshot } from '../../server/src/lsp/protocol.ts';
import { CLI, waitFor } from './gate.ts';

/** The daemon as an editor runs it: `paygate-mcp lsp --stdio` in its own process, spoken to over LSP. */
export class DaemonClient {
  readonly connection: ProtocolConnection;
  readonly child: ChildProcess;
  readonly #published: PublishDiagnosticsParams[] = [];
  readonly #waiters: { predicate: (params: PublishDiagnosticsParams) => boolean; resolve: (params: PublishDiagnosticsParams) => void }[] = [];
  /** Every `paygate/usageChanged` snapshot received, oldest first. */
  readonly snapshots: UsageSnapshot[] = [];
  stderr = '';

  private constructor(connection: ProtocolConnection, child: ChildProcess) {
    this.connection = connection;
    this.child = child;
    connection.onNotification(UsageChanged, (snapshot) => {
      this.snapshots.push(snapshot);
    });
    connection.onNotification(PublishDiagnosticsNotification.type, (params: PublishDiagnosticsParams) => {
      const waiter = this.#waiters.find((candidate) => candidate.predicate(params));
      if (!waiter) {
        this.#published.push(params);
        return;
      }
      this.#waiters.splice(this.#waiters.indexOf(waiter), 1);
      waiter.resolve(params);
    });
  }

  /** Starts the daemon on this Node, or on `node`; from `entry`, a script and its arguments, when given. */
  static async start(node = process.execPath, entry = [CLI, 'lsp', '--stdio']): Promise<DaemonClient> {
    const child = spawn(node, entry, { stdio: ['pipe', 'pipe', 'pipe'] });
    after(() => child.kill('SIGKILL'));
    const connection = createProtocolConnection(new StreamMessageReader(child.stdout), new StreamMessageWriter(child.stdin));
    const client = new DaemonClient(connection, child);
    child.stderr.on('data', (chunk) => (client.stderr += chunk));
    connection.listen();
    await connection.sendRequest(InitializeRequest.type, { processId: process.pid, rootUri: null, capabilities: {}, workspaceFolders: null });
    await connection.sendNotification(InitializedNotification.type, {});
    return client;
  }

  /** The next diagnostics published for `uri` that satisfy `predicate` (earlier ones included). */
  diagnostics(uri: string, predicate: (params: PublishDiagnosticsParams) => boolean = () => true, timeoutMs = 10_000): Promise<PublishDiagnosticsParams> {
    const earlier = this.#published.find((params) => params.uri === uri && predicate(params));
    if (earlier) {
      this.#published.splice(this.#published.indexOf(earlier), 1);
      return Promise.resolve(earlier);
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no matching diagnostics for ${uri}; published: ${JSON.stringify(this.#published.filter((p) => p.uri === uri).at(-1))}`)), timeoutMs);
      this.#waiters.push({
        predicate: (params) => params.uri === uri && predicate(params),
        resolve: (params) => {
          clearTimeout(timer);
          resolve(params);
        },
      });
    });
  }

  /** The first usage snapshot received from now on (or already received, when `since` is given) that satisfies `predicate`. */
  usage(predicate: (snapshot: UsageSnapshot) => boolean, since = this.snapshots.length, timeoutMs = 10_000): Promise<UsageSnapshot> {
    return waitFor(
      'a matching paygate/usageChanged',
      async () => this.snapshots.slice(since).find(predicate),
      timeoutMs,
    ).catch((error: Error) => {
      throw new Error(`${error.message}; the last one: ${JSON.stringify(this.snapshots.at(-1))}`);
    });
  }

  /** Whether anything was published for `uri` that no `diagnostics` call has taken. */
  publishedFor(uri: string): boolean {
    return this.#published.some((params) => params.uri === uri);
  }
}
