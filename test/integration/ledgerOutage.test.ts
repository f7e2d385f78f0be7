import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseWrapFlags, resolveSettings } from '../../server/src/cli/args.ts';
import { hashApiKey } from '../../server/src/keys/apiKey.ts';
import { startGate } from '../../server/src/service.ts';
import type { SqliteLedger } from '../../server/src/store/sqliteLedger.ts';
import { ADMIN_KEY, BACKEND, waitFor } from '../helpers/gate.ts';

const KEY = `pg_${'cd'.repeat(24)}`;

test('while the ledger cannot be written, calls and admin changes are refused and /health says why; once writes succeed both come back', async (t) => {
  const settings = resolveSettings(
    parseWrapFlags(['--server', `${process.execPath} ${BACKEND}`, '--no-state', '--port', '0', '--rate-limit', '0', '--import-key', `${KEY}:10`]),
  );
  const gate = await startGate({ settings, adminKey: ADMIN_KEY });
  t.after(() => gate.close());
  const { ledger } = gate.engine;
  const { store } = (ledger as SqliteLedger).local;
  const commit = store.commit.bind(store);
  let diskFull = true;
  store.commit = (batch) => {
    if (diskFull) throw new Error('ENOSPC: no space left on device');
    commit(batch);
  };
  const call = async () => {
    const response = await fetch(gate.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'x-api-key': KEY },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo', arguments: { text: 'hi' } } }),
    });
    return (await response.json()) as { result?: unknown; error?: { message: string } };
  };
  const health = async () => {
    const response = await fetch(gate.url.replace(/\/mcp$/, '/health'));
    return { status: response.status, json: (await response.json()) as { reason?: string } };
  };

  const refused = await call();
  assert.match(refused.error?.message ?? '', /cannot record charges right now, so the call was not made and nothing was charged.*ENOSPC/);
  assert.equal((await ledger.findByHash(hashApiKey(KEY)))!.credits, 10);
  const down = await health();
  assert.equal(down.status, 503);
  assert.match(down.json.reason ?? '', /the ledger cannot be written: ENOSPC/);
  const topUp = await fetch(gate.url.replace(/\/mcp$/, '/topup'), {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-admin-key': ADMIN_KEY },
    body: JSON.stringify({ key: KEY, credits: 5 }),
  });
  assert.equal(topUp.status, 503, 'an admin change during the outage is refused as unavailable, not as an internal error');
  assert.equal(topUp.headers.get('retry-after'), '1');
  assert.match(((await topUp.json()) as { error: string }).error, /the ledger cannot be written: ENOSPC.*GET \/health/);

  diskFull = false;
  await waitFor('/health to answer 200', async () => ((await health()).status === 200 ? true : undefined), 5000);
  assert.ok((await call()).result);
  assert.equal((await ledger.findByHash(hashApiKey(KEY)))!.credits, 9);
});
