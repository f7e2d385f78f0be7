/**
 * Redis time per call of the ledger's hot-path scripts: `admit` and `settle` (keep) run one after
 * the other through a Redis ledger, N times, then `INFO commandstats` gives the microseconds Redis
 * spent in each script (evalsha usec / calls; the two scripts are told apart by running them in
 * separate phases) and the commands they ran inside. Redis's time is what all gate instances
 * share, so it caps the fleet: 1e6 / (admit + settle µs) calls per second.
 *
 * commandstats times are wall-clock: on a busy machine they include the time redis-server waited
 * for a CPU. So the CPU time redis-server used in each phase (Linux: /proc/<pid>/schedstat, user and
 * kernel, its network I/O included) is given per script call beside them, and for A/B comparisons
 * the minimum over `--rounds` runs is kept.
 *
 * Scenarios: a single call with no limits; a single call with a global and a per-tool rate limit and
 * a quota; a batch of 10 calls (one admit, its 10 keeps in one settle).
 *
 *   node test/bench/redisScriptCost.ts [--calls 3000] [--rounds 3]
 *
 * Prints one JSON line last.
 */
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { PolicyEngine } from '../../server/src/gate/policyEngine.ts';
import type { CallRequest, Policy } from '../../server/src/gate/types.ts';
import type { Reservation } from '../../server/src/store/contract.ts';
import { openRedisLedger } from '../../server/src/store/redis/connection.ts';
import { keyRecord, policy } from '../helpers/records.ts';
import { startBenchRedis } from './redisServer.ts';

const { values } = parseArgs({ options: { calls: { type: 'string', default: '3000' }, rounds: { type: 'string', default: '3' } } });
const calls = Number(values.calls);
const rounds = Number(values.rounds);

const redis = await startBenchRedis(process.env.BENCH_REDIS_ARGS ? process.env.BENCH_REDIS_ARGS.split(' ') : []);
const client = new Redis(redis.url());
const ledger = await openRedisLedger({ url: redis.url(), keyPrefix: 'bench', leaseMs: 600_000 });

interface Cost {
  usecPerCall: number;
  cpuUsecPerCall: number;
  innerCommandsPerCall: number;
}

/** Nanoseconds redis-server has run on a CPU (undefined where /proc is not there). */
function redisCpuNs(): number | undefined {
  try {
    return Number(fs.readFileSync(`/proc/${redis.pid}/schedstat`, 'utf8').split(' ')[0]);
  } catch {
    return undefined;
  }
}

const round = (value: number) => Math.round(value * 10) / 10;

/** Runs `phase` from reset stats; Redis time, CPU time and inner commands per script call. */
async function scriptCost(phase: () => Promise<void>): Promise<Cost> {
  await client.config('RESETSTAT');
  const cpuBefore = redisCpuNs();
  await phase();
  const cpuAfter = redisCpuNs();
  const stats = await client.info('commandstats');
  let scripts = 0;
  let usec = 0;
  let inner = 0;
  for (const [, name, count, spent] of stats.matchAll(/^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/gm)) {
    if (name === 'evalsha' || name === 'eval') {
      scripts += Number(count);
      usec += Number(spent);
    } else if (name !== 'info' && name !== 'config') inner += Number(count);
  }
  const cpuUsec = cpuBefore === undefined || cpuAfter === undefined ? NaN : (cpuAfter - cpuBefore) / 1000;
  return { usecPerCall: round(usec / scripts), cpuUsecPerCall: round(cpuUsec / scripts), innerCommandsPerCall: round(inner / scripts) };
}

async function measure(rules: Policy, batchSize: number) {
  const engine = new PolicyEngine(rules);
  const { id: _, ...fields } = keyRecord({ credits: 1e12, quota: rules.globalQuota });
  const record = await ledger.insert({ ...fields, keyHash: `bench-${Math.random()}` });
  const requests: CallRequest[] = Array.from({ length: batchSize }, () => ({ tool: 'search', argBytes: 0 }));
  const admitOnce = async () => {
    const found = await ledger.findByHash(record.keyHash);
    const { reservation } = await ledger.admit(engine, { record: found, presentedKey: true, clientIp: undefined }, requests, Date.now());
    if (!reservation) throw new Error('the bench call was refused');
    return reservation;
  };
  const settleOnce = (reservation: Reservation) => Promise.all(reservation.charges.map((charge) => ledger.settle(reservation, charge, null, Date.now())));

  for (let i = 0; i < 50; i++) await settleOnce(await admitOnce());
  const reservations: Reservation[] = [];
  const admit = await scriptCost(async () => {
    for (let i = 0; i < calls; i++) reservations.push(await admitOnce());
  });
  const settle = await scriptCost(async () => {
    for (const reservation of reservations) await settleOnce(reservation);
  });
  return { admit, settle };
}

/** The least of each figure over `rounds` runs: what the scripts cost with the least interference. */
async function measureBest(rules: Policy, batchSize: number) {
  const runs: { admit: Cost; settle: Cost }[] = [];
  for (let i = 0; i < rounds; i++) runs.push(await measure(rules, batchSize));
  const best = (pick: (run: { admit: Cost; settle: Cost }) => Cost): Cost => ({
    usecPerCall: Math.min(...runs.map((run) => pick(run).usecPerCall)),
    cpuUsecPerCall: Math.min(...runs.map((run) => pick(run).cpuUsecPerCall)),
    innerCommandsPerCall: pick(runs[0]!).innerCommandsPerCall,
  });
  const admit = best((run) => run.admit);
  const settle = best((run) => run.settle);
  return { batchSize, admit, settle, usecPerCall: round((admit.usecPerCall + settle.usecPerCall) / batchSize) };
}

try {
  const limits = policy({
    globalRateLimitPerMin: 1e6,
    toolPricing: { search: { creditsPerCall: 2, rateLimitPerMin: 1e6 } },
    globalQuota: { dailyCallLimit: 1e9, monthlyCallLimit: 1e9, dailyCreditLimit: 1e12, monthlyCreditLimit: 1e12 },
  });
  const result = {
    harness: 'redis-script-cost',
    calls,
    single: await measureBest(policy({ globalRateLimitPerMin: 0 }), 1),
    singleWithLimits: await measureBest(limits, 1),
    batch10: await measureBest(policy({ globalRateLimitPerMin: 0 }), 10),
  };
  for (const [name, r] of Object.entries(result)) {
    if (typeof r !== 'object') continue;
    process.stderr.write(
      `${name}: admit ${r.admit.usecPerCall} µs (CPU ${r.admit.cpuUsecPerCall}, ${r.admit.innerCommandsPerCall} inner commands), ` +
        `settle ${r.settle.usecPerCall} µs (CPU ${r.settle.cpuUsecPerCall}, ${r.settle.innerCommandsPerCall}); ${r.usecPerCall} µs per call\n`,
    );
  }
  console.log(JSON.stringify(result));
} finally {
  await ledger.close();
  client.disconnect();
  await redis.stop();
}
