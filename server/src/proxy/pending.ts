import { BackendFailure } from './backend.ts';
import type { JsonRpcId, JsonRpcResponse } from './jsonrpc.ts';

interface Entry {
  resolve: (response: JsonRpcResponse) => void;
  reject: (error: BackendFailure) => void;
  timer: NodeJS.Timeout | undefined;
}

/** Requests sent to a backend and not answered yet, each with its own deadline. */
export class PendingRequests {
  readonly #entries = new Map<JsonRpcId, Entry>();

  /**
   * Waits for the answer to `id`. After `timeoutMs` (0: never) it fails with `timeoutMessage` and
   * calls `onTimeout`, so that the backend can be told to stop.
   */
  wait(id: JsonRpcId, timeoutMs: number, timeoutMessage: string, onTimeout: () => void): Promise<JsonRpcResponse> {
    return new Promise((resolve, reject) => {
      const entry: Entry = { resolve, reject, timer: undefined };
      if (timeoutMs > 0) {
        entry.timer = setTimeout(() => {
          this.#entries.delete(id);
          onTimeout();
          reject(new BackendFailure('timeout', timeoutMessage));
        }, timeoutMs);
      }
      this.#entries.set(id, entry);
    });
  }

  /** Delivers an answer; false if nothing waits for that id. */
  settle(response: JsonRpcResponse): boolean {
    const entry = this.#entries.get(response.id as JsonRpcId);
    if (!entry) return false;
    this.#entries.delete(response.id as JsonRpcId);
    clearTimeout(entry.timer);
    entry.resolve(response);
    return true;
  }

  fail(id: JsonRpcId, failure: BackendFailure): void {
    const entry = this.#entries.get(id);
    if (!entry) return;
    this.#entries.delete(id);
    clearTimeout(entry.timer);
    entry.reject(failure);
  }

  failAll(kind: BackendFailure['kind'], reason: string): void {
    for (const id of [...this.#entries.keys()]) this.fail(id, new BackendFailure(kind, reason));
  }
}
