import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { after, test } from 'node:test';
import { SessionTable } from '../../server/src/http/sessions.ts';
import { RemoteUpstream } from '../../server/src/proxy/remoteUpstream.ts';
import type { ClientChannel } from '../../server/src/proxy/upstream.ts';
import { ROOT } from '../helpers/gate.ts';

async function startRemote(): Promise<string> {
  const child = spawn(process.execPath, [path.join(ROOT, 'test', 'fixtures', 'remoteBackend.ts')], { stdio: ['ignore', 'pipe', 'inherit'] });
  after(() => child.kill('SIGKILL'));
  let out = '';
  return new Promise<string>((resolve, reject) => {
    child.stdout!.on('data', (chunk) => {
      out += chunk;
      const match = /listening on (\S+)/.exec(out);
      if (match) resolve(match[1]!);
    });
    child.once('exit', (code) => reject(new Error(`the remote server exited with ${code}`)));
  });
}

function keyChannel(keyHash: string): ClientChannel {
  return { origin: `stateless-${keyHash}`, keyHash, requestId: 1, sessionId: undefined, deliver: () => false };
}

test('a remote server keeps at most the allowed number of upstream sessions for keys, the least recently used closing first', async () => {
  const url = await startRemote();
  const sessions = new SessionTable({ idleMs: 60_000, maxSessions: 10, maxKeyless: 10, maxKeylessPerAddress: 10, onEnd: () => {} });
  const upstream = new RemoteUpstream({ label: 'remote', url: new URL(url), headers: {}, clientInfo: { name: 'test', version: '1' } }, sessions, 60_000, 3);
  after(() => upstream.close());
  const whoami = async (key: string) => {
    const answer = await upstream.forward('tools/call', { name: 'whoami', arguments: {} }, keyChannel(key), 5000);
    assert.ok('result' in answer, JSON.stringify(answer));
    return JSON.stringify(answer.result);
  };
  const first = await whoami('key-0');
  for (let key = 1; key < 10; key++) {
    await whoami(`key-${key}`);
    assert.ok(upstream.keySessions <= 3, `${upstream.keySessions} upstream sessions for keys`);
  }
  assert.equal(await whoami('key-9'), await whoami('key-9'), 'a recently used key keeps its session');
  assert.notEqual(await whoami('key-0'), first, 'the least recently used key got a new session');
});
