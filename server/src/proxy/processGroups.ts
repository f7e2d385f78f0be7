/**
 * The process groups of the stdio servers this process runs (each server is started in its own
 * group, so a signal to the group reaches whatever its launcher started: `npx`, `sh -c`, the server,
 * its helpers). They must never outlive this process, however it ends: a normal exit, `process.exit`,
 * an uncaught exception (all of which emit 'exit', where they are killed synchronously), or SIGINT,
 * SIGTERM or SIGHUP (which end a process without 'exit' unless someone listens).
 */

const groups = new Set<number>();
const EXIT_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
const POLL_MS = 20;
let installed = false;

function killAll(): void {
  for (const pgid of groups) signalGroup(pgid, 'SIGKILL');
  groups.clear();
}

function onSignal(signal: NodeJS.Signals): void {
  // A host that listens too (the CLI stops its gate gracefully) decides when the process ends; its exit kills what is left.
  if (process.listenerCount(signal) > 1) return;
  killAll();
  for (const name of EXIT_SIGNALS) process.off(name, onSignal);
  // Ends the process as the signal would have, had nobody listened.
  process.kill(process.pid, signal);
}

function install(): void {
  if (installed) return;
  installed = true;
  process.on('exit', killAll);
  for (const signal of EXIT_SIGNALS) process.on(signal, onSignal);
}

/** Sends `signal` to every process of the group; false when none is left. */
export function signalGroup(pgid: number, signal: NodeJS.Signals | 0): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch {
    return false;
  }
}

/** Kills the group (SIGKILL) if it is still there when this process exits, however it exits. */
export function trackGroup(pgid: number): void {
  install();
  groups.add(pgid);
}

/**
 * Stops a group: SIGTERM, then SIGKILL to whatever is left after `graceMs`. Resolves once no process
 * of it is left, or it has been sent SIGKILL (which no process can outlast).
 */
export async function stopGroup(pgid: number, graceMs: number): Promise<void> {
  const deadline = Date.now() + graceMs;
  if (signalGroup(pgid, 'SIGTERM')) {
    while (Date.now() < deadline && signalGroup(pgid, 0)) await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    signalGroup(pgid, 'SIGKILL');
  }
  groups.delete(pgid);
}
