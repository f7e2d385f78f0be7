import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { ajv, explain, type Validator } from '../../validation/ajv.ts';
import { parseJson, readBody } from '../body.ts';
import { ADMIN_KEY_CHALLENGE } from '../challenge.ts';
import { clientIp } from '../clientIp.ts';
import { LedgerUnavailableError } from '../../store/contract.ts';
import type { AdminGuard } from '../credentials.ts';
import { HttpError, sendError, sendJson, sendText } from '../respond.ts';

export interface RequestContext<Body> {
  req: IncomingMessage;
  url: URL;
  body: Body;
  now: number;
}

export interface Reply {
  status?: number;
  json?: unknown;
  text?: string;
  headers?: OutgoingHttpHeaders;
}

/** Who may call a route: the admin (`X-Admin-Key`), or anyone (the route checks what it needs). */
export type Access = 'admin' | 'public';

export interface Route {
  method: 'GET' | 'POST';
  path: string;
  access: Access;
  /** The body's JSON Schema; a POST route without one takes no body. */
  bodySchema?: object;
  /** Bodies that are not JSON documents (JSON lines) are passed as text. */
  rawBody?: boolean;
  maxBodyBytes?: number;
  handle(context: RequestContext<never>): Reply | Promise<Reply>;
}

/** Declares a route whose handler gets a body of the schema's type. */
export function route<Body>(
  definition: Omit<Route, 'handle'> & { handle(context: RequestContext<Body>): Reply | Promise<Reply> },
): Route {
  return definition as Route;
}

interface CompiledRoute extends Route {
  validate?: Validator<unknown>;
}

export interface RouterOptions {
  guard: AdminGuard;
  trustedProxies: number;
  maxBodyBytes: number;
  now: () => number;
}

/** Dispatches the plain-HTTP endpoints: method and path, admin check, body limit and schema. */
export class Router {
  readonly #routes = new Map<string, CompiledRoute[]>();
  readonly #options: RouterOptions;

  constructor(routes: readonly Route[], options: RouterOptions) {
    this.#options = options;
    for (const definition of routes) {
      const compiled: CompiledRoute = { ...definition };
      if (definition.bodySchema) compiled.validate = ajv.compile(definition.bodySchema);
      const list = this.#routes.get(definition.path) ?? [];
      list.push(compiled);
      this.#routes.set(definition.path, list);
    }
  }

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      const reply = await this.#dispatch(req);
      const headers = reply.headers ?? {};
      if (reply.text !== undefined) sendText(res, reply.status ?? 200, reply.text, headers);
      else sendJson(res, reply.status ?? 200, reply.json ?? {}, headers);
    } catch (error) {
      // While the ledger cannot be written, admin reads and changes wait for it like calls do.
      if (error instanceof LedgerUnavailableError) {
        sendError(res, 503, `${error.message}; try again once GET /health answers 200`, { 'retry-after': '1' });
        return;
      }
      if (!(error instanceof HttpError)) throw error;
      sendError(res, error.status, error.message, error.headers);
    }
  }

  async #dispatch(req: IncomingMessage): Promise<Reply> {
    const url = new URL(req.url ?? '/', 'http://gate.invalid');
    const candidates = this.#routes.get(url.pathname);
    if (!candidates) throw new HttpError(404, `no such endpoint: ${req.method} ${url.pathname}`);
    const route = candidates.find((candidate) => candidate.method === req.method);
    if (!route) {
      const allow = candidates.map((candidate) => candidate.method).join(', ');
      throw new HttpError(405, `${url.pathname} answers ${allow}, not ${req.method}`, { allow });
    }
    const now = this.#options.now();
    if (route.access === 'admin') this.#checkAdmin(req, now);
    const body = route.method === 'POST' ? await this.#body(req, route) : undefined;
    return route.handle({ req, url, body: body as never, now });
  }

  #checkAdmin(req: IncomingMessage, now: number): void {
    const verdict = this.#options.guard.check(req.headers, clientIp(req, this.#options.trustedProxies) ?? 'unknown', now);
    if (verdict === 'ok') return;
    if (verdict === 'denied') throw new HttpError(401, 'a valid admin key is required in the X-Admin-Key header', { 'www-authenticate': ADMIN_KEY_CHALLENGE });
    throw new HttpError(429, `too many wrong admin keys from this address; try again in ${verdict.retryAfterSeconds} s`, {
      'retry-after': String(verdict.retryAfterSeconds),
    });
  }

  async #body(req: IncomingMessage, route: CompiledRoute): Promise<unknown> {
    const raw = await readBody(req, route.maxBodyBytes ?? this.#options.maxBodyBytes);
    if (route.rawBody) return raw.toString('utf8');
    const body = raw.length === 0 ? {} : parseJson(raw);
    if (route.validate && !route.validate(body)) throw new HttpError(400, explain(route.validate.errors, 'body').join('; '));
    return body;
  }
}
