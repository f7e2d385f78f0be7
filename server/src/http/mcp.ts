import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { BATCH_METHOD, parseBatch } from '../engine/batch.ts';
import { plain, type Engine, type Outcome } from '../engine/engine.ts';
import { parseToolCall, type CallProblem, type ToolCall } from '../engine/toolCall.ts';
import type { Caller, KeyRecord } from '../gate/types.ts';
import {
  answerOf,
  classify,
  ErrorCode,
  errorResponse,
  isObject,
  type JsonObject,
  type JsonRpcId,
  type JsonRpcNotification,
  type JsonRpcRequest,
  type JsonRpcResponse,
} from '../proxy/jsonrpc.ts';
import { LISTEN_METHOD } from '../proxy/serverListens.ts';
import { LedgerUnavailableError } from '../store/contract.ts';
import { clientDescriptionOf, type ClientChannel } from '../proxy/upstream.ts';
import { advertisedServer } from './advertise.ts';
import { JsonParseError, parseJson, readBody } from './body.ts';
import { answerStatus, cacheScopeFor, clientEra, discoverResult, isRefusal, shapeAnswer, type ClientEra } from './era.ts';
import { apiKeyChallenge } from './challenge.ts';
import { allowListedOrigin, answerOptions } from './cors.ts';
import { credentialsOf } from './credentials.ts';
import { hostProblem, type HostPolicy } from './hostCheck.ts';
import { KEYLESS_METHODS } from './keyless.ts';
import { parseListenFilter, type ListenerTable } from './listen.ts';
import { acceptsOf, PostChannel, type Accepts } from './postChannel.ts';
import { OVER_LIMIT, type RefusedTraffic } from './refusals.ts';
import { HttpError, sendJson } from './respond.ts';
import type { Session, SessionTable } from './sessions.ts';

/** Revisions a client may negotiate in `initialize`, newest first. */
const NEGOTIABLE_VERSIONS = ['2025-11-25', '2025-06-18', '2025-03-26', '2024-11-05'];
/** Revisions a request may name in `MCP-Protocol-Version` (2026-07-28 clients send no `initialize`). */
const ACCEPTED_VERSIONS = new Set(['2026-07-28', ...NEGOTIABLE_VERSIONS]);

/** Stands for the caller of a request refused before its key was looked up. */
const NOBODY: Caller = { record: undefined, presentedKey: false, clientIp: undefined };

/** The checked calls of a `tools/call` or `tools/call_batch`, or what is wrong with them; undefined for other methods. */
function callsOf(method: string, params: JsonObject | undefined, maxBatchSize: number): { calls: ToolCall[] } | CallProblem | undefined {
  if (method === BATCH_METHOD) return parseBatch(params, maxBatchSize);
  if (method !== 'tools/call') return undefined;
  const call = parseToolCall(params, 'params');
  return 'problem' in call ? call : { calls: [call] };
}

/** Why an answer refuses its request, when it does so for a missing or bad key or malformed params. */
function refusalReason(outcome: Outcome): string | undefined {
  if (!('error' in outcome.body)) return undefined;
  const { code, data } = outcome.body.error;
  if (!outcome.unauthorized && code !== ErrorCode.InvalidParams) return undefined;
  return isObject(data) && typeof data.reason === 'string' ? data.reason : 'invalid_params';
}

export interface McpEndpointOptions {
  maxBodyBytes: number;
  /** Overrides the backend's `serverInfo.name`. */
  name: string | undefined;
  hostPolicy: HostPolicy;
  trustedProxies: number;
  now: () => number;
}

const NO_SUCH_SESSION = 'the MCP session does not exist or has expired: initialize a new one (send initialize without Mcp-Session-Id)';

/** Stands for the address of a client whose socket has none (it has gone already). */
const UNKNOWN_ADDRESS = 'unknown';

/** `/mcp`: MCP's Streamable HTTP transport, with sessions when the client initializes and without when it does not. */
export class McpEndpoint {
  readonly #engine: Engine;
  readonly #sessions: SessionTable;
  readonly #refusals: RefusedTraffic;
  readonly #options: McpEndpointOptions;
  readonly #listeners: ListenerTable;

