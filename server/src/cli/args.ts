import fs from 'node:fs';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import shellQuote from 'shell-quote';
import { UserFacingError } from '../errors.ts';
import { loadConfigFile } from '../config/load.ts';
import { DEFAULTS, type ConfigFile, type GateSettings, type IsolationFields, type ServerSpec } from '../config/types.ts';
import type { Isolation } from '../proxy/pool.ts';
import { quotaLimits, type KeyFields } from '../keys/fields.ts';
import type { ToolPolicy } from '../gate/types.ts';

/** A mistake on the command line: one line that names the flag, and exit code 2. */
export class UsageError extends UserFacingError {
  constructor(message: string) {
    super(message, 2);
  }
}

/** The text of a file a command was given; an unreadable one is a one-line error naming it. */
export function readInputFile(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (error) {
    throw new UserFacingError(`cannot read ${file}: ${(error as Error).message}`);
  }
}

export const WRAP_OPTIONS = {
  server: { type: 'string' },
  'remote-url': { type: 'string' },
  config: { type: 'string' },
  port: { type: 'string' },
  host: { type: 'string' },
  price: { type: 'string' },
  'tool-price': { type: 'string', multiple: true },
  'rate-limit': { type: 'string' },
  name: { type: 'string' },
  shadow: { type: 'boolean' },
  'admin-key': { type: 'string' },
  'show-admin-key': { type: 'boolean' },
  'import-key': { type: 'string', multiple: true },
  'state-file': { type: 'string' },
  'no-state': { type: 'boolean' },
  durability: { type: 'string' },
  'redis-url': { type: 'string' },
  'refund-on-failure': { type: 'boolean' },
  'trust-proxy': { type: 'boolean' },
  'allowed-origin': { type: 'string', multiple: true },
  'call-timeout': { type: 'string' },
  'usage-retention-days': { type: 'string' },
  'refused-limit': { type: 'string' },
  'dry-run': { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies ParseArgsConfig['options'];

export type WrapFlags = ReturnType<typeof parseWrapFlags>;

/** Parses flags strictly: an unknown flag, a missing value or a stray argument is a `UsageError`. */
export function parseFlags<Options extends NonNullable<ParseArgsConfig['options']>>(argv: string[], options: Options, positionals = false) {
  try {
    return parseArgs({ args: argv, options, strict: true, allowPositionals: positionals });
  } catch (error) {
    const message = (error as Error).message
      .replace(/^Unknown option '([^']+)'.*$/s, 'unknown flag $1')
      .replace(/^Option '([^' ]+)[^']*' argument missing.*$/s, '$1 needs a value')
      .replace(/^Option '([^' ]+)[^']*' argument is ambiguous.*$/s, '$1 needs a value (for a value that starts with a dash, write $1=VALUE)')
      .replace(/^Unexpected argument '([^']+)'.*$/s, 'unexpected argument "$1"');
    throw new UsageError(message);
  }
}

export function parseWrapFlags(argv: string[]) {
  return parseFlags(argv, WRAP_OPTIONS).values;
}

export function wholeNumber(flag: string, raw: string, min: number, max: number): number {
  const value = Number(raw);
  if (!/^\d+$/.test(raw.trim()) || value < min || value > max) {
    throw new UsageError(`${flag} must be a whole number from ${min} to ${max}, not "${raw}"`);
  }
  return value;
}

/** One of `values`; anything else is a `UsageError` naming the flag and the values it takes. */
export function oneOf<Value extends string>(flag: string, raw: string, values: readonly Value[]): Value {
  if ((values as readonly string[]).includes(raw)) return raw as Value;
  throw new UsageError(`${flag} must be ${values.join(' or ')}, not "${raw}"`);
}

/** `name:n[,name:n]` pairs; the name may itself contain `:` (prefixed tools), the number follows the last one. */
export function namedNumbers(flag: string, raw: readonly string[], example: string): [string, number][] {
  const pairs: [string, number][] = [];
  for (const item of raw.flatMap((value) => value.split(','))) {
    const trimmed = item.trim();
    const colon = trimmed.lastIndexOf(':');
    if (colon <= 0) throw new UsageError(`${flag} takes name:number pairs such as ${example}, not "${trimmed}"`);
    pairs.push([trimmed.slice(0, colon), wholeNumber(flag, trimmed.slice(colon + 1), 0, Number.MAX_SAFE_INTEGER)]);
  }
  return pairs;
}

