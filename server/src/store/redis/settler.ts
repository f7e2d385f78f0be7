/**
 * What to do with a charge (lua/settle.ts): keep it, refund it if it is still open, or `withhold`:
 * refund it even if it was kept, which only the recovery of a keep that got no answer may do.
 */
export type SettleAction = 'keep' | 'refund' | 'withhold';

/** One charge to settle: the 1-based index of a charge of a stored reservation. */
export interface Settlement {
  reservationId: string;
  index: number;
  action: SettleAction;
  /** Why a charge is refunded ('' to keep it). */
  reason: string;
}

/** What a caller of `Ledger.settle` may ask for: a kept charge is never given back this way. */
export type PublicSettlement = Settlement & { action: 'keep' | 'refund' };

/** What Redis made of a settlement (lua/settle.ts). */
export type SettleStatus = 'kept' | 'refunded' | 'cancelled';

interface Waiting {
  settlement: PublicSettlement;
  resolve: (status: SettleStatus) => void;
  reject: (error: unknown) => void;
}

/** Why a charge is refunded when its keep could not be confirmed: its caller gets no answer. */
export const UNRECORDED_REASON = 'the gate could not record the outcome in time, so the answer was withheld';
/** Why a reservation whose admission got no answer is refunded: its calls were never made. */
export const UNANSWERED_ADMISSION_REASON = 'the gate got no answer from Redis for the admission, so the calls were not made';
const RETRY_REPAIRS_MS = 1000;
const SETTLEMENTS_PER_SCRIPT = 500;

/**
 * Settles charges through the settle script: the settlements asked for in one event-loop turn go
 * as one script call. A settlement that fails (no answer: a timeout, a lost connection, which may
 * still run later; or an error reply) is followed by a refund that is retried until Redis takes it. A keep whose answer was lost is withheld: its caller is not answered, so the charge is
 * refunded even if the keep ran (the one settlement that reverses a kept charge). A reservation
 * whose admission got no answer is cancelled: refunded if it arrived, remembered as cancelled if it
 * did not, so that it admits nothing when it does. Requests on one connection run in order, so
 * such a refund runs after the command it repairs.
 */
export class Settler {
  readonly #run: (argv: string[]) => Promise<unknown>;
  readonly #onSettled: () => void;
  #waiting: Waiting[] = [];
  #scheduled = false;
  readonly #repairs = new Map<string, Settlement>();
  #repairTimer: NodeJS.Timeout | undefined;
  #stopped = false;

  /** `run` calls the settle script; `onSettled` is told after Redis applied settlements. */
  constructor(run: (argv: string[]) => Promise<unknown>, onSettled: () => void) {
    this.#run = run;
    this.#onSettled = onSettled;
  }

  /** Refunds not confirmed yet. */
  get pendingRepairs(): number {
    return this.#repairs.size;
  }

  settle(settlement: PublicSettlement): Promise<SettleStatus> {
    const { promise, resolve, reject } = Promise.withResolvers<SettleStatus>();
    this.#waiting.push({ settlement, resolve, reject });
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(() => void this.#flush());
    }
    return promise;
  }

  /** Cancels a reservation whose admission got no answer: every one of its charges is refunded, or the id remembered as cancelled. */
  cancel(reservationId: string, charges: number): void {
    for (let index = 1; index <= Math.max(1, charges); index++) this.#repair({ reservationId, index, action: 'refund', reason: UNANSWERED_ADMISSION_REASON });
  }

  /** Tries the repairs still pending once more, now. */
  async retryRepairs(): Promise<void> {
    clearTimeout(this.#repairTimer);
    this.#repairTimer = undefined;
    const batch = [...this.#repairs.entries()].slice(0, SETTLEMENTS_PER_SCRIPT);
    if (batch.length === 0) return;
    try {
      await this.#run(argvOf(batch.map(([, settlement]) => settlement)));
      for (const [name, settlement] of batch) if (this.#repairs.get(name) === settlement) this.#repairs.delete(name);
      this.#onSettled();
    } catch {
      // No answer, or an error reply (Redis out of memory refuses scripts before they run): the credits are still owed, so try again.
    }
    if (this.#repairs.size > 0) this.#scheduleRepairs(RETRY_REPAIRS_MS);
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#repairTimer);
    this.#repairTimer = undefined;
  }

  async #flush(): Promise<void> {
    this.#scheduled = false;
    const waiting = this.#waiting;
    this.#waiting = [];
    for (let start = 0; start < waiting.length; start += SETTLEMENTS_PER_SCRIPT) {
      const group = waiting.slice(start, start + SETTLEMENTS_PER_SCRIPT);
      let reply: unknown;
      try {
        reply = await this.#run(argvOf(group.map((entry) => entry.settlement)));
      } catch (error) {
        // Whether it ran or not (no answer, or an error reply), the caller of a keep gets no answer, so the charge is given back.
        for (const { settlement, reject } of group) {
          this.#repair(settlement.action === 'keep' ? { ...settlement, action: 'withhold', reason: UNRECORDED_REASON } : settlement);
          reject(error);
        }
        continue;
      }
      const statuses = Array.isArray(reply) ? reply : [];
      group.forEach(({ resolve }, i) => resolve(statuses[i] === 'kept' || statuses[i] === 'refunded' ? statuses[i] : 'cancelled'));
      this.#onSettled();
    }
  }

  #repair(settlement: Settlement): void {
    // A later refund of the same charge replaces an earlier one (either gives the credits back once), but not a withheld keep.
    const name = `${settlement.reservationId}#${settlement.index}`;
    if (this.#repairs.get(name)?.action !== 'withhold') this.#repairs.set(name, settlement);
    this.#scheduleRepairs(0);
  }

  #scheduleRepairs(delayMs: number): void {
    if (this.#stopped || this.#repairTimer !== undefined) return;
    this.#repairTimer = setTimeout(() => void this.retryRepairs(), delayMs).unref();
  }
}

function argvOf(settlements: readonly Settlement[]): string[] {
  const argv = [String(settlements.length)];
  for (const { reservationId, index, action, reason } of settlements) argv.push(reservationId, String(index), action, reason);
  return argv;
}
