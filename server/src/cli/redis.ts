import { loadConfigFile } from '../config/load.ts';
import { DEFAULTS, type RedisSettings } from '../config/types.ts';
import { parseFlags, UsageError } from './args.ts';

const USAGE = `Usage: paygate-mcp redis import --state-file F --redis-url URL [--key-prefix P] [--config C]
       paygate-mcp redis export --redis-url URL --state-file F [--key-prefix P] [--config C]
  import  copies a gate's SQLite state (keys with their ids and balances, usage events, per-tool
          totals, refusal counts) into Redis, under a key prefix that holds nothing yet
  export  copies a Redis ledger into a new SQLite state file (it must not exist yet)
  Neither runs while a gate uses the source: stop the gates first.
  --state-file  the SQLite state (default ${DEFAULTS.stateFile})
  --redis-url   redis://[user:password@]host:port[/db], or rediss:// for TLS (default: the config's redisUrl)
  --key-prefix  the prefix of the gates' Redis keys (default: the config's redis.keyPrefix, else paygate)
  --config      a paygate.json whose redisUrl and redis block (Sentinel, Cluster, TLS) to use
`;

const OPTIONS = {
  'state-file': { type: 'string' },
  'redis-url': { type: 'string' },
  'key-prefix': { type: 'string' },
  config: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

function redisOf(values: { 'redis-url'?: string; 'key-prefix'?: string; config?: string }): RedisSettings {
  const file = values.config === undefined ? {} : loadConfigFile(values.config).config;
  const url = values['redis-url'] ?? file.redisUrl;
  if (url === undefined) throw new UsageError('name the Redis with --redis-url (or a --config that has redisUrl)');
  const keyPrefix = values['key-prefix'] ?? file.redis?.keyPrefix;
  return { ...file.redis, url, ...(keyPrefix === undefined ? {} : { keyPrefix }) };
}

/** `paygate-mcp redis import|export`: moves a ledger between a SQLite state file and Redis. */
export async function runRedis(argv: string[]): Promise<number> {
  const { values, positionals } = parseFlags(argv, OPTIONS, true);
  const [action, ...rest] = positionals;
  if (values.help || action === undefined) {
    process.stdout.write(USAGE);
    return values.help ? 0 : 2;
  }
  if (action !== 'import' && action !== 'export') throw new UsageError(`unknown redis command "${action}"; the redis commands are: import, export`);
  if (rest.length > 0) throw new UsageError(`unexpected argument "${rest[0]}"`);
  const redis = redisOf(values);
  const stateFile = values['state-file'] ?? DEFAULTS.stateFile;
  const [{ importStateToRedis, exportRedisToState }, { redisLedgerOptions }, { redisLocation }] = await Promise.all([
    import('../store/redis/transfer.ts'),
    import('../store/redis/configured.ts'),
    import('../store/redis/connection.ts'),
  ]);
  const target = redisLedgerOptions(redis);
  const where = `${redisLocation(target.url, target.ioredis)} (key prefix ${target.keyPrefix ?? 'paygate'})`;
  if (action === 'import') {
    const { keys, events } = await importStateToRedis(stateFile, target);
    process.stdout.write(`imported ${keys} key(s) and ${events} usage event(s) from ${stateFile} into ${where}\n`);
  } else {
    const { keys, events } = await exportRedisToState(target, stateFile);
    process.stdout.write(`exported ${keys} key(s) and ${events} usage event(s) from ${where} into ${stateFile}\n`);
  }
  return 0;
}
