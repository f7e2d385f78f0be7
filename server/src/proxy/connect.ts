import { Relay } from './relay.ts';
import { RemoteUpstream } from './remoteUpstream.ts';
import { Router } from './router.ts';
import { StdioBackend } from './stdio.ts';
import type { SessionDirectory, Upstream } from './upstream.ts';

/** A server to gate. `prefix` is set when several servers share the gate. */
export type ServerSpec =
  | { kind: 'stdio'; prefix: string | undefined; command: string; args: string[]; env: Record<string, string>; cwd: string | undefined }
  | { kind: 'remote'; prefix: string | undefined; url: string; headers: Record<string, string> };

export interface ConnectOptions {
  clientInfo: { name: string; version: string };
  sessions: SessionDirectory;
  /** The gate's name for clients when several servers are merged. */
  name: string;
  /** Where wrapped servers' stderr goes. */
  backendStderr?: NodeJS.WritableStream;
  /** How long an unused upstream session of a remote server is kept for requests without a session. */
  remoteIdleMs: number;
}

export interface Connected {
  upstream: Upstream;
  /** Closes what has been idle too long. */
  sweep(now: number): void;
}

/** A short description of a server, for logs and the banner. */
export function describeServer(spec: ServerSpec): string {
  const what = spec.kind === 'stdio' ? [spec.command, ...spec.args].join(' ') : spec.url;
  return spec.prefix === undefined ? what : `${spec.prefix}: ${what}`;
}

async function connectOne(spec: ServerSpec, options: ConnectOptions): Promise<{ upstream: Upstream; remote?: RemoteUpstream }> {
  const label = spec.prefix ?? (spec.kind === 'stdio' ? spec.command : new URL(spec.url).host);
  if (spec.kind === 'remote') {
    const remote = new RemoteUpstream({ label, url: new URL(spec.url), headers: spec.headers, clientInfo: options.clientInfo }, options.sessions, options.remoteIdleMs);
    try {
      await remote.start();
    } catch (error) {
      throw new Error(`cannot reach the MCP server at ${spec.url}: ${(error as Error).message}`);
    }
    return { upstream: remote, remote };
  }
  const backend = new StdioBackend({
    label,
    command: spec.command,
    args: spec.args,
    env: spec.env,
    cwd: spec.cwd,
    clientInfo: options.clientInfo,
    ...(options.backendStderr ? { stderr: options.backendStderr } : {}),
  });
  try {
    await backend.start();
  } catch (error) {
    await backend.close();
    throw error;
  }
  return { upstream: new Relay(backend, options.sessions) };
}

/**
 * Starts every server and joins them: one server is the upstream itself; several are routed by
 * prefix. If one cannot start, those already started are stopped again.
 */
export async function connect(specs: readonly ServerSpec[], options: ConnectOptions): Promise<Connected> {
  const started = await Promise.allSettled(specs.map((spec) => connectOne(spec, options)));
  const failed = started.find((result) => result.status === 'rejected');
  if (failed) {
    await Promise.all(started.map((result) => (result.status === 'fulfilled' ? result.value.upstream.close() : undefined)));
    throw failed.reason;
  }
  const members = started.map((result) => (result as PromiseFulfilledResult<{ upstream: Upstream; remote?: RemoteUpstream }>).value);
  const remotes = members.flatMap((member) => (member.remote ? [member.remote] : []));
  const sweep = (now: number) => remotes.forEach((remote) => remote.sweep(now));
  if (specs.length === 1 && specs[0]!.prefix === undefined) return { upstream: members[0]!.upstream, sweep };
  return { upstream: new Router(new Map(specs.map((spec, index) => [spec.prefix!, members[index]!.upstream])), options.name), sweep };
}
