import { handshakeParams, identityFrom, type ForwardedRequest, type ServerIdentity } from './backend.ts';
import { LATEST_MODERN_VERSION, META_SERVER_INFO, MODERN_VERSIONS, paramsForServer } from './eras.ts';
import { isObject, type JsonObject, type JsonRpcResponse } from './jsonrpc.ts';

/** The part of a backend's JSON-RPC link the handshake uses. */
export interface HandshakeLink {
  request(method: string, params: JsonObject | undefined, timeoutMs: number): ForwardedRequest;
  notify(method: string, params?: JsonObject): void;
}

/** The modern error a server answers a protocol version it does not speak with. */
const UNSUPPORTED_PROTOCOL_VERSION = -32022;

/** A 2026-07-28 server's identity from its `server/discover` result. */
export function identityFromDiscover(result: JsonObject, label: string): ServerIdentity {
  const meta = isObject(result._meta) ? result._meta : {};
  return {
    protocolVersion: LATEST_MODERN_VERSION,
    capabilities: isObject(result.capabilities) ? result.capabilities : {},
    serverInfo: isObject(meta[META_SERVER_INFO]) ? meta[META_SERVER_INFO] : { name: label, version: '0' },
    ...(typeof result.instructions === 'string' ? { instructions: result.instructions } : {}),
  };
}

/** Why a `server/discover` answer does not make the server one the gate can speak 2026-07-28 with, or undefined if it does. */
function discoverProblem(answer: JsonRpcResponse | Error): string | undefined {
  if (answer instanceof Error) return `server/discover: ${answer.message}`;
  if ('error' in answer) {
    const supported = isObject(answer.error.data) && Array.isArray(answer.error.data.supported) ? answer.error.data.supported : undefined;
    if (answer.error.code === UNSUPPORTED_PROTOCOL_VERSION && supported) return `it speaks only ${supported.join(', ')}`;
    return `server/discover: ${answer.error.message}`;
  }
  const versions = answer.result.supportedVersions;
  if (!Array.isArray(versions)) return 'its server/discover result lists no supportedVersions';
  return versions.some((version) => MODERN_VERSIONS.includes(version as string)) ? undefined : `it speaks only ${versions.join(', ')}`;
}

/**
 * Learns which era the server speaks and who it is. `initialize` comes first, so servers of both eras
 * keep the legacy behaviour they have always had with the gate; a server that refuses it is asked
 * `server/discover`, and one that answers it is spoken to in 2026-07-28 from then on.
 */
export async function handshake(
  link: HandshakeLink,
  clientInfo: { name: string; version: string },
  label: string,
  timeoutMs: number,
  capabilities?: JsonObject,
): Promise<ServerIdentity> {
  const initialized = await link.request('initialize', handshakeParams(clientInfo, capabilities), timeoutMs).response;
  if (!('error' in initialized)) {
    const identity = identityFrom(initialized, label);
    link.notify('notifications/initialized');
    return identity;
  }
  const discovered = await link.request('server/discover', paramsForServer(true, undefined, clientInfo), timeoutMs).response.catch((error: Error) => error);
  const problem = discoverProblem(discovered);
  if (problem === undefined && 'result' in discovered) return identityFromDiscover(discovered.result, label);
  throw new Error(`the MCP server "${label}" refused initialize: ${initialized.error.message} (and as a ${LATEST_MODERN_VERSION} server, ${problem})`);
}
