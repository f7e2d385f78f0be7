import type { Ledger } from './contract.ts';

const DAY_MS = 86_400_000;
/** Events deleted per step: a step holds the event loop for about a millisecond. */
const EVENTS_PER_STEP = 1000;
/** The pause between steps while old events remain, so that calls run in between. */
const CATCH_UP_PAUSE_MS = 25;
/** How often to look for events that have grown old, once none are left. */
const CHECK_EVERY_MS = 60_000;

/**
 * Deletes usage events older than `usageRetentionDays`, oldest first, in small steps off the hot
 * path: a step deletes at most a thousand events (found by id: event ids follow time), and steps
 * follow each other with a pause while old events remain, then once a minute. Totals of reports
 * are kept apart from events (aggregates.ts), so they do not change; balances live on the keys.
 */
export class UsageRetention {
  readonly #ledger: Pick<Ledger, 'firstEventIdAtOrAfter' | 'deleteOldestEvents'>;
  readonly #onError: (error: Error) => void;
  readonly #now: () => number;
  #days = 0;
  #timer: NodeJS.Timeout | undefined;

  /** `onError` is told when a step fails (a full disk, say); the next step tries again. */
  constructor(ledger: Pick<Ledger, 'firstEventIdAtOrAfter' | 'deleteOldestEvents'>, onError: (error: Error) => void, now: () => number = Date.now) {
    this.#ledger = ledger;
    this.#onError = onError;
    this.#now = now;
  }

  /** Keeps events for `days` days; 0 keeps everything (and stops deleting). */
  configure(days: number): void {
    this.#days = days;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (days > 0) this.#schedule(0);
  }

  /** Deletes one step of events older than the retention; returns how many. */
  async step(): Promise<number> {
    if (this.#days <= 0) return 0;
    const keepFrom = await this.#ledger.firstEventIdAtOrAfter(this.#now() - this.#days * DAY_MS);
    return this.#ledger.deleteOldestEvents(keepFrom, EVENTS_PER_STEP);
  }

  stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #schedule(delayMs: number): void {
    this.#timer = setTimeout(async () => {
      let deleted = 0;
      try {
        deleted = await this.step();
      } catch (error) {
        this.#onError(error instanceof Error ? error : new Error(String(error)));
      }
      // Stopped or reconfigured while the step ran: that call has scheduled what comes next.
      if (this.#timer === timer) this.#schedule(deleted === EVENTS_PER_STEP ? CATCH_UP_PAUSE_MS : CHECK_EVERY_MS);
    }, delayMs).unref();
    const timer = this.#timer;
  }
}
