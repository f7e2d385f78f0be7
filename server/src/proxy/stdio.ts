import type { ChildProcess } from 'node:child_process';
import spawn from 'cross-spawn';
import { LineReader } from './lineReader.ts';
import { JsonRpcLink } from './link.ts';
import { signalGroup, stopGroup, trackGroup } from './processGroups.ts';
import {
  BackendFailure,
  type Backend,
  type BackendStatus,
  type ForwardedRequest,
  type ServerIdentity,
  type ServerMessage,
} from './backend.ts';
import { isModernVersion, notificationForServer, paramsForServer } from './eras.ts';
import { handshake } from './handshake.ts';
import { classify, type JsonObject, type JsonRpcAnswer, type JsonRpcId, type JsonRpcMessage } from './jsonrpc.ts';

export interface StdioBackendOptions {
  label: string;
  command: string;
  args: readonly string[];
  env?: Readonly<Record<string, string>>;
  cwd?: string;
  clientInfo: { name: string; version: string };
  /** The capabilities the gate declares in its handshake; by default, those it relays to its clients. */
  clientCapabilities?: JsonObject;
  /** How long the backend may take to answer `initialize` (or `server/discover`). */
  initTimeoutMs?: number;
  /** First restart delay; it doubles after each failed start, up to `maxRestartDelayMs`. */
  restartDelayMs?: number;
  maxRestartDelayMs?: number;
  /** Where the backend's stderr goes; it is also kept to explain a crash. */
  stderr?: NodeJS.WritableStream;
}

const STABLE_AFTER_MS = 30_000;
/** How long a stopped server may take to exit after SIGTERM before it is killed. */
const STOP_GRACE_MS = 3000;
/** Windows has no process groups: there a server is its launcher. */
const GROUPS = process.platform !== 'win32';
const STDERR_TAIL_BYTES = 2048;
/** The longest message a server may send (tool results can carry images); a longer one is dropped. */
const MAX_MESSAGE_BYTES = 64 * 1024 * 1024;

function describeExit(code: number | null, signal: NodeJS.Signals | null): string {
  return signal ? `was killed by ${signal}` : `exited with code ${code ?? 'unknown'}`;
}

/**
 * An MCP server run as a child process, spoken to over stdin/stdout in MCP's stdio framing (one
 * JSON-RPC message per line, decoded whole, so a character split across chunks arrives intact). It
 * gets its own process group, so stopping it stops whatever it started, and the group never outlives
 * the gate (`processGroups.ts`). When it dies it is restarted with backoff, once everything its
 * launcher started is gone too; calls in flight then fail with a `BackendFailure`.
 */
export class StdioBackend implements Backend {
  readonly label: string;
  onServerMessage: ((message: ServerMessage) => void) | undefined;
  onStatusChange: ((status: BackendStatus) => void) | undefined;
  readonly #options: StdioBackendOptions;
  readonly #link: JsonRpcLink;
  #child: ChildProcess | undefined;
  #identity: ServerIdentity | undefined;
  #status: BackendStatus = { state: 'starting', restarts: 0 };
  #stderrTail = '';
  #restartDelay: number;
  #restartTimer: NodeJS.Timeout | undefined;
  /** Stopping what a dead launcher left behind. */
  #stoppingOrphans: Promise<void> = Promise.resolve();
  #startedAt = 0;

  constructor(options: StdioBackendOptions) {
    this.label = options.label;
    this.#link = new JsonRpcLink(this.label, (message) => this.#write(message));
    this.#options = options;
    this.#restartDelay = options.restartDelayMs ?? 250;
  }

  status(): BackendStatus {
    return this.#status;
  }

  identity(): ServerIdentity | undefined {
    return this.#identity;
  }

  async start(): Promise<void> {
    await this.#launch();
  }

  request(method: string, params: JsonObject | undefined, timeoutMs: number): ForwardedRequest {
    if (this.#status.state !== 'ready') {
      return this.#link.refuse(new BackendFailure('down', `the MCP server "${this.label}" is not running: ${this.#status.reason ?? this.#status.state}`));
    }
    return this.#link.request(method, paramsForServer(this.#modern, params, this.#options.clientInfo), timeoutMs);
  }

