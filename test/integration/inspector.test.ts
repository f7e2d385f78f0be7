import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { test } from 'node:test';
import { GateProcess, ROOT } from '../helpers/gate.ts';
import { tempDir } from '../helpers/tmp.ts';

/** The Inspector's launcher, run with this Node (the Inspector needs Node ≥ 22.19, the `.bin` shim would take the PATH's). */
function inspectorBin(): string {
  const manifest = createRequire(path.join(ROOT, 'package.json')).resolve('@modelcontextprotocol/inspector/package.json');
  const { bin } = JSON.parse(fs.readFileSync(manifest, 'utf8')) as { bin: Record<string, string> };
  return path.join(path.dirname(manifest), bin['mcp-inspector']!);
}

const INSPECTOR = inspectorBin();
/** A home of its own, so that no catalog or stored OAuth token of the machine's user takes part. */
const HOME = tempDir();

const gate = await GateProcess.start(['--config', path.join(ROOT, 'examples', 'paygate.json')], {
  backend: { server: `"${process.execPath}" "${path.join(ROOT, 'examples', 'example-server.ts')}"` },
});

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** `mcp-inspector --cli <gate>/mcp --transport http …`, as its README shows it. */
function inspector(args: string[]): Promise<Run> {
  const argv = [INSPECTOR, '--cli', `${gate.base}/mcp`, '--transport', 'http', ...args];
  return new Promise((resolve) => {
    execFile(process.execPath, argv, { env: { ...process.env, HOME }, timeout: 30_000 }, (error, stdout, stderr) => {
      resolve({ code: typeof error?.code === 'number' ? error.code : error ? -1 : 0, stdout, stderr });
    });
  });
}

test('the MCP Inspector CLI lists the tools and their prices without a key', async () => {
  const run = await inspector(['--method', 'tools/list']);
  assert.equal(run.code, 0, run.stdout + run.stderr);
  const { tools } = JSON.parse(run.stdout) as { tools: { name: string; _meta?: Record<string, unknown> }[] };
  const weather = tools.find((tool) => tool.name === 'weather');
  assert.deepEqual(weather?._meta?.['paygate/pricing'], { creditsPerCall: 3, creditsPerKbInput: 0, rateLimitPerMin: 10 });
});

test('the MCP Inspector CLI calls a tool with X-API-Key, and the call is charged', async () => {
  const { key } = await gate.createKey({ credits: 10 });
  const run = await inspector(['--method', 'tools/call', '--tool-name', 'echo', '--tool-arg', 'text=hello from the inspector', '--header', `X-API-Key: ${key}`]);
  assert.equal(run.code, 0, run.stdout + run.stderr);
  assert.deepEqual(JSON.parse(run.stdout).content, [{ type: 'text', text: 'hello from the inspector' }]);
  assert.equal(await gate.balance(key), 9);
});

test('without a key, the MCP Inspector CLI\'s tool call shows the gate\'s reason: send an API key', async () => {
  const run = await inspector(['--method', 'tools/call', '--tool-name', 'echo', '--tool-arg', 'text=x', '--stored-auth-only']);
  assert.notEqual(run.code, 0);
  assert.match(run.stdout + run.stderr, /missing_api_key — an API key is required: send it in the X-API-Key header/);
});
