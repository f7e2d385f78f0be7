import type { IncomingHttpHeaders } from 'node:http';
import { Buffer } from 'node:buffer';
import type { KeyRecord } from '../gate/types.ts';
import { envelopeVersion, META_SERVER_INFO, MODERN_VERSIONS } from '../proxy/eras.ts';
import { ErrorCode, type JsonObject, type JsonRpcAnswer, type JsonRpcMessage } from '../proxy/jsonrpc.ts';

/** Which protocol era a client's request speaks: see `proxy/eras.ts`. */
export type ClientEra = { readonly modern: false } | { readonly modern: true; readonly version: string };

export const LEGACY_CLIENT: ClientEra = { modern: false };

/** MCP 2026-07-28's codes for requests refused on their HTTP headers or protocol version (both HTTP 400). */
export const HEADER_MISMATCH = -32020;
export const UNSUPPORTED_PROTOCOL_VERSION = -32022;

/** Why a request's headers are refused before anything else happens to it: HTTP 400 with this JSON-RPC error. */
export interface HeaderRefusal {
  code: number;
  message: string;
  data?: JsonObject;
}

/** The body field `Mcp-Name` mirrors, per method that needs one. */
const NAMED_BY: Record<string, 'name' | 'uri'> = { 'tools/call': 'name', 'prompts/get': 'name', 'resources/read': 'uri' };

/** Results a 2026-07-28 client may cache, which must carry `ttlMs` and `cacheScope`. */
const CACHEABLE = new Set(['server/discover', 'tools/list', 'prompts/list', 'resources/list', 'resources/templates/list', 'resources/read']);

/** Result fields that exist only from 2026-07-28 on. */
const MODERN_RESULT_FIELDS = ['resultType', 'ttlMs', 'cacheScope'];

const BASE64_SENTINEL = /^=\?base64\?(.*)\?=$/s;

function headerValue(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
}

/** A header value as MCP encodes it: plain, or `=?base64?…?=` for what is not plain ASCII. */
function decodeHeader(value: string): string {
  const encoded = BASE64_SENTINEL.exec(value);
  return encoded ? Buffer.from(encoded[1]!, 'base64').toString('utf8') : value;
}

function mismatch(message: string): HeaderRefusal {
  return { code: HEADER_MISMATCH, message: `Header mismatch: ${message}` };
}

/**
 * The era of a POSTed message, or why its headers are refused. A request is modern when its
 * `_meta` carries `io.modelcontextprotocol/protocolVersion` or its `MCP-Protocol-Version` header
 * names a modern revision; a modern request's `MCP-Protocol-Version`, `Mcp-Method` and `Mcp-Name`
 * headers must then match its body, as gateways and balancers route on them.
 */
export function clientEra(headers: IncomingHttpHeaders, message: JsonRpcMessage): ClientEra | HeaderRefusal {
  const headerVersion = headerValue(headers, 'mcp-protocol-version');
  if (!('method' in message)) return headerVersion !== undefined && MODERN_VERSIONS.includes(headerVersion) ? { modern: true, version: headerVersion } : LEGACY_CLIENT;
  const bodyVersion = envelopeVersion(message.params);
  const headerModern = headerVersion !== undefined && MODERN_VERSIONS.includes(headerVersion);
  if (bodyVersion === undefined && !headerModern) return LEGACY_CLIENT;
  if (!('id' in message)) return headerModern ? { modern: true, version: headerVersion! } : LEGACY_CLIENT;
  if (headerVersion === undefined) return mismatch(`the MCP-Protocol-Version header is missing; params._meta names ${JSON.stringify(bodyVersion)}`);
  if (bodyVersion !== headerVersion) {
    const body = bodyVersion === undefined ? 'params._meta has no "io.modelcontextprotocol/protocolVersion"' : `params._meta names ${JSON.stringify(bodyVersion)}`;
    return mismatch(`MCP-Protocol-Version header value '${headerVersion}' does not match the body: ${body}`);
  }
  if (!headerModern) {
    return {
      code: UNSUPPORTED_PROTOCOL_VERSION,
      message: `Unsupported protocol version "${headerVersion}" in a request with no initialize: this gate serves ${MODERN_VERSIONS.join(', ')} that way, and older revisions after initialize`,
      data: { supported: [...MODERN_VERSIONS], requested: headerVersion },
    };
  }
  const method = headerValue(headers, 'mcp-method');
  if (method === undefined) return mismatch(`the Mcp-Method header is missing (it must be '${message.method}')`);
  if (method !== message.method) return mismatch(`Mcp-Method header value '${method}' does not match body value '${message.method}'`);
  const field = NAMED_BY[message.method];
  if (field) {
    const bodyName = message.params?.[field];
    const name = headerValue(headers, 'mcp-name');
    if (name === undefined) {
      if (bodyName !== undefined) return mismatch(`the Mcp-Name header is missing (it must carry params.${field})`);
    } else if (decodeHeader(name) !== bodyName) {
      return mismatch(`Mcp-Name header value '${name}' does not match body value ${JSON.stringify(bodyName ?? null)} (params.${field})`);
    }
  }
  return { modern: true, version: headerVersion };
}

