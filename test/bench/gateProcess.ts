import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const CLI = path.join(ROOT, 'dist', 'cli.js');

/** A gate run by a benchmark: `paygate-mcp wrap` in its own process, stopped by its PID. */
export interface BenchGate {
  child: ChildProcess;
  pid: number;
  port: number;
  /** `http://127.0.0.1:<port>`. */
  base: string;
  /** What the gate wrote to stderr so far (empty when it goes to the benchmark's own). */
  stderr(): string;
  /** SIGTERM, resolved when the process has exited. */
  stop(): Promise<void>;
}

export interface SpawnOptions {
  /** Flags for node before the CLI, e.g. `--max-semi-space-size=16`. */
  nodeOptions?: readonly string[];
  /** Keep the gate's stderr (to explain a failure) instead of passing it through. */
  captureStderr?: boolean;
}

/** Starts `paygate-mcp <args>` and resolves once it prints its MCP endpoint. */
export async function spawnGate(args: readonly string[], options: SpawnOptions = {}): Promise<BenchGate> {
  const child = spawn(process.execPath, [...(options.nodeOptions ?? []), CLI, ...args], {
    stdio: ['ignore', 'pipe', options.captureStderr ? 'pipe' : 'inherit'],
  });
  let stderr = '';
  child.stderr?.on('data', (chunk) => (stderr += chunk));
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (chunk) => {
      out += chunk;
      const match = /MCP endpoint\s+http:\/\/127\.0\.0\.1:(\d+)\/mcp/.exec(out);
      if (match) resolve(Number(match[1]));
    });
    child.once('exit', (code) => reject(new Error(`the gate exited with ${code}: ${out}${stderr}`)));
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    child,
    pid: child.pid!,
    port,
    base: `http://127.0.0.1:${port}`,
    stderr: () => stderr,
    stop: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
}
