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
    [['wrap', '--server', 'x', '--durability', 'disk'], /^paygate-mcp: --durability must be process or power, not "disk"\n$/],
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
  // A link, not a copy: the fixture imports its neighbours, which node finds beside the real file.
  fs.symlinkSync(path.join(import.meta.dirname, '..', 'fixtures', 'backend.ts'), backend);
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

test('paygate-mcp validate: exit 0 for a valid config (notes allowed), 1 with errors, lines or --json', async () => {
  const dir = tempDir();
  const write = (name: string, text: string) => {
    fs.writeFileSync(path.join(dir, name), text);
    return path.join(dir, name);
  };
  const valid = write('valid.json', '{ "serverCommand": "node", "port": 0 }');
  const ok = await runCli(['validate', '--config', valid], { cwd: dir });
  assert.equal(ok.code, 0);
  assert.equal(ok.stdout, `${valid}: valid\n`);

  const noted = write('noted.json', '{ "serverCommand": "node", "port": 0, "callTimeoutMs": 0 }');
  const notes = await runCli(['validate', '--config', noted], { cwd: dir });
  assert.equal(notes.code, 0);
  assert.match(notes.stdout, /noted\.json:1:56 hint zero-meaning callTimeoutMs is 0, which here means calls never time out\n.*valid \(1 note\)/);

  const broken = write('broken.json', '{\n  "serverCommand": "node",\n  "port": -1,\n  "toolPricing": { "a": { "creditsPerCall": 1, "rateLimit": 5 } }\n}');
  const bad = await runCli(['validate', '--config', broken], { cwd: dir });
  assert.equal(bad.code, 1);
  assert.deepEqual(bad.stdout.trim().split('\n'), [
    `${broken}:3:11 error invalid-value port must be >= 0`,
    `${broken}:4:48 error unknown-field toolPricing.a has an unknown field "rateLimit"`,
  ]);
  const json = await runCli(['validate', '--config', broken, '--json'], { cwd: dir });
  assert.equal(json.code, 1);
  const parsed = JSON.parse(json.stdout);
  assert.equal(parsed.valid, false);
  assert.deepEqual(parsed.diagnostics[1], {
    file: broken, line: 4, column: 48, endLine: 4, endColumn: 59, severity: 'error', code: 'unknown-field',
    message: 'toolPricing.a has an unknown field "rateLimit"', fix: 'Remove "rateLimit"',
  });
  assert.equal((await runCli(['validate'], { cwd: dir })).code, 2);
  assert.equal((await runCli(['validate', '--config', path.join(dir, 'missing.json')], { cwd: dir })).code, 1);
});

test('wrap --dry-run starts the server, prints each tool (every page of them) with its price and limit, and names priced tools nobody offers', async () => {
  const dir = tempDir();
  const config = path.join(dir, 'paygate.json');
  fs.writeFileSync(config, JSON.stringify({ serverCommand: process.execPath, serverArgs: [path.join(import.meta.dirname, '..', 'fixtures', 'backend.ts')], toolPricing: { slow: { creditsPerCall: 4, rateLimitPerMin: 10 }, ecko: { creditsPerCall: 2 } }, port: 0 }, null, 2));
  const result = await runCli(['wrap', '--config', config, '--dry-run', '--tool-price', 'fecth:3'], { cwd: dir, env: { TEST_PAGE_SIZE: '3' } });
  assert.equal(result.code, 0, result.stderr);
  const lines = result.stdout.split('\n');
  assert.match(lines[0]!, /^tool\s+credits\/call\s+\+credits\/KiB\s+calls\/min per key$/);
  assert.ok(lines.some((line) => /^slow\s+4\s+0\s+10$/.test(line)), result.stdout);
  assert.ok(lines.some((line) => /^echo\s+1\s+0\s+60$/.test(line)), result.stdout);
  assert.match(result.stdout, /paygate\.json:\d+:\d+ warning unknown-tool no server offers a tool "ecko": did you mean "echo"\?/);
  assert.match(result.stdout, /--tool-price: warning unknown-tool no server offers a tool "fecth"/);
});
