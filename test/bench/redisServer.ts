import { RedisServer } from '../helpers/redis.ts';

/** A redis-server a benchmark started for itself, on a free loopback port with its own directory. */
export interface BenchRedis {
  port: number;
  pid: number;
  /** `redis://127.0.0.1:<port>/<db>`. */
  url(db?: number): string;
  /** Stops it by its PID; its directory is removed. */
  stop(): Promise<void>;
}

/**
 * Starts `redis-server` (the tests' helper) with an append-only file synced every second, Redis's
 * default AOF policy: a crash of the machine loses at most about a second, a crash of Redis alone nothing.
 */
export async function startBenchRedis(extraArgs: readonly string[] = []): Promise<BenchRedis> {
  const server = await RedisServer.start({ args: ['--appendonly', 'yes', '--appendfsync', 'everysec', ...extraArgs] });
  return { port: server.port, pid: server.pid!, url: (db = 0) => `${server.url}/${db}`, stop: () => server.stop() };
}