export function isRefusal(era: ClientEra | HeaderRefusal): era is HeaderRefusal {
  return 'code' in era;
}

/**
 * Who may share a cached copy of a result: only the caller's authorization context when the gate
 * shaped it for the key (a tool list filtered by the key's allowed or denied tools) or guards it with
 * a key (`resources/read`); anyone otherwise, unless the server said private.
 */
export function cacheScopeFor(method: string, record: KeyRecord | undefined): 'public' | 'private' {
  if (method === 'resources/read') return 'private';
  const filtered = method === 'tools/list' && record !== undefined && (record.allowedTools.length > 0 || record.deniedTools.length > 0);
  return filtered ? 'private' : 'public';
}

function withoutModernFields(result: JsonObject): JsonObject {
  const legacy: JsonObject = {};
  for (const [field, value] of Object.entries(result)) if (!MODERN_RESULT_FIELDS.includes(field)) legacy[field] = value;
  return legacy;
}

/**
 * An answer in the shape the client's era requires. A 2026-07-28 client gets `resultType` on every
 * result, and `ttlMs` and `cacheScope` on cacheable ones (a legacy server sends none of these); an
 * older client gets results without the fields its revision does not have, and an error for an
 * interim `input_required` result it has no way to answer.
 */
export function shapeAnswer(era: ClientEra, method: string, answer: JsonRpcAnswer, scope: 'public' | 'private'): JsonRpcAnswer {
  if ('error' in answer) return answer;
  const { result } = answer;
  if (!era.modern) {
    if (result.resultType === 'input_required') {
      const message =
        `the MCP server needs more input for ${method} (elicitation or sampling, asked the ${MODERN_VERSIONS[0]} way), ` +
        `which this client's protocol revision cannot receive through the gate: connect with MCP ${MODERN_VERSIONS[0]} to use it`;
      return { error: { code: ErrorCode.InternalError, message, data: { reason: 'input_required' } } };
    }
    return MODERN_RESULT_FIELDS.some((field) => field in result) ? { result: withoutModernFields(result) } : answer;
  }
  const resultType = typeof result.resultType === 'string' ? result.resultType : 'complete';
  if (!CACHEABLE.has(method) || resultType !== 'complete') return { result: { ...result, resultType } };
  const ttlMs = typeof result.ttlMs === 'number' && Number.isFinite(result.ttlMs) && result.ttlMs >= 0 ? Math.floor(result.ttlMs) : 0;
  const cacheScope = scope === 'private' || result.cacheScope === 'private' ? 'private' : 'public';
  return { result: { ...result, resultType, ttlMs, cacheScope } };
}

/** The HTTP status of an answer: 2026-07-28 clients learn of an unknown method from a 404, as their revision says. */
export function answerStatus(era: ClientEra, answer: JsonRpcAnswer): number {
  return era.modern && 'error' in answer && answer.error.code === ErrorCode.MethodNotFound ? 404 : 200;
}

/** The gate's answer to `server/discover`, from what it tells clients about the server behind it. */
export function discoverResult(server: { capabilities: JsonObject; serverInfo: JsonObject; instructions: string }): JsonObject {
  return {
    resultType: 'complete',
    supportedVersions: [...MODERN_VERSIONS],
    capabilities: server.capabilities,
    instructions: server.instructions,
    _meta: { [META_SERVER_INFO]: server.serverInfo },
    ttlMs: 0,
    cacheScope: 'public',
  };
}