  notify(method: string, params?: JsonObject): void {
    if (notificationForServer(this.#modern, method)) this.#link.notify(method, params);
  }

  /** Whether the server speaks 2026-07-28 (it answered `server/discover`, not `initialize`). */
  get #modern(): boolean {
    return isModernVersion(this.#identity?.protocolVersion);
  }

  respond(upstreamId: JsonRpcId, answer: JsonRpcAnswer): void {
    this.#link.respond(upstreamId, answer);
  }

  async close(): Promise<void> {
    clearTimeout(this.#restartTimer);
    this.#setStatus({ state: 'stopped', reason: 'the gate is shutting down' });
    const child = this.#child;
    this.#child = undefined;
    this.#link.failAll('down', `the MCP server "${this.label}" was stopped`);
    child?.stdin?.end();
    await Promise.all([child && this.#stopProcesses(child), this.#stoppingOrphans]);
  }

  /** Stops the server and whatever its launcher started (its process group; on Windows, the launcher). */
  async #stopProcesses(child: ChildProcess): Promise<void> {
    if (child.pid === undefined) return;
    if (GROUPS) return stopGroup(child.pid, STOP_GRACE_MS);
    if (child.exitCode === null && child.signalCode === null) child.kill();
  }

  #killProcesses(child: ChildProcess): void {
    if (child.pid !== undefined && GROUPS) signalGroup(child.pid, 'SIGKILL');
    else child.kill('SIGKILL');
  }

  #write(message: JsonRpcMessage): void {
    const stdin = this.#child?.stdin;
    if (!stdin || stdin.destroyed) return;
    // Messages written in the same tick go to the pipe in one system call.
    if (stdin.writableCorked === 0) {
      stdin.cork();
      process.nextTick(() => stdin.uncork());
    }
    stdin.write(`${JSON.stringify(message)}\n`);
  }

  #setStatus(status: Omit<BackendStatus, 'restarts'>): void {
    this.#status = { ...status, restarts: this.#status.restarts };
    this.onStatusChange?.(this.#status);
  }

  #launch(): Promise<void> {
    const { command, args, env, cwd } = this.#options;
    this.#setStatus({ state: 'starting', reason: 'starting' });
    const child = spawn(command, [...args], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, ...env },
      cwd,
      detached: GROUPS,
    });
    if (GROUPS && child.pid !== undefined) trackGroup(child.pid);
    this.#child = child;
    this.#startedAt = Date.now();
    const lines = new LineReader(MAX_MESSAGE_BYTES);
    const onLine = (line: string) => this.#receive(line);
    const onOversized = () => this.#options.stderr?.write(`paygate: the MCP server "${this.label}" sent a message over ${MAX_MESSAGE_BYTES} bytes; it was dropped\n`);
    // Once it has exited, what is left of its group may still write: that is not the server any more.
    child.stdout?.on('data', (chunk: Buffer) => {
      if (this.#child === child) lines.push(chunk, onLine, onOversized);
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      this.#options.stderr?.write(chunk);
      this.#stderrTail = (this.#stderrTail + chunk.toString('utf8')).slice(-STDERR_TAIL_BYTES);
    });
    child.stdin?.on('error', () => {});
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      const fail = (reason: string) => {
        if (settled) return;
        settled = true;
        reject(new Error(reason));
      };
      child.once('error', (error) => {
        fail(`cannot start "${command}": ${error.message}`);
        this.#onExit(child, `could not be started: ${error.message}`);
      });
      child.once('exit', (code, signal) => {
        fail(`"${command}" ${describeExit(code, signal)} during start-up${this.#lastStderrLine()}`);
        this.#onExit(child, describeExit(code, signal));
      });
      this.#handshake()
        .then(() => {
          settled = true;
          resolve();
        })
        .catch((error: Error) => {
          fail(error.message);
          this.#killProcesses(child);
        });
    });
  }

  async #handshake(): Promise<void> {
    // Through the link itself: request() refuses until the handshake has made the server ready.
    this.#identity = await handshake(this.#link, this.#options.clientInfo, this.label, this.#options.initTimeoutMs ?? 30_000, this.#options.clientCapabilities);
    this.#setStatus({ state: 'ready', pid: this.#child?.pid });
  }

  /** One line from the server: a JSON-RPC message, or output that is not one (ignored, as MCP's own clients do). */
  #receive(line: string): void {
    let message: JsonRpcMessage | string;
    try {
      message = classify(JSON.parse(line));
    } catch {
      return;
    }
    if (typeof message !== 'string') this.#link.receive(message, this.onServerMessage);
  }

  #lastStderrLine(): string {
    const line = this.#stderrTail.trim().split('\n').at(-1)?.trim();
    return line ? ` (last output: ${line.slice(0, 300)})` : '';
  }

  #onExit(child: ChildProcess, how: string): void {
    if (this.#child !== child) return;
    this.#child = undefined;
    const reason = `the MCP server "${this.label}" ${how}${this.#lastStderrLine()}`;
    this.#link.failAll('crashed', reason);
    if (this.#status.state === 'stopped') return;
    const wasStable = Date.now() - this.#startedAt > STABLE_AFTER_MS;
    if (wasStable) this.#restartDelay = this.#options.restartDelayMs ?? 250;
    const delay = this.#restartDelay;
    this.#restartDelay = Math.min(delay * 2, this.#options.maxRestartDelayMs ?? 30_000);
    this.#status = { ...this.#status, restarts: this.#status.restarts + 1 };
    this.#setStatus({ state: 'down', reason: `${reason}; restarting in ${delay} ms` });
    // A launcher (npx, sh -c) that died may leave the server running: it goes before another starts.
    const orphans = (this.#stoppingOrphans = this.#stopProcesses(child));
    this.#restartTimer = setTimeout(() => {
      void orphans.then(() => {
        if (this.#status.state !== 'stopped') this.#launch().catch(() => {});
      });
    }, delay);
  }
}