/** Splits `--server` like a shell would: quotes and escapes respected, `$VAR` expanded, no operators. */
export function parseServerCommand(raw: string): { command: string; args: string[] } {
  const words: string[] = [];
  for (const entry of shellQuote.parse(raw, (name) => process.env[name] ?? '')) {
    if (typeof entry !== 'string') {
      throw new UsageError(`--server must be one command; shell operators and globs are not run (wrap them as --server "sh -c '...'")`);
    }
    words.push(entry);
  }
  const [command, ...args] = words;
  if (!command) throw new UsageError('--server needs a command, such as --server "npx -y @modelcontextprotocol/server-everything"');
  return { command, args };
}

function remoteUrl(flag: string, raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new UsageError(`${flag} must be an http(s) URL such as https://mcp.example.com/mcp, not "${raw}"`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError(`${flag} must be an http(s) URL, not ${url.protocol}`);
  return url.href;
}

/** A stdio server's isolation from its config fields; undefined for the shared default. */
function isolationOf(fields: IsolationFields): { isolation?: Isolation } {
  if (fields.isolation === undefined || fields.isolation === 'shared') return {};
  return {
    isolation: {
      mode: fields.isolation,
      idleTimeoutSec: fields.idleTimeoutSec ?? DEFAULTS.idleTimeoutSec,
      maxProcesses: fields.maxProcesses ?? DEFAULTS.maxProcesses,
    },
  };
}

/**
 * The servers to gate: `--server` or `--remote-url` (which replace the config's), else the config's
 * `serverCommand`, `remoteUrl` or `servers` list. Exactly one of them.
 */
function serversOf(flags: WrapFlags, file: ConfigFile): ServerSpec[] {
  if (flags.server !== undefined && flags['remote-url'] !== undefined) throw new UsageError('give --server or --remote-url, not both');
  if (flags.server !== undefined) return [{ kind: 'stdio', prefix: undefined, ...parseServerCommand(flags.server), env: {}, cwd: undefined, roots: file.roots ?? [], ...isolationOf(file) }];
  if (flags['remote-url'] !== undefined) {
    return [{ kind: 'remote', prefix: undefined, url: remoteUrl('--remote-url', flags['remote-url']), headers: file.remoteHeaders ?? {} }];
  }
  const given = [file.serverCommand !== undefined, file.remoteUrl !== undefined, file.servers !== undefined].filter(Boolean).length;
  if (given === 0) throw new UsageError('give the MCP server to gate: --server "<command>", --remote-url <url>, or serverCommand, remoteUrl or servers in --config');
  if (file.serverCommand !== undefined) {
    return [{ kind: 'stdio', prefix: undefined, command: file.serverCommand, args: file.serverArgs ?? [], env: {}, cwd: undefined, roots: file.roots ?? [], ...isolationOf(file) }];
  }
  if (file.remoteUrl !== undefined) return [{ kind: 'remote', prefix: undefined, url: remoteUrl('remoteUrl', file.remoteUrl), headers: file.remoteHeaders ?? {} }];
  // The config's checks (config/rules.ts) have made sure each entry is one kind of server with its own prefix.
  return file.servers!.map((entry, index) => {
    if (entry.remoteUrl !== undefined) {
      return { kind: 'remote', prefix: entry.prefix, url: remoteUrl(`servers[${index}].remoteUrl`, entry.remoteUrl), headers: entry.headers ?? {} };
    }
    return { kind: 'stdio', prefix: entry.prefix, command: entry.serverCommand!, args: entry.serverArgs ?? [], env: entry.env ?? {}, cwd: entry.cwd, roots: entry.roots ?? [], ...isolationOf(entry) };
  });
}

/** How settings are resolved beyond the flags and the config file. */
export interface ResolveOptions {
  /** Told about config warnings. */
  notes?: (line: string) => void;
  /** Used where neither a flag nor the config gives the value (the editor's settings). */
  defaults?: Partial<Pick<GateSettings, 'host' | 'port' | 'stateFile'>>;
  /** The servers to gate, instead of those of the flags or the config (the editor's workspace servers). */
  servers?: ServerSpec[];
}

function redisOf(flags: WrapFlags, file: ConfigFile): GateSettings['redis'] {
  const url = flags['redis-url'] ?? file.redisUrl;
  if (url === undefined) return undefined;
  if (!/^rediss?:\/\//.test(url)) throw new UsageError(`--redis-url must be a redis:// or rediss:// URL, not "${url}"`);
  if (flags['no-state']) throw new UsageError('--no-state and --redis-url cannot be used together: with Redis, the state lives in Redis');
  return { ...file.redis, url };
}

/** Merges flags over the config file over defaults. */
export function resolveSettings(flags: WrapFlags, options: ResolveOptions = {}): GateSettings {
  let file: ConfigFile = {};
  if (flags.config !== undefined) {
    const loaded = loadConfigFile(flags.config);
    file = loaded.config;
    loaded.notes.forEach(options.notes ?? (() => {}));
  }
  const servers = options.servers ?? serversOf(flags, file);
  const defaults = { ...DEFAULTS, ...options.defaults };
  if (flags['no-state'] && flags['state-file'] !== undefined) throw new UsageError('--no-state and --state-file cannot be used together');

  const toolPricing: Record<string, ToolPolicy> = { ...file.toolPricing };
  for (const [tool, price] of namedNumbers('--tool-price', flags['tool-price'] ?? [], 'search:5,generate:10')) {
    toolPricing[tool] = { ...toolPricing[tool], creditsPerCall: price };
  }
  const importKeys: Record<string, KeyFields> = {};
  for (const [key, entry] of Object.entries(file.importKeys ?? {})) importKeys[key] = typeof entry === 'number' ? { credits: entry } : entry;
  for (const [key, credits] of namedNumbers('--import-key', flags['import-key'] ?? [], 'pg_abc123:100')) importKeys[key] = { credits };

  const trust = flags['trust-proxy'] ? 1 : (file.trustProxy ?? 0);
  if (flags['admin-key'] !== undefined && flags['admin-key'].length < 16) {
    throw new UsageError('--admin-key must be at least 16 characters: it guards the admin API');
  }
  return {
    name: flags.name ?? file.name,
    servers,
    host: flags.host ?? file.host ?? defaults.host,
    port: flags.port === undefined ? (file.port ?? defaults.port) : wholeNumber('--port', flags.port, 0, 65535),
    defaultCreditsPerCall:
      flags.price === undefined ? (file.defaultCreditsPerCall ?? DEFAULTS.defaultCreditsPerCall) : wholeNumber('--price', flags.price, 0, Number.MAX_SAFE_INTEGER),
    toolPricing,
    globalRateLimitPerMin:
      flags['rate-limit'] === undefined
        ? (file.globalRateLimitPerMin ?? DEFAULTS.globalRateLimitPerMin)
        : wholeNumber('--rate-limit', flags['rate-limit'], 0, 1_000_000),
    globalQuota: quotaLimits(file.globalQuota),
    shadowMode: flags.shadow ?? file.shadowMode ?? false,
    refundOnFailure: flags['refund-on-failure'] ?? file.refundOnFailure ?? false,
    adminKey: flags['admin-key'] ?? file.adminKey,
    stateFile: flags['no-state'] ? ':memory:' : (flags['state-file'] ?? file.stateFile ?? defaults.stateFile),
    durability: flags.durability === undefined ? (file.durability ?? DEFAULTS.durability) : oneOf('--durability', flags.durability, ['process', 'power']),
    importKeys,
    trustedProxies: trust === true ? 1 : trust === false ? 0 : trust,
    allowedOrigins: [...(file.allowedOrigins ?? []), ...(flags['allowed-origin'] ?? [])],
    callTimeoutMs:
      flags['call-timeout'] === undefined ? (file.callTimeoutMs ?? DEFAULTS.callTimeoutMs) : wholeNumber('--call-timeout', flags['call-timeout'], 0, 86_400_000),
    maxBodyBytes: file.maxBodyBytes ?? DEFAULTS.maxBodyBytes,
    maxBatchSize: file.maxBatchSize ?? DEFAULTS.maxBatchSize,
    batchConcurrency: file.batchConcurrency ?? DEFAULTS.batchConcurrency,
    usageRetentionDays:
      flags['usage-retention-days'] === undefined
        ? (file.usageRetentionDays ?? DEFAULTS.usageRetentionDays)
        : wholeNumber('--usage-retention-days', flags['usage-retention-days'], 0, 36_500),
    refusedRequestLimitPerMin:
      flags['refused-limit'] === undefined
        ? (file.refusedRequestLimitPerMin ?? DEFAULTS.refusedRequestLimitPerMin)
        : wholeNumber('--refused-limit', flags['refused-limit'], 0, 1_000_000),
    redis: redisOf(flags, file),
  };
}