  constructor(engine: Engine, sessions: SessionTable, listeners: ListenerTable, refusals: RefusedTraffic, options: McpEndpointOptions) {
    this.#engine = engine;
    this.#sessions = sessions;
    this.#listeners = listeners;
    this.#refusals = refusals;
    this.#options = options;
  }

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let caller: Caller = { record: undefined, presentedKey: false, clientIp: undefined };
    try {
      // Looked up once: every check and refusal below is about this caller.
      caller = await this.#engine.caller(credentialsOf(req, this.#options.trustedProxies));
      const { hostPolicy } = this.#options;
      const problem = hostProblem(req.headers, hostPolicy);
      if (problem) throw new HttpError(403, problem);
      // Before the limit: a page on a listed origin must be able to read its 429.
      allowListedOrigin(req, res, hostPolicy);
      const waitSeconds = this.#refusals.retryAfterSeconds(caller.clientIp ?? UNKNOWN_ADDRESS, this.#options.now());
      if (waitSeconds !== undefined && !this.#validKey(caller)) {
        this.#refuseOverLimit(res, caller, waitSeconds);
        return;
      }
      switch (req.method) {
        case 'POST':
          return await this.#post(req, res, caller);
        case 'GET':
          return this.#get(req, res, caller);
        case 'DELETE':
          return this.#delete(req, res, caller);
        case 'OPTIONS':
          return answerOptions(req, res, hostPolicy);
        default:
          throw new HttpError(405, `${req.method} is not supported on /mcp: use POST, GET or DELETE`, { allow: 'POST, GET, DELETE' });
      }
    } catch (error) {
      if (error instanceof LedgerUnavailableError) {
        if (!res.headersSent) sendJson(res, 503, errorResponse(null, ErrorCode.InternalError, `${error.message}; nothing was done or charged, try again shortly`), { 'retry-after': '1' });
        return;
      }
      if (!(error instanceof HttpError)) throw error;
      this.#countRefusal(caller, 'bad_request');
      const code = error instanceof JsonParseError ? ErrorCode.ParseError : ErrorCode.InvalidRequest;
      if (!res.headersSent) sendJson(res, error.status, errorResponse(null, code, error.message), error.headers);
    }
  }

  /**
   * The session a request names. A session belongs to the valid key it was opened with, or to no key:
   * a request with another key, without its key, or with a key on a keyless session is answered as
   * for a session that does not exist, so that a session id alone gives nothing away (and a client
   * that now has a key initializes anew with it).
   */
  #session(req: IncomingMessage, caller: Caller): Session | undefined {
    const id = req.headers['mcp-session-id'];
    if (id === undefined) return undefined;
    const session = typeof id === 'string' ? this.#sessions.find(id) : undefined;
    if (!session || session.keyHash !== this.#validKeyHash(caller)) throw new HttpError(404, NO_SUCH_SESSION);
    return this.#sessions.touch(session.id, this.#options.now());
  }

  #validKeyHash(caller: Caller): string | undefined {
    return this.#validKey(caller) ? caller.record.keyHash : undefined;
  }

  #checkProtocolVersion(req: IncomingMessage): void {
    const version = req.headers['mcp-protocol-version'];
    if (version !== undefined && !(typeof version === 'string' && ACCEPTED_VERSIONS.has(version))) {
      throw new HttpError(400, `unsupported MCP-Protocol-Version "${String(version)}"; this gate speaks ${[...ACCEPTED_VERSIONS].join(', ')}`);
    }
  }

  /** A valid key: stored, active, not expired, and allowed from the client's address. */
  #validKey(caller: Caller): caller is Caller & { record: KeyRecord } {
    return caller.record !== undefined && this.#engine.policyEngine.checkKey(caller, this.#options.now()) === undefined;
  }

  /** Counts a refused request against its address, unless it came with a valid key: clients with a key are never limited for their mistakes. */
  #countRefusal(caller: Caller, reason: string): void {
    if (this.#validKey(caller)) return;
    this.#refusals.record(caller.clientIp ?? UNKNOWN_ADDRESS, reason, this.#options.now());
  }

  #refuseOverLimit(res: ServerResponse, caller: Caller, waitSeconds: number): void {
    const address = caller.clientIp ?? UNKNOWN_ADDRESS;
    this.#refusals.record(address, OVER_LIMIT, this.#options.now());
    const message =
      `too many refused requests from ${address}: without a valid API key, ${this.#refusals.limitPerMin} refused requests a minute are allowed. ` +
      `Retry in ${waitSeconds} s, with a valid key (X-API-Key or Authorization: Bearer) and well-formed requests`;
    const body = errorResponse(null, ErrorCode.PaymentRequired, message, { reason: OVER_LIMIT, retryAfterSeconds: waitSeconds });
    sendJson(res, 429, body, { 'retry-after': String(waitSeconds) });
  }

  async #post(req: IncomingMessage, res: ServerResponse, caller: Caller): Promise<void> {
    const accepts = acceptsOf(req.headers.accept);
    if (!accepts.json && !accepts.sse) throw new HttpError(406, 'the Accept header must allow application/json or text/event-stream');
    const contentType = req.headers['content-type'];
    if (contentType !== undefined && !/^application\/json\b/i.test(contentType)) {
      throw new HttpError(415, `the body must be JSON (Content-Type: application/json), not ${contentType}`);
    }
    this.#checkProtocolVersion(req);
    const message = classify(parseJson(await readBody(req, this.#options.maxBodyBytes)));
    if (typeof message === 'string') throw new HttpError(400, message);
    const era = clientEra(req.headers, message);
    if (isRefusal(era)) {
      // Before anything is looked up or billed: the headers that balancers route on must say what the body does.
      this.#countRefusal(caller, 'header_mismatch');
      sendJson(res, 400, errorResponse('id' in message && message.id !== undefined ? message.id : null, era.code, era.message, era.data));
      return;
    }
    // 2026-07-28 has no sessions: a modern request's Mcp-Session-Id is ignored.
    const session = era.modern ? undefined : this.#session(req, caller);
    if ('method' in message && 'id' in message && message.id !== undefined) {
      await this.#request(message as JsonRpcRequest, era, session, caller, accepts, res);
      return;
    }
    if ('method' in message) {
      this.#notification(message, session, caller);
    } else {
      this.#answer(message as JsonRpcResponse, session, caller);
    }
    res.writeHead(202).end();
  }

  #notification(message: JsonRpcNotification, session: Session | undefined, caller: Caller): void {
    const upstream = this.#engine.upstream;
    const params = message.params;
    if (message.method === 'notifications/cancelled' && session && params) {
      const requestId = params.requestId;
      if (typeof requestId === 'string' || typeof requestId === 'number') {
        upstream.cancel(session.id, requestId, typeof params.reason === 'string' ? params.reason : undefined);
      }
    } else if (message.method === 'notifications/roots/list_changed') {
      upstream.notifyFromClient(message.method, { origin: session?.id ?? '', keyHash: caller.record?.keyHash });
    }
  }

  #answer(message: JsonRpcResponse, session: Session | undefined, caller: Caller): void {
    const from = { origin: session?.id ?? '', keyHash: caller.record?.keyHash };
    const outcome = this.#engine.answer(message.id as JsonRpcId, answerOf(message), from);
    if (outcome === 'unknown') throw new HttpError(400, `no request with id ${JSON.stringify(message.id)} is waiting for an answer (it may have timed out)`);
    if (outcome === 'forbidden') throw new HttpError(403, 'that request was sent to another client');
  }

  async #request(message: JsonRpcRequest, era: ClientEra, session: Session | undefined, caller: Caller, accepts: Accepts, res: ServerResponse): Promise<void> {
    const engine = this.#engine;
    const { method, params } = message;
    const calls = callsOf(method, params, engine.options.maxBatchSize);
    if (calls && 'problem' in calls) {
      // Refused before anything is looked up: a malformed name never reaches a key, a price or a server.
      this.#countRefusal(caller, calls.reason);
      const body = { jsonrpc: '2.0', id: message.id, error: { code: ErrorCode.InvalidParams, message: calls.problem, data: { reason: calls.reason } } } as const;
      new PostChannel(res, accepts, session, NOBODY, message.id, () => ({})).finish(200, body, {});
      return;
    }
    if (method === LISTEN_METHOD) return this.#listen(message, era, caller, accepts, res);
    const channel = new PostChannel(res, accepts, session, caller, message.id, () => this.#headers(caller.record, null));
    let extraHeaders: OutgoingHttpHeaders = {};
    let outcome: Outcome;
    if (method === 'initialize') {
      if (session) throw new HttpError(400, 'this session is already initialized; to start a new one, send initialize without Mcp-Session-Id');
      const initialized = this.#initialize(params, caller);
      outcome = initialized.outcome;
      if (initialized.session) extraHeaders = { 'mcp-session-id': initialized.session.id };
    } else if (method === 'server/discover') {
      outcome = this.#discover();
    } else if (method === 'ping') {
      outcome = plain(undefined, { result: {} });
    } else if (calls) {
      outcome = method === BATCH_METHOD ? await engine.callBatch(caller, calls.calls, channel) : await engine.callTool(caller, calls.calls[0]!, channel);
    } else if (KEYLESS_METHODS.has(method)) {
      outcome = await engine.forward(method, params, engine.authorize(caller) ? undefined : caller.record, channel);
    } else {
      outcome = engine.authorize(caller) ?? (await engine.forward(method, params, caller.record, channel));
    }
    const refused = refusalReason(outcome);
    if (refused !== undefined) this.#countRefusal(caller, refused);
    const body = shapeAnswer(era, method, outcome.body, cacheScopeFor(method, outcome.record));
    const status = outcome.unauthorized ? 401 : answerStatus(era, body);
    const headers = Object.assign(this.#headers(outcome.record, outcome), extraHeaders);
    if (outcome.unauthorized) headers['www-authenticate'] = apiKeyChallenge(outcome.unauthorized);
    channel.finish(status, { jsonrpc: '2.0', id: message.id, ...body } as JsonRpcResponse, headers);
  }

  /**
   * `subscriptions/listen` (2026-07-28): an event stream that stays open. Listening for list changes
   * needs no key, like listing; resource updates need a valid key, like reading. Nothing is charged.
   */
  async #listen(message: JsonRpcRequest, era: ClientEra, caller: Caller, accepts: Accepts, res: ServerResponse): Promise<void> {
    const refuse = (status: number, code: number, text: string, reason: string, headers: OutgoingHttpHeaders = {}) => {
      this.#countRefusal(caller, reason);
      sendJson(res, status, errorResponse(message.id, code, text, { reason }), headers);
    };
    if (!era.modern) {
      const text = `${LISTEN_METHOD} is MCP 2026-07-28's; in a 2025 session, subscribe with resources/subscribe and read the session's GET stream`;
      sendJson(res, 200, errorResponse(message.id, ErrorCode.MethodNotFound, text));
      return;
    }
    const filter = parseListenFilter(message.params);
    if (typeof filter === 'string') return refuse(200, ErrorCode.InvalidParams, filter, 'invalid_params');
    if (filter.resourceSubscriptions.length > 0) {
      const denied = this.#engine.authorize(caller);
      if (denied && 'error' in denied.body) {
        const headers: OutgoingHttpHeaders = denied.unauthorized ? { 'www-authenticate': apiKeyChallenge(denied.unauthorized) } : {};
        const reason = refusalReason(denied) ?? 'invalid_key';
        return refuse(denied.unauthorized ? 401 : 200, denied.body.error.code, `resource updates need a valid API key: ${denied.body.error.message}`, reason, headers);
      }
    }
    if (!accepts.sse) throw new HttpError(406, `${LISTEN_METHOD} answers with an event stream that stays open: the Accept header must allow text/event-stream`);
    const identity = this.#engine.upstream.identity();
    if (!identity) {
      sendJson(res, 200, { jsonrpc: '2.0', id: message.id, ...this.#serverUnavailable().body } as JsonRpcResponse);
      return;
    }
    const keyHash = this.#validKey(caller) ? caller.record.keyHash : undefined;
    const address = caller.clientIp ?? UNKNOWN_ADDRESS;
    const full = this.#listeners.refusal(keyHash, address);
    if (full !== undefined) return refuse(429, ErrorCode.InvalidRequest, full, 'too_many_listeners');
    const upstream = this.#engine.upstream;
    const timeoutMs = this.#engine.options.callTimeoutMs;
    const subscribe = (uri: string, channel: ClientChannel) =>
      upstream.forward('resources/subscribe', { uri }, channel, timeoutMs).then((answer) => 'result' in answer, () => false);
    await this.#listeners.open({ id: message.id, filter, keyHash, address, capabilities: identity.capabilities, subscribe }, res);
  }

  #initialize(params: JsonObject | undefined, caller: Caller): { outcome: Outcome; session?: Session } {
    const identity = this.#engine.upstream.identity();
    if (!identity) return { outcome: this.#serverUnavailable() };
    const requested = typeof params?.protocolVersion === 'string' ? params.protocolVersion : undefined;
    const protocolVersion = requested && NEGOTIABLE_VERSIONS.includes(requested) ? requested : NEGOTIABLE_VERSIONS[0]!;
    const opener = { keyHash: this.#validKey(caller) ? caller.record.keyHash : undefined, address: caller.clientIp ?? UNKNOWN_ADDRESS, client: clientDescriptionOf(params) };
    const session = this.#sessions.create(this.#options.now(), opener);
    const result: JsonObject = { protocolVersion, ...advertisedServer(identity, this.#options.name, this.#engine.options.maxBatchSize) };
    return { outcome: plain(undefined, { result }), session };
  }

  /** `server/discover`, answered by the gate like `initialize`, for clients of 2026-07-28 (which send no initialize). */
  #discover(): Outcome {
    const identity = this.#engine.upstream.identity();
    if (!identity) return this.#serverUnavailable();
    return plain(undefined, { result: discoverResult(advertisedServer(identity, this.#options.name, this.#engine.options.maxBatchSize)) });
  }

  #serverUnavailable(): Outcome {
    const reason = [...this.#engine.upstream.statuses().values()].find((status) => status.reason)?.reason ?? 'it has not started';
    return plain(undefined, { error: { code: ErrorCode.BackendUnavailable, message: `the MCP server behind the gate is not available: ${reason}` } });
  }

  #headers(record: KeyRecord | undefined, outcome: Outcome | null): OutgoingHttpHeaders {
    const headers: OutgoingHttpHeaders = {};
    if (outcome?.retryAfterSeconds !== undefined) headers['retry-after'] = String(outcome.retryAfterSeconds);
    if (!record) return headers;
    headers['x-credits-remaining'] = String(record.credits);
    const rateLimit = outcome?.rateLimit ?? this.#engine.policyEngine.rateLimitStatus(record, this.#options.now());
    if (rateLimit) {
      headers['x-ratelimit-limit'] = String(rateLimit.limit);
      headers['x-ratelimit-remaining'] = String(rateLimit.remaining);
      headers['x-ratelimit-reset'] = String(rateLimit.resetSeconds);
    }
    return headers;
  }

  #get(req: IncomingMessage, res: ServerResponse, caller: Caller): void {
    if (!acceptsOf(req.headers.accept).sse) throw new HttpError(406, 'GET /mcp opens an event stream: the Accept header must allow text/event-stream');
    this.#checkProtocolVersion(req);
    if (req.headers['mcp-session-id'] === undefined) {
      throw new HttpError(405, 'GET /mcp needs an Mcp-Session-Id: initialize first (requests without a session have no server stream)', { allow: 'POST, DELETE' });
    }
    this.#session(req, caller)!.streams.open(req, res);
  }

  #delete(req: IncomingMessage, res: ServerResponse, caller: Caller): void {
    if (typeof req.headers['mcp-session-id'] !== 'string') throw new HttpError(400, 'DELETE /mcp ends a session: send its Mcp-Session-Id');
    this.#sessions.end(this.#session(req, caller)!.id);
    res.writeHead(204).end();
  }
}
