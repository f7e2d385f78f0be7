import fs from 'node:fs';
import path from 'node:path';
import { UserFacingError } from '../../errors.ts';
import type { KeyRecord } from '../../gate/types.ts';
import { openStateFile } from '../open.ts';
import { EVENTS_DELETED_THROUGH, type SqliteStore } from '../sqlite.ts';
import type { ToolStats, UsageEvent } from '../types.ts';
import { entryId, eventFields, recordFields } from './codec.ts';
import { connectRedis, DEFAULT_KEY_PREFIX, type RedisLedgerOptions } from './connection.ts';
import { KeySpace } from './keySpace.ts';
import { RedisReports } from './reports.ts';
import { defineScripts, type RedisClient } from './scripts.ts';

/** What a migration copied. */
export interface TransferSummary {
  keys: number;
  events: number;
}

export type RedisTarget = Pick<RedisLedgerOptions, 'url' | 'ioredis' | 'keyPrefix' | 'commandTimeoutMs'>;

/** A migration that cannot be done as asked; nothing was written. */
export class TransferError extends UserFacingError {}

const KEYS_PER_STEP = 500;
const EVENTS_PER_STEP = 1000;
const MINUTE_MS = 60_000;

async function withRedis<T>(target: RedisTarget, work: (client: RedisClient, location: string) => Promise<T>): Promise<T> {
  let connected: Awaited<ReturnType<typeof connectRedis>>;
  try {
    connected = await connectRedis(target);
  } catch (error) {
    throw new TransferError((error as Error).message);
  }
  const { client, location } = connected;
  try {
    return await work(client, location);
  } finally {
    await client.quit().catch(() => client.disconnect());
  }
}

/** Whether the prefix holds any ledger state (all of it lives in one slot, so this works on Cluster too). */
async function prefixInUse(client: RedisClient, keys: KeySpace): Promise<boolean> {
  return (await client.exists(keys.keySequence, keys.eventSequence, keys.keys, keys.usage, keys.toolStats, keys.namespaces, keys.instances)) > 0;
}

/**
 * Copies a SQLite state (keys with their ids and balances, usage events with their ids, tool stats,
 * deny reason counts) into a Redis prefix that holds nothing yet. Refuses a prefix in use (merging
 * two ledgers would mix ids) and a state with calls in flight or journal lines not applied yet:
 * starting and stopping the gate once on that file settles both.
 */
export async function importStateToRedis(stateFile: string, target: RedisTarget): Promise<TransferSummary> {
  if (!fs.existsSync(stateFile)) throw new TransferError(`the state file ${stateFile} does not exist`);
  const state = openStateFile(stateFile);
  try {
    const { store } = state;
    if (state.recovered.length > 0 || store.keysWithCallsInFlight().length > 0) {
      throw new TransferError(
        `the state file ${stateFile} has calls in flight or charges not applied yet (a gate stopped without settling them): start the gate on it once and stop it, then import again`,
      );
    }
    const keys = new KeySpace(target.keyPrefix ?? DEFAULT_KEY_PREFIX);
    return await withRedis(target, async (client, location) => {
      if (await prefixInUse(client, keys)) {
        throw new TransferError(`Redis at ${location} already holds PayGate state under the prefix ${keys.tag}: import into an empty prefix (another --key-prefix, or delete those keys first)`);
      }
      const keyCount = await copyKeys(store, client, keys);
      const events = await copyEvents(store, client, keys);
      await copyCounts(store, client, keys);
      return { keys: keyCount, events };
    });
  } finally {
    state.journal?.close();
    state.store.close();
  }
}

async function copyKeys(store: SqliteStore, client: RedisClient, keys: KeySpace): Promise<number> {
  const scripts = defineScripts(client, keys.tag);
  let copied = 0;
  for (let offset = 0; ; offset += KEYS_PER_STEP) {
    const page = store.listKeys({ limit: KEYS_PER_STEP, offset });
    if (page.length === 0) return copied;
    const reply = (await scripts.insertKeys('restore', ...page.map((record) => JSON.stringify({ ...recordFields(record), id: String(record.id) })))) as string[];
    if (reply[0] !== 'ok') throw new TransferError(`the key ${reply[1]} is already stored in Redis`);
    copied += page.length;
  }
}

