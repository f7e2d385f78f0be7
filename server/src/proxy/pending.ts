import { BackendFailure } from './backend.ts';
import { IdRing } from './idRing.ts';
import type { JsonRpcResponse } from './jsonrpc.ts';

interface Entry {
  resolve: (response: JsonRpcResponse) => void;
  reject: (error: BackendFailure) => void;
  method: string;
  timeoutMs: number;
  /** When the request fails for want of an answer (Infinity: never). */
  deadline: number;
}

/**
 * Requests sent to a backend and not answered yet, each with its own deadline. One timer serves
 * them all, set for the earliest deadline: a call costs no timer of its own.
 */
export class PendingRequests {
  readonly #entries = new IdRing<Entry>();
  readonly #label: string;
  readonly #onTimeout: (id: number) => void;
  #timer: NodeJS.Timeout | undefined;
  #timerAt = Infinity;

  /** `onTimeout` is told the id of each request that times out, so that the backend can be told to stop. */
  constructor(label: string, onTimeout: (id: number) => void) {
    this.#label = label;
    this.#onTimeout = onTimeout;
  }

  /** Waits for the answer to `id`; after `timeoutMs` (0: never) it fails with a `BackendFailure` saying so. */
  wait(id: number, method: string, timeoutMs: number): Promise<JsonRpcResponse> {
    return new Promise((resolve, reject) => {
      const entry: Entry = { resolve, reject, method, timeoutMs, deadline: timeoutMs > 0 ? performance.now() + timeoutMs : Infinity };
      this.#entries.set(id, entry);
      if (entry.deadline < this.#timerAt) this.#arm(entry.deadline);
    });
  }

  /** Delivers an answer; false if nothing waits for that id. */
  settle(response: JsonRpcResponse): boolean {
    const entry = this.#entries.take(response.id);
    entry?.resolve(response);
    return entry !== undefined;
  }

  fail(id: number, failure: BackendFailure): void {
    this.#entries.take(id)?.reject(failure);
  }

  failAll(kind: BackendFailure['kind'], reason: string): void {
    for (const id of this.#entries.ids()) this.fail(id, new BackendFailure(kind, reason));
  }

  #arm(at: number): void {
    clearTimeout(this.#timer);
    this.#timerAt = at;
    // Unreferenced: a timer left armed after the last answer must not keep a stopping process alive.
    this.#timer = setTimeout(() => this.#expire(), Math.max(0, at - performance.now())).unref();
  }

  /** Fails the requests past their deadline, and sets the timer for the next one. */
  #expire(): void {
    this.#timer = undefined;
    this.#timerAt = Infinity;
    const now = performance.now();
    let next = Infinity;
    for (const id of this.#entries.ids()) {
      const entry = this.#entries.get(id)!;
      if (entry.deadline <= now) {
        this.#entries.take(id);
        this.#onTimeout(id);
        entry.reject(new BackendFailure('timeout', `the MCP server "${this.#label}" did not answer ${entry.method} within ${entry.timeoutMs} ms`));
      } else {
        next = Math.min(next, entry.deadline);
      }
    }
    if (next < Infinity) this.#arm(next);
  }
}
