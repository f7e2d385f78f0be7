import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import {
  BackendFailure,
  handshakeParams,
  identityFrom,
  type Backend,
  type BackendStatus,
  type ForwardedRequest,
  type ServerIdentity,
  type ServerMessage,
} from './backend.ts';
import type { JsonObject, JsonRpcAnswer, JsonRpcId, JsonRpcMessage } from './jsonrpc.ts';
import { PendingRequests } from './pending.ts';

type SdkMessage = Parameters<StreamableHTTPClientTransport['send']>[0];

export interface RemoteBackendOptions {
  label: string;
  url: URL;
  /** Sent with every request, e.g. an `Authorization` header for the remote server. */
  headers: Readonly<Record<string, string>>;
  clientInfo: { name: string; version: string };
  initTimeoutMs?: number;
}

/**
 * One session with a remote MCP server over Streamable HTTP, through the MCP SDK's client transport:
 * answers that arrive as SSE are handed on message by message as they stream, and the server's own
 * requests and notifications (on those streams or on the session's GET stream) go to
 * `onServerMessage`. A request the server cannot be reached for fails as `down`.
 */
export class RemoteBackend implements Backend {
  readonly label: string;
  onServerMessage: ((message: ServerMessage) => void) | undefined;
  onStatusChange: ((status: BackendStatus) => void) | undefined;
  readonly #options: RemoteBackendOptions;
  readonly #transport: StreamableHTTPClientTransport;
  readonly #pending: PendingRequests;
  #status: BackendStatus = { state: 'starting', restarts: 0 };
  #identity: ServerIdentity | undefined;
  #nextId = 1;

  constructor(options: RemoteBackendOptions) {
    this.label = options.label;
    this.#pending = new PendingRequests(this.label, (upstreamId) =>
      this.notify('notifications/cancelled', { requestId: upstreamId, reason: 'timed out at the gate' }),
    );
    this.#options = options;
    this.#transport = new StreamableHTTPClientTransport(options.url, { requestInit: { headers: { ...options.headers } } });
    this.#transport.onmessage = (message) => this.#dispatch(message as JsonRpcMessage);
    // Failures of requests surface through send(); those of the optional GET stream are not fatal.
    this.#transport.onerror = () => {};
  }

  status(): BackendStatus {
    return this.#status;
  }

  identity(): ServerIdentity | undefined {
    return this.#identity;
  }

  async start(): Promise<void> {
    await this.#transport.start();
    const { response } = this.#send('initialize', handshakeParams(this.#options.clientInfo), this.#options.initTimeoutMs ?? 30_000);
    this.#identity = identityFrom(await response, this.label);
    this.#transport.setProtocolVersion(this.#identity.protocolVersion);
    this.notify('notifications/initialized');
    this.#setStatus({ state: 'ready', restarts: 0 });
  }

  request(method: string, params: JsonObject | undefined, timeoutMs: number): ForwardedRequest {
    if (this.#status.state === 'stopped') {
      return { upstreamId: this.#nextId++, response: Promise.reject(new BackendFailure('down', `the session with "${this.label}" has ended`)) };
    }
    return this.#send(method, params, timeoutMs);
  }

  notify(method: string, params?: JsonObject): void {
    this.#post({ jsonrpc: '2.0', method, ...(params === undefined ? {} : { params }) });
  }

  respond(upstreamId: JsonRpcId, answer: JsonRpcAnswer): void {
    this.#post({ jsonrpc: '2.0', id: upstreamId, ...answer });
  }

  async close(): Promise<void> {
    if (this.#status.state === 'stopped') return;
    this.#setStatus({ state: 'stopped', restarts: 0, reason: 'the session was closed' });
    this.#pending.failAll('down', `the session with "${this.label}" was closed`);
    await this.#transport.terminateSession().catch(() => {});
    await this.#transport.close().catch(() => {});
  }

  #send(method: string, params: JsonObject | undefined, timeoutMs: number): ForwardedRequest {
    const upstreamId = this.#nextId++;
    const response = this.#pending.wait(upstreamId, method, timeoutMs);
    this.#transport.send({ jsonrpc: '2.0', id: upstreamId, method, ...(params === undefined ? {} : { params }) } as SdkMessage).then(
      () => {
        if (this.#status.state === 'down') this.#setStatus({ state: 'ready', restarts: this.#status.restarts });
      },
      (error: Error) => {
        const reason = `the MCP server "${this.label}" at ${this.#options.url.href} could not be reached: ${error.message}`;
        if (this.#status.state !== 'stopped') this.#setStatus({ state: 'down', restarts: this.#status.restarts, reason });
        this.#pending.fail(upstreamId, new BackendFailure('down', reason));
      },
    );
    return { upstreamId, response };
  }

  #post(message: JsonRpcMessage): void {
    this.#transport.send(message as SdkMessage).catch(() => {});
  }

  #dispatch(message: JsonRpcMessage): void {
    if ('method' in message) this.onServerMessage?.(message);
    else if ('id' in message && message.id !== null) this.#pending.settle(message);
  }

  #setStatus(status: BackendStatus): void {
    this.#status = status;
    this.onStatusChange?.(status);
  }
}
