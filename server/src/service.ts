import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { GateSettings } from './config/types.ts';
import { UserFacingError } from './errors.ts';
import { Engine, UNKNOWN_TOOL, type EngineOptions } from './engine/engine.ts';
import { PolicyEngine } from './gate/policyEngine.ts';
import type { Policy } from './gate/types.ts';
import { keyRoutes } from './http/admin/keys.ts';
import { reportRoutes, type GateInfo } from './http/admin/reports.ts';
import { Router } from './http/admin/router.ts';
import { AdminGuard } from './http/credentials.ts';
import { isLoopback } from './http/hostCheck.ts';
import { McpEndpoint } from './http/mcp.ts';
import { RefusedTraffic } from './http/refusals.ts';
import { sendError } from './http/respond.ts';
import { SessionTable } from './http/sessions.ts';
import { ListenerTable, Recipients } from './http/listen.ts';
import { displayPrefix, hashApiKey } from './keys/apiKey.ts';
import { importKeys, parseKeyImport, type ImportedKey } from './keys/import.ts';
import { newKeyRecord } from './keys/fields.ts';
import { describeServer, ServerSet } from './proxy/connect.ts';
import type { Ledger } from './store/contract.ts';
import { SqliteLedger } from './store/sqliteLedger.ts';
import type { RedisConnectionOptions } from './store/redis/connection.ts';
import { markLegacyImported, openLedger, openStateFile, StateFileError } from './store/open.ts';
import { UsageRetention } from './store/retention.ts';
import { VERSION } from './version.ts';

export interface StartOptions {
  settings: GateSettings;
  adminKey: string;
  /** Where the wrapped server's stderr goes. */
  backendStderr?: NodeJS.WritableStream;
  /** Start-up messages (migrations, recoveries). */
  log?: (line: string) => void;
  now?: () => number;
}

export interface RunningGate {
  url: string;
  port: number;
  engine: Engine;
  /**
   * Applies new settings without dropping calls or sessions: prices, limits, ACLs and refunds at
   * once, servers added or removed. Resolves with notes for the log.
   */
  reload(settings: GateSettings): Promise<string[]>;
  /** Records why a changed config was refused (the previous one stays in force), for /health. */
  refuseConfig(problems: string[]): void;
  /** Why the last changed config was refused; empty once one is applied. */
  configProblems(): readonly string[];
  /** The settings in force. */
  settings(): GateSettings;
  close(): Promise<void>;
}

/** The gate could not start: the wrapped server or the port failed. The message says which. */
export class StartError extends UserFacingError {}

const SWEEP_MS = 30_000;
const DRAIN_MS = 10_000;
const SESSION_IDLE_MS = 30 * 60_000;
const MAX_SESSIONS = 10_000;
/** Anyone can open sessions without a key: they get their own, smaller room, so they never push out clients with keys. */
const MAX_KEYLESS_SESSIONS = 1_000;
const MAX_KEYLESS_SESSIONS_PER_ADDRESS = 100;
/** Client addresses whose refused requests are counted; past it, the least recently refused is forgotten. */
const MAX_REFUSING_ADDRESSES = 10_000;
/** How long the gate waits for its servers' tool lists at start and after a reload. */
const LIST_TOOLS_MS = 5_000;
const ADMIN_BODY_BYTES = 1024 * 1024;
/** How long a removed server may finish its calls when calls have no timeout. */
const MAX_DRAIN_MS = 10 * 60_000;

function policyOf(settings: GateSettings): Policy {
  return {
    defaultCreditsPerCall: settings.defaultCreditsPerCall,
    toolPricing: settings.toolPricing,
    globalRateLimitPerMin: settings.globalRateLimitPerMin,
    globalQuota: settings.globalQuota,
    shadowMode: settings.shadowMode,
  };
}

/** Keys named in the config (`importKeys`, `--import-key`) that do not exist yet. */
function configuredKeys(settings: GateSettings, now: number): ImportedKey[] {
  return Object.entries(settings.importKeys).map(([key, fields]) => ({
    key,
    record: newKeyRecord({ name: 'imported', ...fields }, hashApiKey(key), displayPrefix(key), now),
  }));
}

/** The SQLite ledger of `stateFile`, with the keys of a paygate-mcp 2.x JSON state file imported once. */
async function openSqlite(settings: GateSettings, now: number, log: (line: string) => void): Promise<Ledger> {
  const state = openStateFile(settings.stateFile, settings.durability);
  const ledger = new SqliteLedger(openLedger(state));
  try {
    if (state.legacyJsonFile) {
      const parsed = parseKeyImport(fs.readFileSync(state.legacyJsonFile, 'utf8'), now);
      if (parsed.errors.length > 0) {
        throw new StateFileError(`cannot import the paygate-mcp 2.x state file ${state.legacyJsonFile}: ${parsed.errors.slice(0, 5).join('; ')}`);
      }
      // Importing again after a stop in between changes nothing: stored keys are skipped.
      const { imported } = await importKeys(ledger, parsed.keys);
      markLegacyImported(state);
      log(`imported ${imported} key(s) from the paygate-mcp 2.x state file ${state.legacyJsonFile} into ${state.store.location} (the JSON file is left as it was)`);
    }
    return ledger;
  } catch (error) {
    await ledger.close();
    throw error;
  }
}

