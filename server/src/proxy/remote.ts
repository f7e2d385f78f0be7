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
import { isModernVersion, paramsForServer } from './eras.ts';
import type { JsonObject, JsonRpcAnswer, JsonRpcId, JsonRpcMessage } from './jsonrpc.ts';
import { JsonRpcLink } from './link.ts';

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
  readonly #link: JsonRpcLink;
  #status: BackendStatus = { state: 'starting', restarts: 0 };
  #identity: ServerIdentity | undefined;

  constructor(options: RemoteBackendOptions) {
    this.label = options.label;
    this.#link = new JsonRpcLink(this.label, (message) => this.#post(message));
    this.#options = options;
    this.#transport = new StreamableHTTPClientTransport(options.url, { requestInit: { headers: { ...options.headers } } });
    this.#transport.onmessage = (message) => this.#link.receive(message as JsonRpcMessage, this.onServerMessage);
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
    const { response } = this.#link.request('initialize', handshakeParams(this.#options.clientInfo), this.#options.initTimeoutMs ?? 30_000);
    this.#identity = identityFrom(await response, this.label);
    this.#transport.setProtocolVersion(this.#identity.protocolVersion);
    this.notify('notifications/initialized');
    this.#setStatus({ state: 'ready', restarts: 0 });
  }

  request(method: string, params: JsonObject | undefined, timeoutMs: number): ForwardedRequest {
    if (this.#status.state === 'stopped') {
      return this.#link.refuse(new BackendFailure('down', `the session with "${this.label}" has ended`));
    }
    return this.#link.request(method, paramsForServer(isModernVersion(this.#identity?.protocolVersion), params, this.#options.clientInfo), timeoutMs);
  }

  notify(method: string, params?: JsonObject): void {
    this.#link.notify(method, params);
  }

  respond(upstreamId: JsonRpcId, answer: JsonRpcAnswer): void {
    this.#link.respond(upstreamId, answer);
  }

  async close(): Promise<void> {
    if (this.#status.state === 'stopped') return;
    this.#setStatus({ state: 'stopped', restarts: 0, reason: 'the session was closed' });
    this.#link.failAll('down', `the session with "${this.label}" was closed`);
    await this.#transport.terminateSession().catch(() => {});
    await this.#transport.close().catch(() => {});
  }

  /**
   * Sends one message. A request that cannot be delivered fails at once and marks the server down;
   * one that is delivered marks it up again. Other messages are sent on a best-effort basis.
   */
  #post(message: JsonRpcMessage): void {
    const requestId = 'method' in message && 'id' in message && typeof message.id === 'number' ? message.id : undefined;
    this.#transport.send(message as SdkMessage).then(
      () => {
        if (requestId !== undefined && this.#status.state === 'down') this.#setStatus({ state: 'ready', restarts: this.#status.restarts });
      },
      (error: Error) => {
        if (requestId === undefined) return;
        const reason = `the MCP server "${this.label}" at ${this.#options.url.href} could not be reached: ${error.message}`;
        if (this.#status.state !== 'stopped') this.#setStatus({ state: 'down', restarts: this.#status.restarts, reason });
        this.#link.fail(requestId, new BackendFailure('down', reason));
      },
    );
  }

  #setStatus(status: BackendStatus): void {
    this.#status = status;
    this.onStatusChange?.(status);
  }
}
