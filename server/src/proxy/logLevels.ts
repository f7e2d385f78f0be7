/** MCP's log levels (RFC 5424 severities), most verbose first. */
export const LOG_LEVELS = ['debug', 'info', 'notice', 'warning', 'error', 'critical', 'alert', 'emergency'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

const RANK = new Map<unknown, number>(LOG_LEVELS.map((level, rank) => [level, rank]));

export function isLogLevel(value: unknown): value is LogLevel {
  return RANK.has(value);
}

/**
 * The `logging/setLevel` of each client session of a shared server. A session receives only log
 * messages at or above its own level; the server is told the most verbose level any live session
 * asked for, so that no session misses what it asked for.
 */
export class SessionLogLevels {
  readonly #rankByOrigin = new Map<string, number>();
  #upstreamRank: number | undefined;

  /** Records a session's level; gives the level to tell the server when that changes. */
  set(origin: string, level: LogLevel): LogLevel | undefined {
    this.#rankByOrigin.set(origin, RANK.get(level)!);
    return this.#recompute();
  }

  /** Forgets an ended session; gives the level to tell the server when that changes. */
  forget(origin: string): LogLevel | undefined {
    return this.#rankByOrigin.delete(origin) ? this.#recompute() : undefined;
  }

  /** Whether a log message of `level` may go to the session (one that never set a level takes all). */
  admits(origin: string, level: unknown): boolean {
    const floor = this.#rankByOrigin.get(origin);
    const rank = RANK.get(level);
    return floor === undefined || rank === undefined || rank >= floor;
  }

  get size(): number {
    return this.#rankByOrigin.size;
  }

  #recompute(): LogLevel | undefined {
    if (this.#rankByOrigin.size === 0) return undefined;
    const rank = Math.min(...this.#rankByOrigin.values());
    if (rank === this.#upstreamRank) return undefined;
    this.#upstreamRank = rank;
    return LOG_LEVELS[rank];
  }
}