/** The Redis ledger shared by every gate on the same URL and key prefix. Loaded only when asked for. */
async function openRedis(redis: NonNullable<GateSettings['redis']>): Promise<Ledger> {
  const { openRedisLedger } = await import('./store/redis/connection.ts');
  const connection: RedisConnectionOptions = {};
  if (redis.sentinels) Object.assign(connection, { sentinels: redis.sentinels, name: redis.sentinelName });
  if (redis.clusterNodes) connection.cluster = redis.clusterNodes;
  if (redis.tls) {
    const { caFile, servername } = redis.tls;
    connection.tls = { ...(caFile === undefined ? {} : { ca: readTlsFile(caFile) }), ...(servername === undefined ? {} : { servername }) };
  }
  try {
    return await openRedisLedger({
      url: redis.url,
      ioredis: connection,
      ...(redis.keyPrefix === undefined ? {} : { keyPrefix: redis.keyPrefix }),
      ...(redis.leaseMs === undefined ? {} : { leaseMs: redis.leaseMs }),
      ...(redis.commandTimeoutMs === undefined ? {} : { commandTimeoutMs: redis.commandTimeoutMs }),
    });
  } catch (error) {
    throw new StartError((error as Error).message);
  }
}

function readTlsFile(file: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (error) {
    throw new StartError(`cannot read the Redis TLS CA file ${file}: ${(error as Error).message}`);
  }
}

/** Opens the state (Redis or SQLite), refunds what stopped gates left in flight, and imports the keys it should hold. */
async function prepareLedger(settings: GateSettings, now: number, log: (line: string) => void): Promise<Ledger> {
  const ledger = settings.redis ? await openRedis(settings.redis) : await openSqlite(settings, now, log);
  try {
    const recovered = await ledger.recoverInterrupted(now);
    if (recovered > 0) log(`refunded ${recovered} call(s) that were admitted but never answered by a gate that stopped`);
    await importKeys(ledger, configuredKeys(settings, now));
    return ledger;
  } catch (error) {
    await ledger.close();
    throw error;
  }
}

function engineOptionsOf(settings: GateSettings): Omit<EngineOptions, 'now'> {
  return {
    refundOnFailure: settings.refundOnFailure,
    callTimeoutMs: settings.callTimeoutMs,
    maxBatchSize: settings.maxBatchSize,
    batchConcurrency: settings.batchConcurrency,
  };
}

/** Settings that only take effect at start-up; a reload that changes them says so. */
const FIXED_AT_START = ['host', 'port', 'stateFile', 'durability', 'redis', 'adminKey', 'trustedProxies', 'allowedOrigins', 'maxBodyBytes', 'name'] as const;

