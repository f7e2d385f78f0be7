/**
 * Runs the @modelcontextprotocol/conformance server scenarios twice: against the bundled example
 * server directly (Streamable HTTP), then against the same server (stdio) behind a gate. The
 * conformance client sends no API key, so a small relay in front of the gate adds one.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const EXAMPLE = path.join(ROOT, 'dist', 'example-server.js');
const CLI = path.join(ROOT, 'dist', 'cli.js');
const ADMIN_KEY = 'admin_conformance_0123456789';
const RUN_TIMEOUT_MS = 5 * 60_000;

export interface SuiteResult {
  /** The conformance tool's own `Total: N passed, M failed` line. */
  total: string;
  /** Each scenario and whether all its checks passed. */
  scenarios: Map<string, boolean>;
  output: string;
}

function conformanceBin(): string {
  const require = createRequire(import.meta.url);
  return path.join(path.dirname(require.resolve('@modelcontextprotocol/conformance/package.json')), 'dist', 'index.js');
}

/** Starts a process and resolves with it once a line of its output matches `ready`. */
function startUntil(args: string[], ready: RegExp, label: string): Promise<{ child: ChildProcess; match: RegExpExecArray }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${label} did not start:\n${output}`));
    }, 20_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const match = ready.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve({ child, match });
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${label} exited with code ${code}:\n${output}`));
    });
  });
}

function stop(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

/** Forwards every request to the gate as it is (Host and Origin included), adding the API key. */
function startKeyRelay(gatePort: number, apiKey: string): Promise<http.Server> {
  const relay = http.createServer((req, res) => {
    const upstream = http.request(
      { host: '127.0.0.1', port: gatePort, method: req.method, path: req.url, headers: { ...req.headers, 'x-api-key': apiKey } },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on('error', () => res.destroy());
    res.on('close', () => upstream.destroy());
    req.pipe(upstream);
  });
  return new Promise((resolve) => relay.listen(0, '127.0.0.1', () => resolve(relay)));
}

export function runSuite(url: string): Promise<SuiteResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [conformanceBin(), 'server', '--url', url, '--suite', 'all'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk) => (output += chunk));
    child.stderr.on('data', (chunk) => (output += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), RUN_TIMEOUT_MS);
    child.on('exit', () => {
      clearTimeout(timer);
      const total = /^Total: \d+ passed, \d+ failed$/m.exec(output)?.[0];
      if (!total) {
        reject(new Error(`the conformance run printed no summary:\n${output}`));
        return;
      }
      const scenarios = new Map<string, boolean>();
      for (const [, mark, name] of output.matchAll(/^([✓✗]) ([\w-]+): \d+ passed, \d+ failed$/gm)) scenarios.set(name!, mark === '✓');
      resolve({ total, scenarios, output });
    });
  });
}

export async function runDirect(): Promise<SuiteResult> {
  const { child, match } = await startUntil([EXAMPLE, '--conformance', '--http', '0'], /listening on (http:\/\/\S+\/mcp)/, 'the example server');
  try {
    return await runSuite(match[1]!);
  } finally {
    await stop(child);
  }
}

export async function runThroughGate(): Promise<SuiteResult> {
  const server = `"${process.execPath}" "${EXAMPLE}" --conformance`;
  const { child, match } = await startUntil(
    [CLI, 'wrap', '--server', server, '--port', '0', '--no-state', '--rate-limit', '0', '--admin-key', ADMIN_KEY],
    /MCP endpoint\s+http:\/\/127\.0\.0\.1:(\d+)\/mcp/,
    'the gate',
  );
  let relay: http.Server | undefined;
  try {
    const gatePort = Number(match[1]);
    const created = await fetch(`http://127.0.0.1:${gatePort}/keys`, {
      method: 'POST',
      headers: { 'x-admin-key': ADMIN_KEY, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'conformance', credits: 1_000_000 }),
    });
    const { key } = (await created.json()) as { key: string };
    relay = await startKeyRelay(gatePort, key);
    return await runSuite(`http://127.0.0.1:${(relay.address() as AddressInfo).port}/mcp`);
  } finally {
    relay?.close();
    relay?.closeAllConnections();
    await stop(child);
  }
}

/** Scenarios that pass directly but not through the gate. */
export function regressions(direct: SuiteResult, gated: SuiteResult): string[] {
  return [...direct.scenarios].filter(([name, passed]) => passed && gated.scenarios.get(name) !== true).map(([name]) => name);
}

export function passedCount(result: SuiteResult): number {
  return [...result.scenarios.values()].filter(Boolean).length;
}
