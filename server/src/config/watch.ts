import fs from 'node:fs';
import chokidar from 'chokidar';

const SETTLE_MS = 100;

/**
 * Calls `onChange` when the file is changed or replaced (editors often save by writing a new file
 * and renaming it over the old one), once the writing has settled. A change made after
 * `changedSince` (epoch ms: when the file was last read) but before the watcher was ready counts too.
 */
export function watchFile(file: string, onChange: () => void, changedSince: number): { close(): Promise<void> } {
  const watcher = chokidar.watch(file, { ignoreInitial: true, awaitWriteFinish: { stabilityThreshold: SETTLE_MS, pollInterval: 20 } });
  let timer: NodeJS.Timeout | undefined;
  const changed = () => {
    clearTimeout(timer);
    timer = setTimeout(onChange, SETTLE_MS);
  };
  watcher.on('change', changed).on('add', changed);
  watcher.once('ready', () => {
    if ((fs.statSync(file, { throwIfNoEntry: false })?.mtimeMs ?? 0) > changedSince) changed();
  });
  return {
    async close() {
      clearTimeout(timer);
      await watcher.close();
    },
  };
}
