import type { Engine } from '../../engine/engine.ts';
import type { BackendStatus } from '../../proxy/backend.ts';
import { poolView, type PoolReport } from '../../proxy/pool.ts';
import { hashApiKey } from '../../keys/apiKey.ts';
import { apiKeyChallenge } from '../challenge.ts';
import { credentialsOf } from '../credentials.ts';
import type { RefusalReport } from '../refusals.ts';
import { HttpError } from '../respond.ts';
import { intParam, namespaceParam, sinceParam } from './params.ts';
import { poolKeyPrefixes, publicEvent, publicKey, usageCsv } from './present.ts';
import { route, type Route } from './router.ts';

/** What the gate reports about itself. */
export interface GateInfo {
  name: string;
  version: string;
  startedAt: number;
  trustedProxies: number;
  /** Every wrapped server's state, by label. */
  backends(): Map<string, BackendStatus>;
  /** The process pools of servers isolated per key or session, by label. */
  pools(): Map<string, PoolReport>;
  sessionCount(): number;
  /** Requests on /mcp refused without a valid key, per address (kept in memory only). */
  unauthenticated(): RefusalReport;
  /** Why the last change to the config file was refused, if it was. */
  configProblems(): string[];
  /** The settings that decide prices and limits, as the gate applies them now. */
  settings(): Record<string, unknown>;
}

/** For the public /health: how many processes and queued calls each pool has, never whose. */
function poolCounts(pools: Map<string, PoolReport>): { pools?: Record<string, { isolation: string; processes: number; maxProcesses: number; queued: number }> } {
  if (pools.size === 0) return {};
  const counts = [...pools].map(([label, pool]) => [label, { isolation: pool.isolation, processes: pool.processes.length, maxProcesses: pool.maxProcesses, queued: pool.queued }]);
  return { pools: Object.fromEntries(counts) };
}

/** For the admin's /status: each pool's processes, by key prefix. */
function poolDetails(pools: Map<string, PoolReport>, keyPrefixOf: (keyHash: string) => string | undefined): { pools?: Record<string, unknown> } {
  if (pools.size === 0) return {};
  return { pools: Object.fromEntries([...pools].map(([label, pool]) => [label, poolView(pool, keyPrefixOf)])) };
}

const DEFAULT_PAGE = 1000;
const MAX_PAGE = 10_000;

