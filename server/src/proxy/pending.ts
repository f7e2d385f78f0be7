import { BackendFailure } from './backend.ts';
import type { JsonRpcId, JsonRpcResponse } from './jsonrpc.ts';

interface Entry {
  resolve: (response: JsonRpcResponse) => void;
  reject: (error: BackendFailure) => void;
  /** When the request fails for want of an answer (Infinity: never). */
  deadline: number;
  timeoutMessage: string;
  onTimeout: () => void;
}

/**
 * Requests sent to a backend and not answered yet, each with its own deadline. One timer serves
 * them all, set for the earliest deadline: a call costs no timer of its own.
 */
export class PendingRequests {
  readonly #entries = new Map<JsonRpcId, Entry>();
  #timer: NodeJS.Timeout | undefined;
  #timerAt = Infinity;

  /**
   * Waits for the answer to `id`. After `timeoutMs` (0: never) it fails with `timeoutMessage` and
   * calls `onTimeout`, so that the backend can be told to stop.
   */
  wait(id: JsonRpcId, timeoutMs: number, timeoutMessage: string, onTimeout: () => void): Promise<JsonRpcResponse> {
    return new Promise((resolve, reject) => {
      const deadline = timeoutMs > 0 ? performance.now() + timeoutMs : Infinity;
      this.#entries.set(id, { resolve, reject, deadline, timeoutMessage, onTimeout });
      if (deadline < this.#timerAt) this.#arm(deadline);
    });
  }

  /** Delivers an answer; false if nothing waits for that id. */
  settle(response: JsonRpcResponse): boolean {
    const entry = this.#entries.get(response.id as JsonRpcId);
    if (!entry) return false;
    this.#entries.delete(response.id as JsonRpcId);
    entry.resolve(response);
    return true;
  }

  fail(id: JsonRpcId, failure: BackendFailure): void {
    const entry = this.#entries.get(id);
    if (!entry) return;
    this.#entries.delete(id);
    entry.reject(failure);
  }

  failAll(kind: BackendFailure['kind'], reason: string): void {
    for (const id of [...this.#entries.keys()]) this.fail(id, new BackendFailure(kind, reason));
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
    for (const [id, entry] of this.#entries) {
      if (entry.deadline <= now) {
        this.#entries.delete(id);
        entry.onTimeout();
        entry.reject(new BackendFailure('timeout', entry.timeoutMessage));
      } else {
        next = Math.min(next, entry.deadline);
      }
    }
    if (next < Infinity) this.#arm(next);
  }
}
