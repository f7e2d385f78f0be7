import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after } from 'node:test';
import { tempDir } from './tmp.ts';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const CLI = path.join(ROOT, 'dist', 'cli.js');
export const BACKEND = path.join(ROOT, 'test', 'fixtures', 'backend.ts');
export const ADMIN_KEY = 'admin_test_0123456789abcdef';

export interface Reply {
  status: number;
  headers: Headers;
  text: string;
  json: any;
}

/** Runs the CLI to completion and returns what it printed. */
export function runCli(
  args: string[],
  options: { cwd?: string; timeoutMs?: number; env?: Record<string, string> } = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const env = { ...process.env, ...options.env };
    const child = spawn(process.execPath, [CLI, ...args], { cwd: options.cwd ?? tempDir(), env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`paygate-mcp ${args.join(' ')} did not finish; stderr: ${stderr}`));
    }, options.timeoutMs ?? 15_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

function decode(contentType: string | null, text: string): any {
  if (contentType?.includes('text/event-stream')) {
    const messages = text
      .split(/\n\n/)
      .map((block) => block.split('\n').filter((line) => line.startsWith('data: ')).map((line) => line.slice(6)).join('\n'))
      .filter(Boolean)
      .map((data) => JSON.parse(data));
    return messages.at(-1);
  }
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** A gate run as users run it: `paygate-mcp wrap` in its own process, on a free port. */
export class GateProcess {
  readonly child: ChildProcess;
  readonly dir: string;
  port = 0;
  stdout = '';
  stderr = '';
  readonly exited: Promise<number | null>;

  private constructor(child: ChildProcess, dir: string) {
    this.child = child;
    this.dir = dir;
    child.stdout!.on('data', (chunk) => (this.stdout += chunk));
    child.stderr!.on('data', (chunk) => (this.stderr += chunk));
    this.exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
  }

  /**
   * Starts `paygate-mcp wrap` in `cwd`, else in `dir` (a fresh temporary directory by default), and
   * waits until it prints its endpoint. It gates the test backend, or `backend`: another `--server` command, a
   * `--remote-url`, or what `--config` (in `args`) names.
   */
  static async start(
    args: string[] = [],
    options: { dir?: string; cwd?: string; backend?: { server: string } | { remoteUrl: string } | 'from config' } = {},
  ): Promise<GateProcess> {
    const dir = options.dir ?? tempDir();
    const backend = options.backend ?? { server: `"${process.execPath}" "${BACKEND}"` };
    const backendArgs = backend === 'from config' ? [] : 'server' in backend ? ['--server', backend.server] : ['--remote-url', backend.remoteUrl];
    const child = spawn(process.execPath, [CLI, 'wrap', ...backendArgs, '--port', '0', '--admin-key', ADMIN_KEY, ...args], {
      cwd: options.cwd ?? dir,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const gate = new GateProcess(child, dir);
    after(() => gate.shutdown());
    await gate.#ready();
    return gate;
  }

  async #ready(): Promise<void> {
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      const match = /MCP endpoint\s+http:\/\/127\.0\.0\.1:(\d+)\/mcp/.exec(this.stdout);
      if (match) {
        this.port = Number(match[1]);
        return;
      }
      if (this.child.exitCode !== null) break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    this.kill();
    throw new Error(`the gate did not start:\n${this.stdout}\n${this.stderr}`);
  }

  get base(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async request(method: string, urlPath: string, options: { headers?: Record<string, string>; body?: unknown; raw?: string } = {}): Promise<Reply> {
    const headers: Record<string, string> = { ...options.headers };
    let body: string | undefined = options.raw;
    if (options.body !== undefined) {
      body = JSON.stringify(options.body);
      headers['content-type'] ??= 'application/json';
    }
    const response = await fetch(`${this.base}${urlPath}`, { method, headers, body });
    const text = await response.text();
    return { status: response.status, headers: response.headers, text, json: decode(response.headers.get('content-type'), text) };
  }

  admin(method: string, urlPath: string, body?: unknown): Promise<Reply> {
    return this.request(method, urlPath, { headers: { 'x-admin-key': ADMIN_KEY }, ...(body === undefined ? {} : { body }) });
  }

  async createKey(fields: Record<string, unknown> = {}): Promise<{ key: string; id: number }> {
    const reply = await this.admin('POST', '/keys', { name: 'test', credits: 100, ...fields });
    if (reply.status !== 201) throw new Error(`POST /keys failed: ${reply.status} ${reply.text}`);
    return { key: reply.json.key, id: reply.json.id };
  }

  /** POSTs one JSON-RPC message to /mcp. */
  mcp(message: unknown, options: { key?: string; headers?: Record<string, string> } = {}): Promise<Reply> {
    const headers: Record<string, string> = { accept: 'application/json, text/event-stream', ...options.headers };
    if (options.key) headers['x-api-key'] = options.key;
    return this.request('POST', '/mcp', { headers, body: message });
  }

  callTool(key: string | undefined, name: string, args: Record<string, unknown> = {}, id: string | number = 1): Promise<Reply> {
    return this.mcp({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args } }, key === undefined ? {} : { key });
  }

  async balance(key: string): Promise<number> {
    const reply = await this.request('GET', '/balance', { headers: { 'x-api-key': key } });
    return reply.json.credits;
  }

  async health(): Promise<Reply> {
    return this.request('GET', '/health');
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
  }

  async stop(): Promise<number | null> {
    this.kill('SIGTERM');
    return this.exited;
  }

  /**
   * Stops the gate as an operator would (SIGTERM: it stops its servers' process groups too), and
   * kills it if it has not gone within 5 s: a gate killed outright cannot stop servers that outlive
   * their stdin.
   */
  async shutdown(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.kill('SIGTERM');
    const timer = setTimeout(() => this.kill(), 5000);
    await this.exited;
    clearTimeout(timer);
  }
}

/** A 2026-07-28 request as its revision sends it: the version and capabilities in `_meta`, the method and name in headers too. */
export function modernRequest(gate: GateProcess, method: string, params: Record<string, unknown>, options: { key?: string; id?: number; headers?: Record<string, string> } = {}): Promise<Reply> {
  const name = params.name ?? params.uri;
  const headers: Record<string, string> = {
    'mcp-protocol-version': '2026-07-28',
    'mcp-method': method,
    ...(typeof name === 'string' ? { 'mcp-name': name } : {}),
    ...options.headers,
  };
  const meta = { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': { elicitation: {} }, 'io.modelcontextprotocol/clientInfo': { name: 'era-test', version: '1' } };
  const body = { jsonrpc: '2.0', id: options.id ?? 1, method, params: { ...params, _meta: meta } };
  return gate.mcp(body, { headers, ...(options.key ? { key: options.key } : {}) });
}

export async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = await probe();
    if (value !== undefined) return value;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}
