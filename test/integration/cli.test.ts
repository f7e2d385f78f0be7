import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { GateProcess, runCli } from '../helpers/gate.ts';
import { tempDir } from '../helpers/tmp.ts';

test('--version and --help answer and exit 0', async () => {
  const version = await runCli(['--version']);
  assert.equal(version.code, 0);
  assert.match(version.stdout, /^paygate-mcp \d+\.\d+\.\d+\n$/);
  const help = await runCli(['wrap', '--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /--tool-price/);
});

test('a mistake on the command line is one line naming it, and exit code 2', async () => {
  const cases: [string[], RegExp][] = [
    [['wrap', '--server', 'x', '--bogus'], /^paygate-mcp: unknown flag --bogus\n$/],
    [['wrap', '--server', 'x', '--port', '99999'], /^paygate-mcp: --port must be a whole number from 0 to 65535, not "99999"\n$/],
    [['wrap', '--server', 'x', '--price=-1'], /--price must be a whole number/],
    [['wrap', '--server', 'x', '--price', '-1'], /--price needs a value \(for a value that starts with a dash, write --price=VALUE\)/],
    [['wrap', '--server', 'x', '--tool-price', 'search'], /--tool-price takes name:number pairs such as search:5,generate:10, not "search"/],
    [['wrap', '--server', 'x', '--rate-limit'], /--rate-limit needs a value/],
    [['wrap'], /give the MCP server to gate: --server/],
    [['wrap', '--server', 'node a.js | tee log'], /--server must be one command/],
    [['wrap', '--server', 'x', '--admin-key', 'short'], /--admin-key must be at least 16 characters/],
    [['frobnicate'], /unknown command "frobnicate"/],
  ];
  for (const [args, expected] of cases) {
    const result = await runCli(args);
    assert.equal(result.code, 2, args.join(' '));
    assert.match(result.stderr, expected);
    assert.equal(result.stderr.trim().split('\n').length, 1, `one line for ${args.join(' ')}`);
  }
});

test('--server is split like a shell line: quoted arguments stay whole', async () => {
  const dir = tempDir();
  const spaced = path.join(dir, 'a folder with spaces');
  fs.mkdirSync(spaced);
  const backend = path.join(spaced, 'backend.ts');
  fs.copyFileSync(path.join(import.meta.dirname, '..', 'fixtures', 'backend.ts'), backend);
  const gate = await GateProcess.start(['--rate-limit', '0'], { backend: { server: `"${process.execPath}" '${backend}'` } });
  const { key } = await gate.createKey();
  assert.equal((await gate.callTool(key, 'echo', { text: 'quoted' })).json.result.content[0].text, 'quoted');
});

test('a config file with mistakes is refused with file:line:column for each, exit code 1', async () => {
  const dir = tempDir();
  const config = path.join(dir, 'paygate.json');
  fs.writeFileSync(config, '{\n  // prices\n  "defaultCreditsPerCall": "two",\n  "toolPricing": { "search": { "creditsPerCall": 5, "price": 3 } },\n}\n');
  const result = await runCli(['wrap', '--config', config, '--server', 'true'], { cwd: dir });
  assert.equal(result.code, 1);
  assert.match(result.stderr, new RegExp(`${config}:3:28 error invalid-value defaultCreditsPerCall must be integer`));
  assert.match(result.stderr, new RegExp(`${config}:4:53 error unknown-field toolPricing.search has an unknown field "price"`));
});

test('a server command that does not exist stops the gate with a clear error, exit code 1', async () => {
  const result = await runCli(['wrap', '--server', 'no-such-command-here', '--port', '0', '--no-state']);
  assert.equal(result.code, 1);
  assert.match(result.stderr, /cannot start "no-such-command-here"/);
});

test('the admin key is made on first start, kept with mode 0600 and printed only then', async () => {
  const dir = tempDir();
  const start = async () => {
    const result = await import('node:child_process').then(({ spawn }) =>
      new Promise<string>((resolve, reject) => {
        const child = spawn(process.execPath, [path.join(import.meta.dirname, '..', '..', 'dist', 'cli.js'), 'wrap', '--server', `"${process.execPath}" "${path.join(import.meta.dirname, '..', 'fixtures', 'backend.ts')}"`, '--port', '0'], { cwd: dir });
        let out = '';
        child.stdout.on('data', (chunk) => {
          out += chunk;
          if (/State/.test(out) && /Admin key/.test(out)) child.kill('SIGTERM');
        });
        child.on('exit', () => resolve(out));
        child.on('error', reject);
      }),
    );
    return result;
  };
  const first = await start();
  const keyFile = path.join(dir, '.paygate', 'state.db.admin-key');
  const saved = fs.readFileSync(keyFile, 'utf8').trim();
  assert.match(saved, /^admin_[0-9a-f]{32}$/);
  assert.equal(fs.statSync(keyFile).mode & 0o777, 0o600);
  assert.ok(first.includes(saved));
  const second = await start();
  assert.ok(!second.includes(saved));
  assert.match(second, /print it with --show-admin-key/);
});

test('paygate-mcp keys import adds keys to a state file and reports what it skipped', async () => {
  const dir = tempDir();
  const file = path.join(dir, 'keys.jsonl');
  fs.writeFileSync(file, `${JSON.stringify({ key: `pg_${'ef'.repeat(24)}`, credits: 12 })}\n${JSON.stringify({ key: `pg_${'aa'.repeat(24)}`, credits: 3 })}\n`);
  const first = await runCli(['keys', 'import', file, '--state-file', path.join(dir, 'state.db')], { cwd: dir });
  assert.equal(first.code, 0, first.stderr);
  assert.match(first.stdout, /imported 2 key\(s\); 0 already present/);
  const again = await runCli(['keys', 'import', file, '--state-file', path.join(dir, 'state.db')], { cwd: dir });
  assert.match(again.stdout, /imported 0 key\(s\); 2 already present and left unchanged/);
  fs.writeFileSync(file, '{"key": 5}\n');
  const broken = await runCli(['keys', 'import', file, '--state-file', path.join(dir, 'state.db')], { cwd: dir });
  assert.equal(broken.code, 1);
  assert.match(broken.stderr, /line 1\.key must be string/);
});
