import { Redis } from 'ioredis';

/** Commands a Redis server ran while `work` ran, as its clients sent them and as scripts ran them. */
export interface CommandCount {
  /** Commands sent by clients (each an EVALSHA, a GET, ...): what costs a round trip, pipelined or not. */
  sent: number;
  sentByName: Record<string, number>;
  /** Commands scripts ran inside Redis (`redis.call`): no round trip of their own. */
  insideScripts: number;
}

/** What measuring needs and nothing of the gate's: left out of the count. */
const MEASURING = new Set(['info', 'config', 'monitor', 'echo']);

/**
 * Counts with MONITOR, which tells a script's commands (source `lua`) from clients'. INFO
 * commandstats cannot: it counts a script's `redis.call`s under their own names.
 */
export async function countCommands(url: string, work: () => Promise<void>): Promise<CommandCount> {
  const client = new Redis(url);
  const monitor = await client.monitor();
  const marker = `paygate-count-${process.pid}-${Date.now()}`;
  const count: CommandCount = { sent: 0, sentByName: {}, insideScripts: 0 };
  let seenMarker: () => void = () => {};
  const markerSeen = new Promise<void>((resolve) => (seenMarker = resolve));
  monitor.on('monitor', (_time: string, args: string[], source: string) => {
    const name = (args[0] ?? '').toLowerCase();
    if (name === 'echo' && args[1] === marker) seenMarker();
    if (MEASURING.has(name)) return;
    if (source === 'lua') count.insideScripts++;
    else {
      count.sent++;
      count.sentByName[name] = (count.sentByName[name] ?? 0) + 1;
    }
  });
  try {
    await work();
    // MONITOR reports in the order Redis runs commands: once the marker shows, everything before it has.
    await client.echo(marker);
    await markerSeen;
    return count;
  } finally {
    monitor.disconnect();
    client.disconnect();
  }
}
