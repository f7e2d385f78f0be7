import type { Cluster, Redis } from 'ioredis';
import { ADMIT } from './lua/admit.ts';
import { REFUSAL, TRIM_EVENTS } from './lua/events.ts';
import { FIND_KEY, INSERT_KEYS, UPDATE_KEY } from './lua/keys.ts';
import { LEASE } from './lua/lease.ts';
import { SETTLE } from './lua/settle.ts';

export type RedisClient = Redis | Cluster;

/** Script arguments are strings; replies are checked where they are read. */
type Script = (...argv: string[]) => Promise<unknown>;

/** The ledger's Lua scripts (lua/), each called with the prefix's hash tag as its one key. */
export interface LedgerScripts {
  admit: Script;
  settle: Script;
  lease: Script;
  refusal: Script;
  trimEvents: Script;
  findKey: Script;
  insertKeys: Script;
  updateKey: Script;
}

const SOURCES: Record<keyof LedgerScripts, string> = {
  admit: ADMIT,
  settle: SETTLE,
  lease: LEASE,
  refusal: REFUSAL,
  trimEvents: TRIM_EVENTS,
  findKey: FIND_KEY,
  insertKeys: INSERT_KEYS,
  updateKey: UPDATE_KEY,
};

/**
 * Defines the scripts on `client` (ioredis sends each by EVALSHA, and by EVAL the first time on a
 * connection or after NOSCRIPT) and binds them to the hash tag `tag`.
 */
export function defineScripts(client: RedisClient, tag: string): LedgerScripts {
  const commands = client as unknown as Record<string, (key: string, ...argv: string[]) => Promise<unknown>>;
  const scripts = {} as LedgerScripts;
  for (const [name, lua] of Object.entries(SOURCES) as [keyof LedgerScripts, string][]) {
    const command = `paygate_${name}`;
    client.defineCommand(command, { lua, numberOfKeys: 1 });
    scripts[name] = (...argv) => commands[command]!(tag, ...argv);
  }
  return scripts;
}
