import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { Cluster, Redis, type ClusterNode, type RedisOptions } from 'ioredis';
import { LedgerUnavailableError } from '../contract.ts';
import { KeySpace } from './keySpace.ts';
import { RedisLedger } from './ledger.ts';
import type { RedisClient } from './scripts.ts';

/**
 * ioredis's own options, as plain data from the configuration: TLS, username and password, db,
 * Sentinel (`sentinels` and `name`), and `cluster`: the start-up nodes of a Redis Cluster.
 */
export type RedisConnectionOptions = RedisOptions & { cluster?: { host?: string; port?: number }[] };

export interface RedisLedgerOptions {
  /** `redis://[user:password@]host:port[/db]`, or `rediss://` for TLS. */
  url: string;
  ioredis?: RedisConnectionOptions;
  /** Every key is `{prefix}:…` (default `paygate`): gates sharing a prefix share their state. */
  keyPrefix?: string;
  /** Unique per gate process (default: host, pid and a random part). */
  instanceId?: string;
  /** How long an instance's calls stay reserved after its last heartbeat (default 15 s). */
  leaseMs?: number;
  /** A command not answered in this time fails, and the call is refused (default 2 s). */
  commandTimeoutMs?: number;
  keyCacheSize?: number;
}

export const DEFAULT_KEY_PREFIX = 'paygate';
export const DEFAULT_LEASE_MS = 15_000;
export const DEFAULT_COMMAND_TIMEOUT_MS = 2_000;

/** The address of the Redis named by `url` and `options`, without any password. */
export function redisLocation(url: string, options: RedisConnectionOptions = {}): string {
  if (options.cluster?.length) return `Redis Cluster ${options.cluster.map((node) => `${node.host ?? '127.0.0.1'}:${node.port ?? 6379}`).join(',')}`;
  if (options.sentinels?.length) {
    return `Redis Sentinel master "${options.name ?? 'mymaster'}" via ${options.sentinels.map((s) => `${s.host ?? '127.0.0.1'}:${s.port ?? 26379}`).join(',')}`;
  }
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '';
    return parsed.toString();
  } catch {
    return '(an invalid Redis URL)';
  }
}

function parseUrl(url: string): URL {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error(`the Redis URL "${redisLocation(url)}" is not a URL: write redis://host:port, rediss://host:port for TLS`);
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') {
    throw new Error(`the Redis URL ${redisLocation(url)} must start with redis:// or rediss:// (TLS)`);
  }
  return parsed;
}

/** What the ledger needs of any connection, whatever the configuration says. */
function ledgerOptions(commandTimeoutMs: number): RedisOptions {
  return {
    // Calls of one event-loop turn share a round trip.
    enableAutoPipelining: true,
    // While disconnected, commands fail at once (calls are refused) instead of waiting.
    enableOfflineQueue: false,
    // A command sent before a disconnection may have run: it is never sent twice (the ledger repairs it).
    autoResendUnfulfilledCommands: false,
    maxRetriesPerRequest: 0,
    commandTimeout: commandTimeoutMs,
    connectTimeout: connectTimeoutMs(commandTimeoutMs),
    lazyConnect: true,
  };
}

function connectTimeoutMs(commandTimeoutMs: number): number {
  return Math.max(commandTimeoutMs, 5_000);
}

function createClient(url: URL, options: RedisConnectionOptions, commandTimeoutMs: number): RedisClient {
  const { cluster, ...rest } = options;
  const required = ledgerOptions(commandTimeoutMs);
  if (cluster?.length) {
    const fromUrl: RedisOptions = {
      ...(url.username ? { username: decodeURIComponent(url.username) } : {}),
      ...(url.password ? { password: decodeURIComponent(url.password) } : {}),
      ...(url.protocol === 'rediss:' ? { tls: {} } : {}),
    };
    const { enableOfflineQueue, enableAutoPipelining, lazyConnect, ...perNode } = required;
    return new Cluster(cluster as ClusterNode[], {
      enableOfflineQueue,
      enableAutoPipelining,
      lazyConnect,
      redisOptions: { ...fromUrl, ...rest, ...perNode },
    });
  }
  // Through Sentinel, a switch of master drops the connection at once: the old master may accept
  // writes until the sentinels demote it, and those are lost when it resyncs from the new one.
  const sentinel: RedisOptions = rest.sentinels?.length ? { failoverDetector: true } : {};
  return new Redis(url.toString(), { ...rest, ...sentinel, ...required });
}

