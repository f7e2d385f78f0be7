import path from 'node:path';
import type { GateSettings } from '../config/types.ts';
import { describeServer } from '../proxy/connect.ts';
import { reloadOnChange } from '../hotReload.ts';
import { startGate, type RunningGate } from '../service.ts';
import { VERSION } from '../version.ts';
import { UsageError } from './args.ts';
import { adminKeyFile, keptSecret, newAdminKey } from './secrets.ts';

export interface RunOptions {
  showAdminKey: boolean;
  /** The config file to watch, when the settings were read from it, and how to read them again when it changes. */
  reload?: { file: string; readAt: number; settings: () => GateSettings };
  /** Extra lines for the banner, given the running gate. */
  extraBanner?: (gate: RunningGate) => Promise<string[]>;
}

function stateOf(settings: GateSettings, gate: RunningGate): string {
  if (settings.redis) return `Redis at ${gate.engine.ledger.location}, shared with every gate given the same URL`;
  return settings.stateFile === ':memory:' ? 'in memory only (--no-state): nothing is kept' : path.resolve(settings.stateFile);
}

function log(line: string): void {
  process.stderr.write(`paygate: ${line}\n`);
}

/** Starts a gate in the foreground, prints where it is, and stops it cleanly on SIGINT, SIGTERM or SIGHUP (its terminal closed). */
export async function runGate(settings: GateSettings, options: RunOptions): Promise<void> {
  if (settings.redis && settings.adminKey === undefined) {
    throw new UsageError('with --redis-url every gate must accept the same admin key: give it with --admin-key or adminKey in the config');
  }
  const admin = settings.adminKey === undefined
    ? keptSecret(adminKeyFile(settings.stateFile), newAdminKey)
    : { value: settings.adminKey, created: false, file: undefined };
  const gate = await startGate({ settings, adminKey: admin.value, backendStderr: process.stderr, log });
  const base = gate.url.replace(/\/mcp$/, '');
  const lines = [
    `PayGate ${VERSION} is gating: ${settings.servers.map(describeServer).join('; ')}`,
    `  MCP endpoint  ${gate.url}`,
    `  Admin API     ${base}  (header X-Admin-Key)`,
    `  State         ${stateOf(settings, gate)}`,
  ];
  if (admin.created || options.showAdminKey) {
    const where = admin.file ? `saved to ${admin.file} (mode 0600); shown only now, or with --show-admin-key` : 'not saved';
    lines.push(`  Admin key     ${admin.value}  (${where})`);
  } else if (admin.file) {
    lines.push(`  Admin key     in ${admin.file} (print it with --show-admin-key)`);
  }
  lines.push(...((await options.extraBanner?.(gate)) ?? []));
  process.stdout.write(`${lines.join('\n')}\n`);

  const watcher = options.reload && reloadOnChange(gate, options.reload.file, options.reload.settings, { log, readAt: options.reload.readAt });
  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) process.exit(130);
    stopping = true;
    log(`${signal}: finishing calls in flight, then stopping`);
    Promise.all([watcher?.close(), gate.close()]).then(
      () => process.exit(0),
      (error: unknown) => {
        log(`error while stopping: ${(error as Error).message}`);
        process.exit(1);
      },
    );
  };
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, stop);
}