function listen(server: http.Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

/** Learns the servers' tools, so that per-tool stats know them from the first call; a server that cannot list them is noted. */
async function learnTools(engine: Engine, note: (line: string) => void): Promise<void> {
  try {
    await engine.learnTools(LIST_TOOLS_MS);
  } catch (error) {
    note(`${(error as Error).message}: calls of its tools are counted under ${UNKNOWN_TOOL} in the per-tool stats until a client lists them`);
  }
}

/** Opens the state, starts the wrapped server and serves `/mcp` and the admin API. */
export async function startGate(options: StartOptions): Promise<RunningGate> {
  const { settings } = options;
  const now = options.now ?? Date.now;
  const log = options.log ?? (() => {});
  const startedAt = now();
  const ledger = await prepareLedger(settings, startedAt, log);

  const policyEngine = new PolicyEngine(policyOf(settings));
  const sessions = new SessionTable({
    idleMs: SESSION_IDLE_MS,
    maxSessions: MAX_SESSIONS,
    maxKeyless: MAX_KEYLESS_SESSIONS,
    maxKeylessPerAddress: MAX_KEYLESS_SESSIONS_PER_ADDRESS,
    onEnd: (session) => servers.upstream.forgetOrigin(session.id),
  });
  const listeners = new ListenerTable((origin) => servers.upstream.forgetOrigin(origin));
  let servers: ServerSet;
  try {
    servers = await ServerSet.start(settings.servers, {
      clientInfo: { name: 'paygate-mcp', version: VERSION },
      sessions: new Recipients(sessions, listeners),
      name: settings.name ?? 'PayGate',
      remoteIdleMs: SESSION_IDLE_MS,
      ...(options.backendStderr ? { backendStderr: options.backendStderr } : {}),
    });
  } catch (error) {
    await ledger.close();
    throw new StartError((error as Error).message);
  }
  const engine = new Engine(policyEngine, ledger, servers.upstream, { ...engineOptionsOf(settings), now });
  await learnTools(engine, log);
  const refusals = new RefusedTraffic({ limitPerMin: settings.refusedRequestLimitPerMin, maxAddresses: MAX_REFUSING_ADDRESSES });
  const mcp = new McpEndpoint(engine, sessions, listeners, refusals, {
    maxBodyBytes: settings.maxBodyBytes,
    name: settings.name,
    hostPolicy: { loopbackOnly: isLoopback(settings.host), allowedOrigins: new Set(settings.allowedOrigins) },
    trustedProxies: settings.trustedProxies,
    now,
  });
  const guard = new AdminGuard(options.adminKey);
  let current = settings;
  let configProblems: string[] = [];
  const info: GateInfo = {
    name: settings.name ?? String(servers.upstream.identity()?.serverInfo.name ?? 'PayGate'),
    version: VERSION,
    startedAt,
    trustedProxies: settings.trustedProxies,
    backends: () => engine.upstream.statuses(),
    pools: () => engine.upstream.pools?.() ?? new Map(),
    sessionCount: () => sessions.size,
    unauthenticated: () => refusals.report(),
    configProblems: () => configProblems,
    settings: () => ({
      ...policyEngine.policy,
      refundOnFailure: current.refundOnFailure,
      callTimeoutMs: current.callTimeoutMs,
      maxBatchSize: current.maxBatchSize,
      usageRetentionDays: current.usageRetentionDays,
      refusedRequestLimitPerMin: current.refusedRequestLimitPerMin,
      servers: current.servers.map(describeServer),
    }),
  };
  const router = new Router([...keyRoutes(ledger), ...reportRoutes(engine, info)], {
    guard,
    trustedProxies: settings.trustedProxies,
    maxBodyBytes: ADMIN_BODY_BYTES,
    now,
  });

  let inflight = 0;
  const server = http.createServer((req, res) => {
    inflight++;
    const url = req.url ?? '/';
    const query = url.indexOf('?');
    const path = query === -1 ? url : url.slice(0, query);
    const handled = path === '/mcp' ? mcp.handle(req, res) : router.handle(req, res);
    handled.then(
      () => inflight--,
      (error: unknown) => {
        inflight--;
        log(`internal error on ${req.method} ${path}: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
        if (!res.headersSent) sendError(res, 500, 'internal error in the gate; it has been logged');
        else res.destroy();
      },
    );
  });
  server.on('clientError', (_error, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
    else socket.destroy();
  });

  let port: number;
  try {
    port = await listen(server, settings.host, settings.port);
  } catch (error) {
    await servers.close();
    await ledger.close();
    const message = (error as NodeJS.ErrnoException).code === 'EADDRINUSE' ? `port ${settings.port} on ${settings.host} is already in use; pick another with --port` : (error as Error).message;
    throw new StartError(message);
  }

  const retention = new UsageRetention(ledger, (error) => log(`usage retention could not delete old events: ${error.message}`), now);
  retention.configure(settings.usageRetentionDays);

  const sweeper = setInterval(() => {
    const t = now();
    policyEngine.sweep(t);
    sessions.sweep(t);
    guard.sweep(t);
    servers.sweep(t);
  }, SWEEP_MS);
  sweeper.unref();

  const hostForUrl = settings.host.includes(':') ? `[${settings.host}]` : settings.host;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${hostForUrl === '0.0.0.0' ? '127.0.0.1' : hostForUrl}:${port}/mcp`,
    port,
    engine,
    async reload(next) {
      const notes: string[] = [];
      for (const field of FIXED_AT_START) {
        if (JSON.stringify(next[field]) !== JSON.stringify(current[field])) notes.push(`${field} changed: it takes effect when the gate restarts`);
      }
      const { started, stopped } = await servers.update(next.servers, next.callTimeoutMs || MAX_DRAIN_MS);
      engine.upstream = servers.upstream;
      policyEngine.setPolicy(policyOf(next));
      engine.options = { ...engineOptionsOf(next), now };
      if (next.usageRetentionDays !== current.usageRetentionDays) retention.configure(next.usageRetentionDays);
      refusals.limitPerMin = next.refusedRequestLimitPerMin;
      if (started.length > 0) await learnTools(engine, (line) => notes.push(line));
      current = { ...next, ...Object.fromEntries(FIXED_AT_START.map((field) => [field, current[field]])) };
      configProblems = [];
      const { imported } = await importKeys(ledger, configuredKeys(next, now()));
      if (imported > 0) notes.push(`created ${imported} key(s) from importKeys`);
      for (const server of started) notes.push(`started ${server}`);
      for (const server of stopped) notes.push(`stopping ${server} once its calls in flight are done`);
      return notes;
    },
    refuseConfig(problems) {
      configProblems = problems;
    },
    configProblems: () => configProblems,
    settings: () => current,
    close() {
      closing ??= (async () => {
        clearInterval(sweeper);
        retention.stop();
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        sessions.closeAll();
        listeners.closeAll();
        server.closeIdleConnections();
        const deadline = Date.now() + DRAIN_MS;
        while (inflight > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
        server.closeAllConnections();
        await closed;
        await servers.close();
        await ledger.close();
      })();
      return closing;
    },
  };
}
