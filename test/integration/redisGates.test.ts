import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { GateProcess, waitFor, type Reply } from '../helpers/gate.ts';
import { RedisServer } from '../helpers/redis.ts';
import { tempDir } from '../helpers/tmp.ts';

/**
 * Several real gate processes sharing one real redis-server, as replicas behind a load balancer
 * run: credits, rate limits and admin changes hold across them, a dead gate's calls are refunded
 * by the others, and Redis pausing, dying or restarting from its AOF never serves a call unpaid
 * nor charges one twice. Every test stays well under a minute and stops what it started.
 */

const LIMIT = { timeout: 60_000 };

interface GateOptions {
  count: number;
  /** Written to a config file and passed with `--config`. */
  config?: Record<string, unknown>;
  /** Passes the Redis URL in the config file (`redisUrl`) instead of `--redis-url`. */
  urlInConfig?: boolean;
  /** `--rate-limit`: 0 (none) unless the config sets `globalRateLimitPerMin`. */
  rateLimit?: number;
}

/** `count` gates on `redis`, each a `paygate-mcp wrap` process of its own, stopped when the test ends. */
async function gatesOn(t: TestContext, redis: RedisServer, options: GateOptions): Promise<GateProcess[]> {
  const config: Record<string, unknown> = { ...options.config, ...(options.urlInConfig ? { redisUrl: redis.url } : {}) };
  const args = ['--price', '1'];
  if (!options.urlInConfig) args.push('--redis-url', redis.url);
  if (options.rateLimit !== undefined || config.globalRateLimitPerMin === undefined) args.push('--rate-limit', String(options.rateLimit ?? 0));
  if (Object.keys(config).length > 0) {
    const file = path.join(tempDir(), 'paygate.json');
    fs.writeFileSync(file, JSON.stringify(config));
    args.push('--config', file);
  }
  const gates = await Promise.all(Array.from({ length: options.count }, () => GateProcess.start(args)));
  t.after(() => Promise.all(gates.map((gate) => stopGate(gate))));
  return gates;
}

async function stopGate(gate: GateProcess): Promise<void> {
  gate.kill('SIGKILL');
  await gate.exited;
}

async function redisFor(t: TestContext, options: { appendOnly?: boolean } = {}): Promise<RedisServer> {
  const redis = await RedisServer.start(options);
  t.after(() => redis.stop());
  return redis;
}

function batch(gate: GateProcess, key: string, tools: string[], id: number | string): Promise<Reply> {
  return gate.mcp({ jsonrpc: '2.0', id, method: 'tools/call_batch', params: { calls: tools.map((name) => ({ name, arguments: { text: String(id) } })) } }, { key });
}

/** Credits a reply says were charged for calls that were answered: 0 for a refusal or an error. */
function servedCredits(reply: Reply): number {
  const result = reply.json?.result;
  if (!result) return 0;
  if (typeof result.totalCreditsCharged === 'number') return result.totalCreditsCharged;
  return result.isError ? 0 : 1;
}

interface PublicEvent {
  id: number;
  tool: string;
  creditsCharged: number;
  status: string;
  denyReason: string | null;
}

async function usageOf(gate: GateProcess, key: string): Promise<PublicEvent[]> {
  const events: PublicEvent[] = [];
  for (let cursor: number | null = null; ; ) {
    const reply = await gate.admin('GET', `/usage?key=${key}&limit=10000${cursor === null ? '' : `&cursor=${cursor}`}`);
    assert.equal(reply.status, 200, reply.text);
    events.push(...(reply.json.events as PublicEvent[]));
    cursor = reply.json.nextCursor;
    if (cursor === null) return events;
  }
}

const charged = (events: readonly PublicEvent[]) => events.filter((event) => event.status === 'charged');
const sumCredits = (events: readonly PublicEvent[]) => events.reduce((sum, event) => sum + event.creditsCharged, 0);

/**
 * The charged events that a later `refunded` event reverses: a keep whose answer the gate did not get
 * in time is withheld (the caller is not answered), and its refund names the charged event.
 */
