import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import tls from 'node:tls';

export const REDIS_SERVER = process.env.REDIS_SERVER ?? '/usr/bin/redis-server';

export interface RedisServerOptions {
  /** AOF with `appendfsync always`: every acknowledged write survives a restart. */
  appendOnly?: boolean;
  /** More redis-server arguments, e.g. `['--user', 'paygate on >secret …']` or `['--cluster-enabled', 'yes']`. */
  args?: string[];
  /**
   * Lines of a config file written into the server's directory and read first. A sentinel needs one
   * (it rewrites it); `sentinel: true` runs `redis-server <file> --sentinel`.
   */
  config?: string[];
  sentinel?: boolean;
  /** Serve TLS only (no plain port), with this certificate; clients need not present one. */
  tls?: RedisTlsFiles;
}

export interface RedisTlsFiles {
  certFile: string;
  keyFile: string;
  caFile: string;
}

export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/**
 * A throwaway CA and a server certificate it signed for the DNS name `serverName` only, written
 * into `dir` with /usr/bin/openssl.
 */
export function makeTlsFiles(dir: string, serverName: string): RedisTlsFiles {
  const file = (name: string) => path.join(dir, name);
  const openssl = (...args: string[]) => execFileSync('/usr/bin/openssl', args, { stdio: 'pipe', timeout: 30_000 });
  openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=PayGate test CA', '-keyout', file('ca.key'), '-out', file('ca.crt'));
  openssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', `/CN=${serverName}`, '-keyout', file('redis.key'), '-out', file('redis.csr'));
  fs.writeFileSync(file('san.ext'), `subjectAltName = DNS:${serverName}\n`);
  openssl('x509', '-req', '-in', file('redis.csr'), '-CA', file('ca.crt'), '-CAkey', file('ca.key'), '-CAcreateserial', '-days', '1', '-extfile', file('san.ext'), '-out', file('redis.crt'));
  return { certFile: file('redis.crt'), keyFile: file('redis.key'), caFile: file('ca.crt') };
}

/**
 * Answers PING with +PONG (or asks for a password first), within `timeoutMs`? Over TLS when `ca` is
 * given (the name in the certificate is the test's business, not this probe's).
 */
async function pings(port: number, timeoutMs: number, ca?: Buffer): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = ca ? tls.connect({ port, host: '127.0.0.1', ca, checkServerIdentity: () => undefined }) : net.connect(port, '127.0.0.1');
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.on('error', () => done(false));
    socket.on(ca ? 'secureConnect' : 'connect', () => socket.write('PING\r\n'));
    socket.on('data', (data) => done(/^(\+PONG|-NOAUTH)/.test(data.toString())));
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

  /** `redis://127.0.0.1:<port>`, or `rediss://` for a TLS server. */
  get url(): string {
    return `${this.#options.tls ? 'rediss' : 'redis'}://127.0.0.1:${this.port}`;
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
    const options = this.#options;
    const args: string[] = [];
    if (options.config) {
      const file = path.join(this.dir, options.sentinel ? 'sentinel.conf' : 'redis.conf');
      // A restarted sentinel keeps what it rewrote into its file.
      if (!fs.existsSync(file)) fs.writeFileSync(file, `${options.config.join('\n')}\n`);
      args.push(file);
    }
    if (options.sentinel) args.push('--sentinel');
    const port = String(this.port);
    args.push(...(options.tls ? ['--port', '0', '--tls-port', port] : ['--port', port]));
    args.push('--bind', '127.0.0.1', '--dir', this.dir, '--daemonize', 'no', '--loglevel', 'warning');
    if (!options.sentinel) args.push('--save', '');
    if (options.tls) {
      args.push('--tls-cert-file', options.tls.certFile, '--tls-key-file', options.tls.keyFile, '--tls-ca-cert-file', options.tls.caFile, '--tls-auth-clients', 'no');
    }
    if (options.appendOnly) args.push('--appendonly', 'yes', '--appendfsync', 'always');
    args.push(...(options.args ?? []));
    const ca = options.tls ? fs.readFileSync(options.tls.caFile) : undefined;
    const child = spawn(REDIS_SERVER, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.#child = child;
    child.stdout!.on('data', (data: Buffer) => (this.#log += data.toString()));
    child.stderr!.on('data', (data: Buffer) => (this.#log += data.toString()));
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      if (child.exitCode !== null) throw new Error(`redis-server exited at start (${child.exitCode}): ${this.#log}`);
      if (await pings(this.port, 500, ca)) return;
      await sleep(50);
    }
    await this.kill();
    throw new Error(`redis-server did not answer PING within 10 s: ${this.#log}`);
  }
}
