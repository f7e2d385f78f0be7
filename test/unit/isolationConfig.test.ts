import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { parseWrapFlags, resolveSettings } from '../../server/src/cli/args.ts';
import { checkConfig } from '../../server/src/config/check.ts';
import { tempDir } from '../helpers/tmp.ts';

/** `code severity line:col-line:col message` (1-based) of every diagnostic. */
function findings(text: string): string[] {
  return checkConfig(text, {}).diagnostics.map(
    (d) => `${d.code} ${d.severity} ${d.range.start.line + 1}:${d.range.start.character + 1}-${d.range.end.line + 1}:${d.range.end.character + 1} ${d.message}`,
  );
}

test('isolation fields are checked: values and ranges by the schema, where they apply by the rules, each at its place', () => {
  assert.deepEqual(findings('{ "serverCommand": "node", "isolation": "key", "idleTimeoutSec": 5, "maxProcesses": 3 }'), []);
  assert.deepEqual(findings('{ "serverCommand": "node", "isolation": "tenant" }'), [
    'invalid-value error 1:41-1:49 isolation must be one of "shared", "key", "session"',
  ]);
  assert.deepEqual(findings('{ "serverCommand": "node", "isolation": "key", "idleTimeoutSec": 0, "maxProcesses": 100000 }'), [
    'invalid-value error 1:66-1:67 idleTimeoutSec must be >= 1',
    'invalid-value error 1:85-1:91 maxProcesses must be <= 10000',
  ]);
  const remote = '{\n  "servers": [\n    { "prefix": "r", "remoteUrl": "https://h/mcp", "isolation": "session" },\n    { "prefix": "s", "serverCommand": "node", "maxProcesses": 4 }\n  ]\n}';
  assert.deepEqual(findings(remote), [
    'isolation-remote warning 3:65-3:74 isolation "session" applies to servers run as a command: a remote server already gets an upstream session per client session and per key, so this has no effect',
    'isolation-unused warning 4:47-4:61 maxProcesses applies only with isolation "key" or "session" (one process per key or session); isolation is not set, so it has no effect',
  ]);
  assert.deepEqual(findings('{ "serverCommand": "node", "isolation": "shared", "idleTimeoutSec": 60 }'), [
    'isolation-unused warning 1:51-1:67 idleTimeoutSec applies only with isolation "key" or "session" (one process per key or session); isolation is "shared", so it has no effect',
  ]);
  assert.deepEqual(findings('{ "isolation": "key", "servers": [ { "prefix": "a", "serverCommand": "node" } ] }'), [
    'isolation-misplaced warning 1:3-1:14 a top-level isolation applies to serverCommand only: with servers, set it on each entry of servers',
  ]);
  assert.deepEqual(findings('{ "remoteUrl": "https://h/mcp", "isolation": "key" }'), [
    'isolation-remote warning 1:46-1:51 isolation "key" applies to servers run as a command: a remote server already gets an upstream session per client session and per key, so this has no effect',
  ]);
});

test('the resolver gives stdio servers their isolation with defaults; shared and remote servers get none', () => {
  const dir = tempDir();
  const config = path.join(dir, 'paygate.json');
  fs.writeFileSync(
    config,
    JSON.stringify({
      servers: [
        { prefix: 'k', serverCommand: 'node', isolation: 'key' },
        { prefix: 's', serverCommand: 'node', isolation: 'session', idleTimeoutSec: 9, maxProcesses: 2 },
        { prefix: 'x', serverCommand: 'node', isolation: 'shared' },
        { prefix: 'r', remoteUrl: 'https://h/mcp' },
      ],
    }),
  );
  const servers = resolveSettings(parseWrapFlags(['--config', config])).servers;
  assert.deepEqual(
    servers.map((spec) => (spec.kind === 'stdio' ? spec.isolation : undefined)),
    [{ mode: 'key', idleTimeoutSec: 300, maxProcesses: 50 }, { mode: 'session', idleTimeoutSec: 9, maxProcesses: 2 }, undefined, undefined],
  );
  fs.writeFileSync(config, JSON.stringify({ serverCommand: 'node', isolation: 'key', maxProcesses: 7 }));
  const [fromFile] = resolveSettings(parseWrapFlags(['--config', config])).servers;
  assert.deepEqual(fromFile!.kind === 'stdio' && fromFile!.isolation, { mode: 'key', idleTimeoutSec: 300, maxProcesses: 7 });
  const [fromFlag] = resolveSettings(parseWrapFlags(['--config', config, '--server', 'other-server'])).servers;
  assert.deepEqual(fromFlag!.kind === 'stdio' && fromFlag!.isolation, { mode: 'key', idleTimeoutSec: 300, maxProcesses: 7 }, '--server keeps the config’s isolation');
});
