import { isObject, type JsonObject } from './jsonrpc.ts';

/**
 * MCP's two protocol eras. Legacy revisions (2025-11-25 and earlier) open with `initialize` and keep
 * per-connection state; modern ones (2026-07-28) send no handshake: every request carries its
 * protocol version and the client's capabilities in `_meta`. A request is translated here for the
 * era of the server it goes to; answers are shaped for the client's era in `http/era.ts`.
 */

/** Revisions that carry the per-request `_meta` envelope, newest first. */
export const MODERN_VERSIONS: readonly string[] = ['2026-07-28'];
export const LATEST_MODERN_VERSION = MODERN_VERSIONS[0]!;

/** The `_meta` keys of the modern per-request envelope. */
export const META_PROTOCOL_VERSION = 'io.modelcontextprotocol/protocolVersion';
export const META_CLIENT_CAPABILITIES = 'io.modelcontextprotocol/clientCapabilities';
export const META_CLIENT_INFO = 'io.modelcontextprotocol/clientInfo';
export const META_LOG_LEVEL = 'io.modelcontextprotocol/logLevel';
export const META_SERVER_INFO = 'io.modelcontextprotocol/serverInfo';

const ENVELOPE_KEYS = [META_PROTOCOL_VERSION, META_CLIENT_CAPABILITIES, META_CLIENT_INFO, META_LOG_LEVEL];

/** Client notifications that modern servers no longer take (they have no handshake and no roots notification). */
const LEGACY_ONLY_NOTIFICATIONS = new Set(['notifications/initialized', 'notifications/roots/list_changed']);

export function isModernVersion(version: unknown): boolean {
  return typeof version === 'string' && MODERN_VERSIONS.includes(version);
}

/** The protocol version a request's `_meta` names, if it carries the modern envelope. */
export function envelopeVersion(params: JsonObject | undefined): unknown {
  const meta = params?._meta;
  return isObject(meta) ? meta[META_PROTOCOL_VERSION] : undefined;
}

/**
 * A client request's params as a server of the given era takes them. A modern server gets the
 * envelope: the client's own when it sent one (its capabilities decide what the server may ask it
 * for), else the gate's, declaring the capabilities `withAnswerableCapabilities` put in `_meta`, or
 * none. A legacy server gets the params without
 * the envelope, which handshake-era servers may refuse.
 */
export function paramsForServer(modernServer: boolean, params: JsonObject | undefined, clientInfo: JsonObject): JsonObject | undefined {
  const enveloped = envelopeVersion(params) !== undefined;
  if (modernServer === enveloped) return params;
  const meta = isObject(params?._meta) ? params._meta : {};
  if (modernServer) {
    const capabilities = isObject(meta[META_CLIENT_CAPABILITIES]) ? meta[META_CLIENT_CAPABILITIES] : {};
    return { ...params, _meta: { ...meta, [META_PROTOCOL_VERSION]: LATEST_MODERN_VERSION, [META_CLIENT_INFO]: clientInfo, [META_CLIENT_CAPABILITIES]: capabilities } };
  }
  const legacyMeta: JsonObject = {};
  for (const [key, value] of Object.entries(meta)) if (!ENVELOPE_KEYS.includes(key)) legacyMeta[key] = value;
  const { _meta: _envelope, ...rest } = params!;
  return Object.keys(legacyMeta).length > 0 ? { ...rest, _meta: legacyMeta } : rest;
}

/** What a 2025 client can be asked through the gate by a 2026-07-28 server's `input_required` (see `engine/eraBridge.ts`). */
const ANSWERABLE_CAPABILITIES = ['elicitation', 'sampling'];

/**
 * A 2025 client's request params for a 2026-07-28 server, declaring the capabilities of its session
 * the gate can ask it for on the server's behalf; the params unchanged when it declared none of them.
 */
export function withAnswerableCapabilities(params: JsonObject | undefined, declared: JsonObject): JsonObject | undefined {
  const capabilities: JsonObject = {};
  for (const name of ANSWERABLE_CAPABILITIES) if (isObject(declared[name])) capabilities[name] = declared[name];
  if (Object.keys(capabilities).length === 0) return params;
  const meta = isObject(params?._meta) ? params._meta : {};
  return { ...params, _meta: { ...meta, [META_CLIENT_CAPABILITIES]: capabilities } };
}

/** Whether a client notification means anything to a server of the given era. */
export function notificationForServer(modernServer: boolean, method: string): boolean {
  return !modernServer || !LEGACY_ONLY_NOTIFICATIONS.has(method);
}