/**
 * Connects, or gives up after `timeoutMs` (ioredis would retry a Sentinel or Cluster for ever). The
 * error names the cause ioredis reported (a refused password, an untrusted certificate, an unknown
 * master) rather than the "Connection is closed." its `connect` rejects with.
 */
async function connect(client: RedisClient, location: string, timeoutMs: number): Promise<void> {
  let cause: Error | undefined;
  const remember = (error: Error) => (cause = error);
  client.on('error', remember);
  const timedOut = new Error(`no connection within ${timeoutMs} ms`);
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(timedOut), timeoutMs);
  });
  try {
    await Promise.race([client.connect(), deadline]);
  } catch (error) {
    client.disconnect();
    const reason = error === timedOut ? `${timedOut.message}${cause ? `; last error: ${cause.message}` : ''}` : (cause ?? (error as Error)).message;
    throw new LedgerUnavailableError(`cannot connect to Redis at ${location}: ${reason}`);
  } finally {
    clearTimeout(timer);
    client.off('error', remember);
  }
}

/** One connection for tools that read or write a prefix directly (migration); the caller quits it. */
export async function connectRedis(options: Pick<RedisLedgerOptions, 'url' | 'ioredis' | 'commandTimeoutMs'>): Promise<{ client: RedisClient; location: string }> {
  const connection = options.ioredis ?? {};
  const location = redisLocation(options.url, connection);
  const commandTimeoutMs = options.commandTimeoutMs ?? 30_000;
  const client = createClient(parseUrl(options.url), connection, commandTimeoutMs);
  client.on('error', () => {});
  await connect(client, location, connectTimeoutMs(commandTimeoutMs));
  return { client, location };
}

/**
 * Connects to Redis (a second connection listens for admin changes), defines the ledger's scripts
 * and takes this instance's lease. Rejects with `LedgerUnavailableError`, naming the address, if
 * Redis cannot be reached now; once open, the ledger reconnects by itself.
 */
export async function openRedisLedger(options: RedisLedgerOptions): Promise<RedisLedger> {
  const url = parseUrl(options.url);
  const connection = options.ioredis ?? {};
  const location = redisLocation(options.url, connection);
  const keys = new KeySpace(options.keyPrefix ?? DEFAULT_KEY_PREFIX);
  const leaseMs = options.leaseMs ?? DEFAULT_LEASE_MS;
  if (!(leaseMs >= 100)) throw new Error(`the Redis lease must be at least 100 ms (it is ${leaseMs})`);
  const commandTimeoutMs = options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
  const client = createClient(url, connection, commandTimeoutMs);
  // Until the ledger listens, connection errors are reported by `connect`, not printed by ioredis.
  const quiet = () => {};
  client.on('error', quiet);
  await connect(client, location, connectTimeoutMs(commandTimeoutMs));
  const subscriber: RedisClient = client instanceof Cluster ? client.duplicate() : client.duplicate();
  subscriber.on('error', quiet);
  try {
    await connect(subscriber, location, connectTimeoutMs(commandTimeoutMs));
  } catch (error) {
    client.disconnect();
    throw error;
  }
  const ledger = new RedisLedger({
    client,
    subscriber,
    keys,
    instanceId: options.instanceId ?? `${os.hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`,
    leaseMs,
    location,
    ...(options.keyCacheSize === undefined ? {} : { keyCacheSize: options.keyCacheSize }),
  });
  client.off('error', quiet);
  subscriber.off('error', quiet);
  try {
    await ledger.start();
  } catch (error) {
    await ledger.close();
    throw new LedgerUnavailableError(`Redis at ${location} could not start the ledger: ${(error as Error).message}`);
  }
  return ledger;
}
