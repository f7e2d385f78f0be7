import { BATCH_METHOD } from '../engine/batch.ts';
import type { ServerIdentity } from '../proxy/backend.ts';
import { isObject, type JsonObject } from '../proxy/jsonrpc.ts';

const GATE_INSTRUCTIONS = (maxCalls: number) =>
  `Tool calls cost credits: each tool's price is in _meta["paygate/pricing"] of tools/list. ` +
  `Up to ${maxCalls} calls can run as one request with ${BATCH_METHOD} {calls: [{name, arguments}]}: all are admitted or none.`;

/** What the gate tells clients about the server behind it (in `initialize` and `server/discover`). */
export interface AdvertisedServer {
  capabilities: JsonObject;
  serverInfo: JsonObject;
  instructions: string;
}

/** The server's identity as clients see it through the gate: its capabilities plus the gate's batch method, under the configured name. */
export function advertisedServer(identity: ServerIdentity, name: string | undefined, maxBatchSize: number): AdvertisedServer {
  const batch = { method: BATCH_METHOD, maxCalls: maxBatchSize };
  const experimental = isObject(identity.capabilities.experimental) ? identity.capabilities.experimental : {};
  return {
    capabilities: { ...identity.capabilities, experimental: { ...experimental, 'paygate/batch': batch } },
    serverInfo: name === undefined ? identity.serverInfo : { ...identity.serverInfo, name },
    instructions: [identity.instructions, GATE_INSTRUCTIONS(batch.maxCalls)].filter(Boolean).join('\n\n'),
  };
}