function reversed(events: readonly PublicEvent[]): PublicEvent[] {
  const byId = new Map(events.map((event) => [event.id, event]));
  return events.flatMap((event) => {
    const id = /the answer was withheld; the charge of event (\d+) is refunded$/.exec(event.denyReason ?? '')?.[1];
    if (event.status !== 'refunded' || id === undefined) return [];
    const reversal = byId.get(Number(id));
    assert.equal(reversal?.status, 'charged', `event ${event.id} reverses the charged event ${id}`);
    return [reversal!];
  });
}

/** Credits of charged events, less those of the charges reversed since. */
const netCharged = (events: readonly PublicEvent[]) => sumCredits(charged(events)) - sumCredits(reversed(events));

async function keyView(gate: GateProcess, id: number): Promise<{ credits: number; totalSpent: number; totalCalls: number; active: boolean }> {
  const reply = await gate.admin('GET', '/keys');
  assert.equal(reply.status, 200, reply.text);
  const view = (reply.json as { id: number; credits: number; totalSpent: number; totalCalls: number; active: boolean }[]).find((key) => key.id === id);
  assert.ok(view, `GET /keys lists key ${id}`);
  return view;
}

const alive = (gate: GateProcess) => gate.child.exitCode === null && gate.child.signalCode === null;

/**
 * Calls `echo` from `workers` loops until `stop` resolves; counts what was acknowledged. Each loop
 * calls one gate of its own (loops spread evenly over `gates`, so each gate always has calls in
 * flight), and the live gates in turn once its gate has died.
 */