export function reportRoutes(engine: Engine, info: GateInfo): Route[] {
  const ledger = engine.ledger;
  return [
    route<undefined>({
      method: 'GET',
      path: '/health',
      access: 'public',
      handle({ now }) {
        const problems: string[] = [];
        const backends: Record<string, { state: string; restarts: number }> = {};
        for (const [label, status] of info.backends()) {
          backends[label] = { state: status.state, restarts: status.restarts };
          if (status.state !== 'ready') problems.push(status.reason ?? `the MCP server ${label} is ${status.state}`);
        }
        if (ledger.failure) problems.push(`the ledger cannot be written: ${ledger.failure.message}`);
        return {
          status: problems.length ? 503 : 200,
          json: {
            status: problems.length ? 'unhealthy' : 'healthy',
            ...(problems.length ? { reason: problems.join('; ') } : {}),
            version: info.version,
            uptime: Math.round((now - info.startedAt) / 1000),
            backends,
            ...poolCounts(info.pools()),
            sessions: info.sessionCount(),
            ...(info.configProblems().length ? { configRefused: info.configProblems() } : {}),
          },
        };
      },
    }),
    route<undefined>({
      method: 'GET',
      path: '/balance',
      access: 'public',
      async handle({ req, now }) {
        const caller = await engine.caller(credentialsOf(req, info.trustedProxies));
        const denial = engine.policyEngine.checkKey(caller, now);
        if (denial) {
          const unknown = denial.reason === 'missing_api_key' || denial.reason === 'invalid_api_key';
          throw new HttpError(unknown ? 401 : 403, denial.message, unknown ? { 'www-authenticate': apiKeyChallenge(denial) } : {});
        }
        const { id: _id, ...view } = publicKey(caller.record!, now);
        return { json: view };
      },
    }),
    route<undefined>({
      method: 'GET',
      path: '/usage',
      access: 'admin',
      async handle({ url }) {
        const format = url.searchParams.get('format') ?? 'json';
        if (format !== 'json' && format !== 'csv') throw new HttpError(400, '?format must be json or csv');
        const limit = intParam(url, 'limit', 1, MAX_PAGE) ?? DEFAULT_PAGE;
        const afterId = intParam(url, 'cursor', 0, Number.MAX_SAFE_INTEGER);
        const sinceMs = sinceParam(url);
        const namespace = namespaceParam(url);
        let keyId = intParam(url, 'keyId', 1, Number.MAX_SAFE_INTEGER);
        const key = url.searchParams.get('key');
        if (key !== null) {
          const record = await ledger.findByHash(hashApiKey(key));
          if (!record) throw new HttpError(404, '?key names no stored key');
          keyId = record.id;
        }
        const events = await ledger.usage({
          limit,
          ...(sinceMs === undefined ? {} : { sinceMs }),
          ...(afterId === undefined ? {} : { afterId }),
          ...(namespace === undefined ? {} : { namespace }),
          ...(keyId === undefined ? {} : { keyId }),
        });
        const nextCursor = events.length === limit ? events.at(-1)!.id : null;
        const since = sinceMs === undefined ? 'all' : new Date(sinceMs).toISOString();
        if (format === 'csv') {
          return {
            text: usageCsv(events, afterId === undefined),
            headers: {
              'content-type': 'text/csv; charset=utf-8',
              'content-disposition': 'attachment; filename="paygate-usage.csv"',
              ...(nextCursor === null ? {} : { 'x-next-cursor': String(nextCursor) }),
            },
          };
        }
        return { json: { count: events.length, since, events: events.map(publicEvent), nextCursor } };
      },
    }),
    route<undefined>({
      method: 'GET',
      path: '/status',
      access: 'admin',
      async handle({ url, now }) {
        const namespace = namespaceParam(url);
        const pools = info.pools();
        const [totals, toolStats, denyReasons, namespaces, prefixes] = await Promise.all([
          ledger.keyTotals(namespace),
          ledger.toolStats(),
          ledger.denyReasons(namespace),
          namespace === undefined ? ledger.namespaces() : undefined,
          poolKeyPrefixes(ledger, pools.values()),
        ]);
        const perTool: Record<string, { calls: number; credits: number; denied: number }> = {};
        let totalDenied = 0;
        for (const [tool, stats] of toolStats) {
          perTool[tool] = { ...stats };
          totalDenied += stats.denied;
        }
        return {
          json: {
            name: info.name,
            version: info.version,
            uptime: Math.round((now - info.startedAt) / 1000),
            backends: Object.fromEntries(info.backends()),
            // As the admin API shows keys everywhere else.
            ...poolDetails(pools, (keyHash) => prefixes.has(keyHash) ? `${prefixes.get(keyHash)}...` : undefined),
            sessions: info.sessionCount(),
            ...(namespace === undefined ? {} : { filteredNamespace: namespace }),
            keys: totals.keys,
            activeKeys: totals.activeKeys,
            usage: {
              totalCalls: totals.totalCalls,
              totalCreditsSpent: totals.totalSpent,
              totalCreditsRemaining: totals.totalCredits,
              ...(namespace === undefined ? { totalDenied, perTool } : {}),
              denyReasons: Object.fromEntries(denyReasons),
            },
            ...(namespaces === undefined ? {} : { namespaces: namespaces.map((summary) => summary.namespace) }),
            unauthenticated: info.unauthenticated(),
            config: info.settings(),
          },
        };
      },
    }),
    route<undefined>({
      method: 'GET',
      path: '/namespaces',
      access: 'admin',
      async handle() {
        const namespaces = await ledger.namespaces();
        return { json: { namespaces, count: namespaces.length } };
      },
    }),
  ];
}
