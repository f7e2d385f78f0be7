import fs from 'node:fs';
import type { RedisSettings } from '../../config/types.ts';
import { UserFacingError } from '../../errors.ts';
import type { RedisConnectionOptions, RedisLedgerOptions } from './connection.ts';

/** How to reach Redis as the config (`redisUrl` and the `redis` block) or the flags say, in ioredis's terms. */
export function redisLedgerOptions(redis: RedisSettings): RedisLedgerOptions {
  const connection: RedisConnectionOptions = {};
  if (redis.sentinels) {
    Object.assign(connection, {
      sentinels: redis.sentinels,
      name: redis.sentinelName,
      ...(redis.sentinelUsername === undefined ? {} : { sentinelUsername: redis.sentinelUsername }),
      ...(redis.sentinelPassword === undefined ? {} : { sentinelPassword: redis.sentinelPassword }),
      ...(redis.sentinelTls ? { enableTLSForSentinelMode: true } : {}),
    });
  }
  if (redis.clusterNodes) connection.cluster = redis.clusterNodes;
  if (redis.tls) {
    const { caFile, servername } = redis.tls;
    connection.tls = { ...(caFile === undefined ? {} : { ca: readCaFile(caFile) }), ...(servername === undefined ? {} : { servername }) };
  }
  return {
    url: redis.url,
    ioredis: connection,
    ...(redis.keyPrefix === undefined ? {} : { keyPrefix: redis.keyPrefix }),
    ...(redis.leaseMs === undefined ? {} : { leaseMs: redis.leaseMs }),
    ...(redis.commandTimeoutMs === undefined ? {} : { commandTimeoutMs: redis.commandTimeoutMs }),
  };
}

function readCaFile(file: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (error) {
    throw new UserFacingError(`cannot read the Redis TLS CA file ${file}: ${(error as Error).message}`);
  }
}
