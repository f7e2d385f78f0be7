import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export const REDIS_SERVER = process.env.REDIS_SERVER ?? '/usr/bin/redis-server';

export interface RedisServerOptions {
  /** AOF with `appendfsync always`: every acknowledged write survives a restart. */
  appendOnly?: boolean;
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Answers PING with +PONG, within `timeoutMs`? */
async function pings(port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.on('error', () => done(false));
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (data) => done(data.toString().startsWith('+PONG')));
  });
}

/**
 * A redis-server of its own for a test: a free port on 127.0.0.1, a temporary directory, no RDB
 * snapshots. Stopped by its PID; the directory goes with `stop`.
 */
export class RedisServer {
  readonly port: number;
  readonly dir: string;
  readonly #options: RedisServerOptions;
  #child: ChildProcess | undefined;
  #log = '';

  private constructor(port: number, dir: string, options: RedisServerOptions) {
    this.port = port;
    this.dir = dir;
    this.#options = options;
  }

  static async start(options: RedisServerOptions = {}): Promise<RedisServer> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paygate-redis-'));
    const server = new RedisServer(await freePort(), dir, options);
    try {
      await server.#spawn();
    } catch (error) {
      fs.rmSync(dir, { recursive: true, force: true });
      throw error;
    }
    return server;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  get pid(): number | undefined {
    return this.#child?.pid;
  }

  /** SIGSTOP: the server keeps its connections but answers nothing. */
  pause(): void {
    this.#signal('SIGSTOP');
  }

  resume(): void {
    this.#signal('SIGCONT');
  }

  /** Stops the server (SIGTERM, SIGKILL after `timeoutMs`), keeping its directory. */
  async kill(timeoutMs = 5000): Promise<void> {
    const child = this.#child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGCONT');
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    await exited;
    clearTimeout(timer);
    this.#child = undefined;
  }

  /** Kills the server with SIGKILL: what was not written to its AOF is lost. */
  async crash(): Promise<void> {
    const child = this.#child;
    if (!child) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGKILL');
    await exited;
    this.#child = undefined;
  }

  /** Starts it again on the same port and directory (it reloads its AOF, if it has one). */
  async restart(): Promise<void> {
    await this.kill();
    await this.#spawn();
  }

  async stop(): Promise<void> {
    try {
      await this.kill();
    } finally {
      fs.rmSync(this.dir, { recursive: true, force: true });
    }
  }

  #signal(signal: NodeJS.Signals): void {
    if (!this.#child?.pid) throw new Error('redis-server is not running');
    process.kill(this.#child.pid, signal);
  }

  async #spawn(): Promise<void> {
    const args = ['--port', String(this.port), '--bind', '127.0.0.1', '--dir', this.dir, '--save', '', '--daemonize', 'no', '--loglevel', 'warning'];
    if (this.#options.appendOnly) args.push('--appendonly', 'yes', '--appendfsync', 'always');
    const child = spawn(REDIS_SERVER, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.#child = child;
    child.stdout!.on('data', (data: Buffer) => (this.#log += data.toString()));
    child.stderr!.on('data', (data: Buffer) => (this.#log += data.toString()));
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      if (child.exitCode !== null) throw new Error(`redis-server exited at start (${child.exitCode}): ${this.#log}`);
      if (await pings(this.port, 500)) return;
      await sleep(50);
    }
    await this.kill();
    throw new Error(`redis-server did not answer PING within 10 s: ${this.#log}`);
  }
}
