import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Engine } from '../../server/src/engine/engine.ts';
import { parseToolCall, type ToolCall } from '../../server/src/engine/toolCall.ts';
import { PolicyEngine } from '../../server/src/gate/policyEngine.ts';
import { SessionTable } from '../../server/src/http/sessions.ts';
import { GATE_ITSELF } from '../../server/src/proxy/listTools.ts';
import { Relay } from '../../server/src/proxy/relay.ts';
import { StdioBackend } from '../../server/src/proxy/stdio.ts';
import { InProcessLedger } from '../../server/src/store/ledger.ts';
import { SqliteLedger } from '../../server/src/store/sqliteLedger.ts';
import { openStateFile } from '../../server/src/store/open.ts';
import { BACKEND } from '../helpers/gate.ts';
import { keyRecord, NOW, policy } from '../helpers/records.ts';

test('a call whose settlement cannot be written is not answered, and its caller is told why', async (t) => {
  const store = openStateFile(':memory:').store;
  let commits = 0;
  const commit = store.commit.bind(store);
  store.commit = (batch) => {
    // The reservation is written; the settlement meets a full disk.
    if (++commits === 2) throw new Error('no space left on device');
    commit(batch);
  };
  const ledger = new InProcessLedger(store);
  const { id: _id, ...fields } = keyRecord({ credits: 10 });
  const record = ledger.insert(fields);
  const backend = new StdioBackend({ label: 'test', command: process.execPath, args: [BACKEND], env: {}, cwd: undefined, clientInfo: { name: 'test', version: '1' } });
  await backend.start();
  t.after(() => backend.close());
  const sessions = new SessionTable({ idleMs: 60_000, maxSessions: 10, maxKeyless: 10, maxKeylessPerAddress: 10, onEnd: () => {} });
  const engine = new Engine(new PolicyEngine(policy()), new SqliteLedger(ledger), new Relay(backend, sessions), {
    refundOnFailure: false,
    callTimeoutMs: 5000,
    maxBatchSize: 100,
    batchConcurrency: 10,
    now: () => NOW,
  });

  const caller = { record: ledger.findByHash(record.keyHash), presentedKey: true, clientIp: '127.0.0.1' };
  const outcome = await engine.callTool(caller, parseToolCall({ name: 'echo', arguments: { text: 'the answer' } }, 'params') as ToolCall, GATE_ITSELF);

  assert.equal(commits, 2);
  assert.ok('error' in outcome.body, `the call was answered: ${JSON.stringify(outcome.body)}`);
  assert.match(outcome.body.error.message, /could not record the outcome of this call, so its answer is withheld.*no space left on device/);
  assert.doesNotMatch(JSON.stringify(outcome.body), /the answer/);
});