function load(gates: readonly GateProcess[], key: string, workers: number, options: { tool?: string; args?: Record<string, unknown> } = {}) {
  const tally = { acknowledged: 0, refused: 0, withheld: 0, lost: new Map<GateProcess, number>(), errors: [] as string[], statuses: new Map<number, number>() };
  let running = true;
  let next = 0;
  const loops = Array.from({ length: workers }, async (_, worker) => {
    const own = gates[worker % gates.length]!;
    while (running) {
      const gate = alive(own) ? own : gates[next % gates.length]!;
      next++;
      if (!alive(gate)) continue;
      try {
        const reply = await gate.callTool(key, options.tool ?? 'echo', options.args ?? { text: 'load' }, next);
        tally.statuses.set(reply.status, (tally.statuses.get(reply.status) ?? 0) + 1);
        if (servedCredits(reply) > 0) tally.acknowledged += servedCredits(reply);
        else {
          tally.refused++;
          const message: string = reply.json?.error?.message ?? reply.text;
          if (/answer is withheld/.test(message)) tally.withheld++;
          tally.errors.push(message);
        }
      } catch {
        // The connection died with the request on it: the gate's process was killed mid-call.
        tally.lost.set(gate, (tally.lost.get(gate) ?? 0) + 1);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    }
  });
  return {
    tally,
    async stop() {
      running = false;
      await Promise.all(loops);
      return tally;
    },
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Books {
  events: PublicEvent[];
  view: Awaited<ReturnType<typeof keyView>>;
}

/**
 * Waits until nothing of the key is left in flight: every credit spent has its charged event, not
 * reversed (the key's `totalSpent` counts reservations not settled yet). `also` can ask for more.
 * Fails with what it saw last.
 */
async function settledBooks(gate: GateProcess, key: string, id: number, timeoutMs: number, also: (books: Books) => boolean = () => true): Promise<Books> {
  const deadline = Date.now() + timeoutMs;
  let last: Books | string = 'nothing yet';
  for (;;) {
    try {
      const books = { events: await usageOf(gate, key), view: await keyView(gate, id) };
      if (books.view.totalSpent === netCharged(books.events) && also(books)) return books;
      const byStatus: Record<string, number> = {};
      for (const event of books.events) byStatus[event.status] = (byStatus[event.status] ?? 0) + 1;
      last = `spent ${books.view.totalSpent}, charged events worth ${sumCredits(charged(books.events))} of which ${sumCredits(reversed(books.events))} reversed, credits ${books.view.credits}, events ${JSON.stringify(byStatus)}`;
    } catch (error) {
      last = String(error);
    }
    if (Date.now() > deadline) assert.fail(`the books did not settle within ${timeoutMs} ms: ${last}`);
    await sleep(100);
  }
}

test('four gates on one Redis serve exactly the 50 credits of a key among 200 concurrent calls and batches, each with its usage event', LIMIT, async (t) => {
  const redis = await redisFor(t);
  const gates = await gatesOn(t, redis, { count: 4 });
  const { key, id } = await gates[0]!.createKey({ credits: 50 });
  const replies = await Promise.all(
    Array.from({ length: 200 }, (_, index) => {
      const gate = gates[index % gates.length]!;
      return index % 5 === 4 ? batch(gate, key, ['echo', 'echo'], index) : gate.callTool(key, 'echo', { text: String(index) }, index);
    }),
  );
  let served = 0;
  let answered = 0;
  for (const reply of replies) {
    const credits = servedCredits(reply);
    if (credits > 0) {
      served += credits;
      answered += Array.isArray(reply.json.result.results) ? reply.json.result.results.length : 1;
      continue;
    }
    assert.equal(reply.json?.error?.code, -32402, reply.text);
    assert.equal(reply.json.error.data.reason, 'insufficient_credits');
  }
  assert.equal(served, 50, 'exactly the balance was served');
  for (const gate of gates) assert.equal(await gate.balance(key), 0, `GET /balance on ${gate.base}`);
  const view = await keyView(gates[3]!, id);
  assert.deepEqual([view.credits, view.totalSpent, view.totalCalls], [0, 50, 50]);
  const events = await usageOf(gates[2]!, key);
  assert.equal(charged(events).length, answered, 'every served call has its charged event');
  assert.equal(sumCredits(charged(events)), 50);
});

test('the per-key and per-tool rate limits hold across four gates', LIMIT, async (t) => {
  const redis = await redisFor(t);
  const perKey = 12;
  const perTool = 4;
  const gates = await gatesOn(t, redis, { count: 4, urlInConfig: true, config: { globalRateLimitPerMin: perKey, toolPricing: { echo: { rateLimitPerMin: perTool } } } });
  const { key } = await gates[0]!.createKey({ credits: 1000 });
  const started = Date.now();
  /** GCRA lets a full burst through, then one call per period/limit. */
  const refilled = (limit: number) => Math.floor(((Date.now() - started) * limit) / 60_000);
  const fire = (tool: string, count: number) =>
    Promise.all(Array.from({ length: count }, (_, index) => gates[index % gates.length]!.callTool(key, tool, { text: 'x', ms: 1 }, index)));

  const echoes = await fire('echo', 40);
  const echoServed = echoes.filter((reply) => servedCredits(reply) > 0).length;
  assert.ok(echoServed >= perTool && echoServed <= perTool + refilled(perTool), `${echoServed} echo calls served with a limit of ${perTool}/min`);
  for (const reply of echoes.filter((r) => servedCredits(r) === 0)) assert.equal(reply.json?.error?.data?.reason, 'tool_rate_limited', reply.text);

  const slows = await fire('slow', 40);
  const slowServed = slows.filter((reply) => servedCredits(reply) > 0).length;
  const total = echoServed + slowServed;
  assert.ok(total >= perKey && total <= perKey + refilled(perKey), `${total} calls served with a limit of ${perKey}/min per key`);
  for (const reply of slows.filter((r) => servedCredits(r) === 0)) assert.equal(reply.json?.error?.data?.reason, 'rate_limited', reply.text);
  assert.equal(await gates[1]!.balance(key), 1000 - total);
});

test("an admin change on one gate (top-up, tool rules, rotation, revocation) applies to the other gate's very next call", LIMIT, async (t) => {
  const redis = await redisFor(t);
  const [a, b] = (await gatesOn(t, redis, { count: 2 })) as [GateProcess, GateProcess];
  const { key, id } = await a.createKey({ credits: 1 });
  assert.equal(servedCredits(await b.callTool(key, 'echo', { text: 'one' })), 1);
  assert.equal((await b.callTool(key, 'echo')).json.error.data.reason, 'insufficient_credits');

  assert.equal((await a.admin('POST', '/topup', { id, credits: 5 })).status, 200);
  assert.equal(await b.balance(key), 5);
  assert.equal(servedCredits(await b.callTool(key, 'echo', { text: 'after top-up' })), 1);

  assert.equal((await a.admin('POST', '/keys/acl', { id, allowedTools: [], deniedTools: ['echo'] })).status, 200);
  assert.equal((await b.callTool(key, 'echo')).json.error.data.reason, 'tool_denied');
  assert.equal((await a.admin('POST', '/keys/acl', { id, allowedTools: [], deniedTools: [] })).status, 200);
  assert.equal(servedCredits(await b.callTool(key, 'echo')), 1);

  const rotated = await a.admin('POST', '/keys/rotate', { id });
  assert.equal(rotated.status, 200);
  const newKey: string = rotated.json.newKey;
  assert.equal((await b.callTool(key, 'echo')).status, 401, 'the old key is retired everywhere');
  assert.equal((await b.request('GET', '/balance', { headers: { 'x-api-key': key } })).status, 401);
  assert.equal(await b.balance(newKey), 3);
  assert.equal(servedCredits(await b.callTool(newKey, 'echo')), 1);

  assert.equal((await a.admin('POST', '/keys/revoke', { key: newKey })).status, 200);
  assert.equal((await b.callTool(newKey, 'echo')).json.error.data.reason, 'key_revoked');
  const view = await keyView(b, id);
  assert.deepEqual([view.credits, view.active], [2, false]);
});

test('a gate killed (-9) under load: once its lease runs out its calls in flight are refunded as interrupted, and spent credits are what callers were answered for', LIMIT, async (t) => {
  const redis = await redisFor(t);
  const leaseMs = 1000;
  const gates = await gatesOn(t, redis, { count: 3, config: { redis: { leaseMs } } });
  const victim = gates[2]!;
  const { key, id } = await gates[0]!.createKey({ credits: 100_000 });
  const traffic = load(gates, key, 12, { tool: 'slow', args: { ms: 200 } });
  await sleep(1500);
  victim.kill('SIGKILL');
  await victim.exited;
  await sleep(1000);
  const tally = await traffic.stop();
  const lost = tally.lost.get(victim) ?? 0;
  t.diagnostic(`answered ${tally.acknowledged}, refused ${tally.refused}, lost per gate ${JSON.stringify(gates.map((gate) => tally.lost.get(gate) ?? 0))}, HTTP statuses ${JSON.stringify([...tally.statuses])}, errors ${JSON.stringify([...new Set(tally.errors)])}`);
  assert.ok(lost > 0, 'the killed gate had calls in flight');
  assert.ok(tally.acknowledged > 0);

  const survivor = gates[0]!;
  const { events, view } = await settledBooks(survivor, key, id, leaseMs + 15_000, (books) => books.events.some((event) => event.status === 'interrupted'));
  assert.equal(view.credits + view.totalSpent, 100_000);
  assert.ok(view.totalSpent >= tally.acknowledged, `no acknowledged charge is lost: spent ${view.totalSpent}, acknowledged ${tally.acknowledged}`);
  assert.ok(view.totalSpent <= tally.acknowledged + lost, `at most the dead gate's unanswered calls are charged beyond what was acknowledged: spent ${view.totalSpent}, acknowledged ${tally.acknowledged}, lost ${lost}`);
  assert.equal(sumCredits(charged(events)), view.totalSpent, 'nothing is left in flight: every credit spent has its charged event');
  assert.deepEqual(reversed(events), [], 'no keep went unanswered');
  assert.equal(await survivor.balance(key), view.credits);
});

test('Redis paused for 5 s under load: no call is served unpaid, none is charged twice, none gets an internal error', LIMIT, async (t) => {
  const redis = await redisFor(t);
  const gates = await gatesOn(t, redis, { count: 2 });
  const { key, id } = await gates[0]!.createKey({ credits: 100_000 });
  // A key the second gate has not looked up yet: its lookup needs Redis.
  const { key: unseen } = await gates[0]!.createKey({ credits: 10 });
  const traffic = load(gates, key, 8);
  await sleep(1000);
  redis.pause();
  const duringPause = Promise.all([gates[1]!.callTool(unseen, 'echo'), gates[1]!.admin('GET', '/keys'), gates[1]!.admin('POST', '/topup', { id, credits: 1 })]);
  await sleep(5000);
  redis.resume();
  await sleep(1500);
  const tally = await traffic.stop();
  assert.ok(tally.acknowledged > 0);

  const [lookup, listing, topUp] = await duringPause;
  const namesRedis = new RegExp(`Redis at redis://127\\.0\\.0\\.1:${redis.port}`);
  assert.equal(lookup.status, 503, lookup.text);
  assert.match(lookup.json.error.message, namesRedis);
  assert.match(lookup.json.error.message, /nothing was done or charged/);
  for (const reply of [listing, topUp]) {
    assert.equal(reply.status, 503, reply.text);
    assert.match(reply.text, namesRedis);
  }

  const settled = await settledBooks(gates[1]!, key, id, 15_000);
  const { events, view } = settled;
  assert.equal(view.credits + view.totalSpent, 100_000);
  // No double charge: what the charged events say, less the charges reversed, is what was spent.
  const reversals = reversed(events);
  t.diagnostic(`answered ${tally.acknowledged}, refused ${tally.refused} (withheld ${tally.withheld}), charges reversed ${reversals.length}, HTTP statuses ${JSON.stringify([...tally.statuses])}`);
  assert.equal(new Set(reversals).size, reversals.length, 'no charge is reversed twice');
  assert.equal(netCharged(events), view.totalSpent);
  // No call served unpaid: every answered call has its charge, not reversed; a reversed charge is an answer withheld.
  assert.equal(charged(events).length - reversals.length, tally.acknowledged, 'one charge standing per answered call');
  assert.equal(view.totalSpent, tally.acknowledged);
  assert.ok(reversals.length <= tally.withheld, `${reversals.length} charges reversed, ${tally.withheld} answers withheld`);
  assert.equal(tally.statuses.get(500), undefined, `no call got an internal error: ${JSON.stringify([...tally.statuses])}`);
  const unclear = [...new Set(tally.errors)].filter((message) => !/not made and nothing was charged|nothing was done or charged|answer is withheld and you will not be charged/.test(message));
  assert.deepEqual(unclear, [], 'every refused call says it was not made or not charged');
});

test('Redis down: /health answers 503 naming Redis and calls get a clear JSON-RPC error; once Redis is back on its port the gate recovers by itself', LIMIT, async (t) => {
  const redis = await redisFor(t, { appendOnly: true });
  const [gate] = (await gatesOn(t, redis, { count: 1 })) as [GateProcess];
  const { key } = await gate.createKey({ credits: 10 });
  assert.equal(servedCredits(await gate.callTool(key, 'echo')), 1);
  assert.equal((await gate.health()).status, 200);

  await redis.kill();
  const health = await waitFor('/health to answer 503', async () => {
    const reply = await gate.health();
    return reply.status === 503 ? reply : undefined;
  });
  assert.match(health.json.reason, /redis/i);
  const refused = await gate.callTool(key, 'echo');
  assert.equal(refused.json.result, undefined);
  assert.match(refused.json.error.message, /not made and nothing was charged/);

  await redis.restart();
  await waitFor('/health to answer 200 again', async () => ((await gate.health()).status === 200 ? true : undefined), 15_000);
  assert.equal(servedCredits(await gate.callTool(key, 'echo')), 1);
  assert.equal(await gate.balance(key), 8);
});

test('Redis killed under load and restarted from its AOF (appendfsync always): balances equal the charges callers were answered for', LIMIT, async (t) => {
  const redis = await redisFor(t, { appendOnly: true });
  const gates = await gatesOn(t, redis, { count: 2 });
  const { key, id } = await gates[0]!.createKey({ credits: 100_000 });
  const traffic = load(gates, key, 8);
  await sleep(1500);
  await redis.crash();
  await sleep(500);
  await redis.restart();
  await sleep(1500);
  const tally = await traffic.stop();
  assert.ok(tally.acknowledged > 0);

  const { view } = await settledBooks(gates[0]!, key, id, 20_000);
  assert.equal(view.credits + view.totalSpent, 100_000);
  assert.equal(view.totalSpent, tally.acknowledged, 'spent = what callers were answered for');
  assert.equal(await gates[1]!.balance(key), 100_000 - tally.acknowledged);
});
