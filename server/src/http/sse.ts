import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';

const KEEPALIVE_MS = 25_000;

/** A server-sent-events stream of JSON-RPC messages on one HTTP response. */
export class SseStream {
  readonly #res: ServerResponse;
  readonly #keepalive: NodeJS.Timeout | undefined;
  #open = true;
  onClose: (() => void) | undefined;

  constructor(res: ServerResponse, headers: OutgoingHttpHeaders, keepalive: boolean) {
    this.#res = res;
    res.writeHead(200, { ...headers, 'content-type': 'text/event-stream', 'cache-control': 'no-cache, no-transform', connection: 'keep-alive' });
    res.flushHeaders();
    if (keepalive) {
      this.#keepalive = setInterval(() => this.#write(': keepalive\n\n'), KEEPALIVE_MS);
      this.#keepalive.unref();
    }
    res.once('close', () => this.#closed());
  }

  get open(): boolean {
    return this.#open;
  }

  send(message: unknown): boolean {
    return this.sendEvent(JSON.stringify(message), undefined);
  }

  /** Sends one serialized JSON-RPC message, with an event id when the stream can be resumed. */
  sendEvent(json: string, id: string | undefined): boolean {
    return this.#write(id === undefined ? `event: message\ndata: ${json}\n\n` : `id: ${id}\nevent: message\ndata: ${json}\n\n`);
  }

  /** An event with an id and no message (2025-11-25), so that the client holds an id to resume from at once. */
  prime(id: string): void {
    this.#write(`id: ${id}\ndata: \n\n`);
  }

  end(): void {
    if (!this.#open) return;
    this.#res.end();
    this.#closed();
  }

  #write(text: string): boolean {
    if (!this.#open) return false;
    this.#res.write(text);
    return true;
  }

  #closed(): void {
    if (!this.#open) return;
    this.#open = false;
    clearInterval(this.#keepalive);
    this.onClose?.();
  }
}
