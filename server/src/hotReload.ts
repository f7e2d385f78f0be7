import { ConfigError } from './config/load.ts';
import type { GateSettings } from './config/types.ts';
import { watchFile } from './config/watch.ts';
import type { RunningGate } from './service.ts';

export interface ReloadOptions {
  log: (line: string) => void;
  /** When the settings in force were read (epoch ms): a change after that is applied even if the watcher was not ready yet. */
  readAt: number;
  /** Called after each change, applied or refused. */
  afterChange?: () => void;
}

/**
 * Applies the config file to the running gate whenever it changes. A config with errors is refused
 * (its problems go to the log and to /health) and the one in force stays. Changes apply one at a time.
 */
export function reloadOnChange(gate: RunningGate, file: string, readSettings: () => GateSettings, { log, readAt, afterChange }: ReloadOptions): { close(): Promise<void> } {
  let applying = Promise.resolve();
  return watchFile(file, () => {
    applying = applying.then(async () => {
      try {
        const notes = await gate.reload(readSettings());
        log(`${file} changed: applied${notes.length ? `; ${notes.join('; ')}` : ''}`);
      } catch (error) {
        const problems = error instanceof ConfigError ? error.problems : [(error as Error).message];
        gate.refuseConfig(problems);
        log(`${file} changed but was refused; the previous config stays in force:\n${problems.map((problem) => `  ${problem}`).join('\n')}`);
      }
      afterChange?.();
    });
  }, readAt);
}
