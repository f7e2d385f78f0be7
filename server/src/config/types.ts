import type { QuotaLimits, ToolPolicy } from '../gate/types.ts';
import type { KeyFields } from '../keys/fields.ts';
import type { ServerSpec } from '../proxy/connect.ts';
import type { Root } from '../proxy/roots.ts';
import type { Durability } from '../store/types.ts';

export type { ServerSpec };

/** How a stdio server's processes are shared by the gate's clients (config fields of a server). */
export interface IsolationFields {
  isolation?: 'shared' | 'key' | 'session';
  idleTimeoutSec?: number;
  maxProcesses?: number;
}

/** One entry of the config's `servers` list: a stdio command or a remote URL, under a prefix. */
export interface ServerEntry extends IsolationFields {
  prefix: string;
  serverCommand?: string;
  serverArgs?: string[];
  env?: Record<string, string>;
  cwd?: string;
  /** The roots the gate gives this server in its clients' stead (stdio only). */
  roots?: Root[];
  remoteUrl?: string;
  headers?: Record<string, string>;
}

/** The config file's fields (schemas/paygate.schema.json), as written. */
export interface ConfigFile extends IsolationFields {
  serverCommand?: string;
  serverArgs?: string[];
  /** The roots of the one stdio server (serverCommand or --server). */
  roots?: Root[];
  remoteUrl?: string;
  remoteHeaders?: Record<string, string>;
  servers?: ServerEntry[];
  name?: string;
  host?: string;
  port?: number;
  defaultCreditsPerCall?: number;
  toolPricing?: Record<string, ToolPolicy>;
  globalRateLimitPerMin?: number;
  globalQuota?: Partial<QuotaLimits>;
  shadowMode?: boolean;
  refundOnFailure?: boolean;
  adminKey?: string;
  stateFile?: string;
  durability?: Durability;
  importKeys?: Record<string, number | ImportKeyEntry>;
  trustProxy?: boolean | number;
  allowedOrigins?: string[];
  callTimeoutMs?: number;
  maxBodyBytes?: number;
  maxBatchSize?: number;
  batchConcurrency?: number;
  usageRetentionDays?: number;
  refusedRequestLimitPerMin?: number;
  webhookUrl?: string;
  webhookSecret?: string;
  webhookMaxRetries?: number;
  alertRules?: { type: string; threshold: number; cooldownSeconds?: number }[];
  teams?: { name: string; budget?: number; quota?: Partial<QuotaLimits>; tags?: Record<string, string> }[];
  oauth?: { issuer?: string; accessTokenTtl?: number; refreshTokenTtl?: number; scopes?: string[] };
  redisUrl?: string;
  redis?: RedisOptions;
  stripeWebhookSecret?: string;
}

/** How to reach Redis beyond its URL, and how gates share it (config `redis`, beside 2.9.0's `redisUrl`). */
export interface RedisOptions {
  /** Every Redis key of this gate starts with `{keyPrefix}:` (one hash slot); gates sharing a ledger use the same one. */
  keyPrefix?: string;
  /** How long an instance's reservations outlive its last heartbeat before another instance refunds them. */
  leaseMs?: number;
  /** How long a Redis command may take before the call is refused (and, if it ran after all, undone). */
  commandTimeoutMs?: number;
  /** Redis Sentinel: the sentinels and the name of the monitored master; the URL then gives only credentials, db and TLS. */
  sentinels?: { host: string; port: number }[];
  sentinelName?: string;
  /** When the sentinels themselves need a user and password (`requirepass` or ACL on the sentinels). */
  sentinelUsername?: string;
  sentinelPassword?: string;
  /** Talk TLS to the sentinels too (with a rediss:// URL, to the master and replicas it always is). */
  sentinelTls?: boolean;
  /** Redis Cluster: the seed nodes; the URL then gives only credentials and TLS. */
  clusterNodes?: { host: string; port: number }[];
  /** For rediss:// URLs: a CA file to trust besides the system's, and the server name to check. */
  tls?: { caFile?: string; servername?: string };
}

/** Where the shared ledger is: the URL (`redisUrl`, `--redis-url`) and the `redis` block. */
export type RedisSettings = RedisOptions & { url: string };

/** A key the config creates if it does not exist yet, with its settings. */
export interface ImportKeyEntry extends Omit<KeyFields, 'expiresIn' | 'expiresAt'> {
  credits: number;
  expiresAt?: string;
}

/** Everything a gate needs to run, after flags, config file and defaults are merged. */
export interface GateSettings {
  name: string | undefined;
  servers: ServerSpec[];
  host: string;
  port: number;
  defaultCreditsPerCall: number;
  toolPricing: Record<string, ToolPolicy>;
  globalRateLimitPerMin: number;
  globalQuota: QuotaLimits | null;
  shadowMode: boolean;
  refundOnFailure: boolean;
  /** Undefined: use the key kept beside the state file, or make one. */
  adminKey: string | undefined;
  /** A file path, or `:memory:` for no persistence. */
  stateFile: string;
  durability: Durability;
  importKeys: Record<string, KeyFields>;
  trustedProxies: number;
  allowedOrigins: string[];
  callTimeoutMs: number;
  maxBodyBytes: number;
  maxBatchSize: number;
  batchConcurrency: number;
  /** Days usage events are kept; 0 keeps everything. */
  usageRetentionDays: number;
  /** Requests on /mcp refused to one address without a valid key, per minute, before it gets 429; 0 = no limit. */
  refusedRequestLimitPerMin: number;
  /** The shared ledger, when state lives in Redis rather than in `stateFile`. */
  redis: RedisSettings | undefined;
}

export const DEFAULTS = {
  host: '127.0.0.1',
  port: 3402,
  defaultCreditsPerCall: 1,
  globalRateLimitPerMin: 60,
  stateFile: '.paygate/state.db',
  durability: 'process',
  callTimeoutMs: 60_000,
  maxBodyBytes: 1024 * 1024,
  maxBatchSize: 100,
  batchConcurrency: 10,
  usageRetentionDays: 0,
  refusedRequestLimitPerMin: 600,
  idleTimeoutSec: 300,
  maxProcesses: 50,
} as const;