async function copyEvents(store: SqliteStore, client: RedisClient, keys: KeySpace): Promise<number> {
  let copied = 0;
  let afterId = 0;
  let minute: number | undefined;
  let lastAt = 0;
  for (;;) {
    const page = store.usage({ afterId, limit: EVENTS_PER_STEP });
    if (page.length === 0) break;
    const writes: Promise<unknown>[] = [];
    for (const event of page) {
      const eventMinute = Math.floor(event.at / MINUTE_MS);
      if (eventMinute !== minute) writes.push(client.zadd(keys.eventMinutes, eventMinute, String(event.id)));
      minute = eventMinute;
      lastAt = Math.max(lastAt, event.at);
      const { id, ...fields } = event;
      writes.push(client.xadd(keys.usage, entryId(id), ...eventFields(fields)));
    }
    await Promise.all(writes);
    copied += page.length;
    afterId = page.at(-1)!.id;
  }
  // Ids of deleted events are not given out again.
  await client.set(keys.eventSequence, String(Math.max(store.nextEventId() - 1, afterId)));
  if (minute !== undefined) await client.hset(keys.eventClock, 'at', String(lastAt), 'minute', String(minute));
  return copied;
}

async function copyCounts(store: SqliteStore, client: RedisClient, keys: KeySpace): Promise<void> {
  const stats = store.toolStats();
  const fields: string[] = [];
  for (const [row, { calls, credits, denied }] of stats) fields.push(`calls:${row}`, String(calls), `credits:${row}`, String(credits), `denied:${row}`, String(denied));
  if (fields.length > 0) await client.hset(keys.toolStats, ...fields);
  const denials = [...store.denyReasons()].flatMap(([reason, count]) => [reason, String(count)]);
  if (denials.length > 0) await client.hset(keys.denyReasons(), ...denials);
  for (const { namespace } of store.namespaces()) {
    const inNamespace = [...store.denyReasons(namespace)].flatMap(([reason, count]) => [reason, String(count)]);
    if (inNamespace.length > 0) await client.hset(keys.denyReasons(namespace), ...inNamespace);
  }
}

/**
 * Copies the state under a Redis prefix into a new SQLite state file: keys with their ids and
 * balances, usage events with their ids, tool stats (deny reason counts are rebuilt from the events
 * copied). Refuses an existing file, and a prefix with calls in flight (stop the gates first, and
 * wait a lease for any that died).
 */
export async function exportRedisToState(target: RedisTarget, stateFile: string): Promise<TransferSummary> {
  if (fs.existsSync(stateFile) && fs.statSync(stateFile).size > 0) {
    throw new TransferError(`the state file ${stateFile} exists already: export into a new file`);
  }
  const keys = new KeySpace(target.keyPrefix ?? DEFAULT_KEY_PREFIX);
  return withRedis(target, async (client, location) => {
    const scripts = defineScripts(client, keys.tag);
    const reports = new RedisReports(client, keys, scripts, (command) => command);
    const ids = await client.zrange(keys.keys, '0', '-1');
    const inflight = await Promise.all(ids.map((id) => client.hget(keys.key(Number(id)), 'inflightCalls')));
    if (inflight.some((calls) => Number(calls ?? 0) !== 0)) {
      throw new TransferError(`Redis at ${location} has calls in flight under ${keys.tag}: stop the gates (and wait one lease for any that died), then export again`);
    }
    fs.mkdirSync(path.dirname(path.resolve(stateFile)), { recursive: true });
    const state = openStateFile(stateFile);
    try {
      const { store } = state;
      let keyCount = 0;
      for (let offset = 0; ; offset += KEYS_PER_STEP) {
        const page: KeyRecord[] = await reports.listKeys({ limit: KEYS_PER_STEP, offset });
        if (page.length === 0) break;
        store.transaction(() => page.forEach((record) => store.restoreKey(record)));
        keyCount += page.length;
      }
      let events = 0;
      let afterId = 0;
      for (;;) {
        const page: UsageEvent[] = await reports.usage({ afterId, limit: EVENTS_PER_STEP });
        if (page.length === 0) break;
        store.commit({ balances: [], inserts: page });
        events += page.length;
        afterId = page.at(-1)!.id;
      }
      const sequence = Number((await client.get(keys.eventSequence)) ?? 0);
      const stats: Record<string, ToolStats> = Object.fromEntries(await reports.toolStats());
      store.transaction(() => {
        store.commit({ balances: [], inserts: [], toolStats: { stats, throughEventId: sequence } });
        if (sequence > afterId) store.setMeta(EVENTS_DELETED_THROUGH, String(sequence));
      });
      return { keys: keyCount, events };
    } finally {
      state.journal?.close();
      state.store.close();
    }
  });
}
