import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { CLI } from '../helpers/gate.ts';
import { tempDir } from '../helpers/tmp.ts';

/** Runs `paygate-mcp demo` until its banner is printed; returns the banner and a stop function. */
async function startDemo(dir: string): Promise<{ banner: string; stop: () => Promise<void> }> {
  const child = spawn(process.execPath, [CLI, 'demo', '--port', '0', '--state-file', path.join(dir, 'state.db')], { cwd: dir });
  let banner = '';
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (chunk) => {
      banner += chunk;
      if (banner.includes('See your balance')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`demo exited with ${code}: ${banner}`)));
  });
  await new Promise((resolve) => setTimeout(resolve, 100));
  return {
    banner,
    stop: () =>
      new Promise((resolve) => {
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

test('the demo prints an endpoint, a demo key with credits and a curl line that works as printed', async () => {
  const dir = tempDir();
  const first = await startDemo(dir);
  try {
    const key = /Demo API key\s+(pg_[0-9a-f]{48})\s+\((\d+) credits left/.exec(first.banner);
    assert.ok(key, first.banner);
    assert.equal(key[2], '1000');
    const curl = /(curl -s http:\/\/\S+\/mcp [^\n]*\\\n\s+-d '[^\n]*')/.exec(first.banner)?.[1];
    assert.ok(curl, first.banner);
    const { stdout } = await promisify(execFile)('sh', ['-c', curl]);
    assert.deepEqual(JSON.parse(stdout).result.content[0], { type: 'text', text: 'hello' });
    assert.match(first.banner, /Admin key\s+admin_[0-9a-f]{32}/);
    const endpoint = /MCP endpoint\s+(\S+)/.exec(first.banner)![1]!;
    const batch = await fetch(endpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': key[1]! },
      body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/call_batch', params: { calls: [{ name: 'echo', arguments: { text: 'a' } }, { name: 'search_docs', arguments: { query: 'pricing' } }] } }),
    });
    assert.equal(((await batch.json()) as { result: { totalCreditsCharged: number } }).result.totalCreditsCharged, 3);
  } finally {
    await first.stop();
  }
  const second = await startDemo(dir);
  try {
    assert.match(second.banner, /Demo API key\s+pg_[0-9a-f]{48}\s+\(996 credits left/);
    assert.doesNotMatch(second.banner, /admin_[0-9a-f]{32}/);
  } finally {
    await second.stop();
  }
});
