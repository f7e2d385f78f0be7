import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';

/** How much of a refused request's body is read (and discarded) before its connection closes anyway, and for how long. */
const LINGER_BYTES = 64 * 1024 * 1024;
const LINGER_MS = 10_000;

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: OutgoingHttpHeaders = {}): void {
  const payload = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload), ...headers });
  if (headers.connection === 'close' && !res.req.complete) endAfterBody(res, payload);
  else res.end(payload);
}

/**
 * Sends the whole answer at once, but closes the connection only once the client has sent the rest
 * of its body (read and discarded, up to LINGER_BYTES or LINGER_MS). Closing a socket with unread
 * data resets the connection, and a client still sending would never read the answer.
 */
function endAfterBody(res: ServerResponse, payload: string): void {
  const req = res.req;
  let discarded = 0;
  const end = () => {
    clearTimeout(timer);
    req.off('data', onData);
    req.off('end', end);
    res.end();
  };
  const onData = (chunk: Buffer) => {
    discarded += chunk.length;
    if (discarded > LINGER_BYTES) end();
  };
  const timer = setTimeout(end, LINGER_MS).unref();
  res.once('close', () => clearTimeout(timer));
  res.write(payload);
  req.on('data', onData);
  req.once('end', end);
  req.resume();
}

/** An admin-API or plain-HTTP error: `{ "error": "what to fix" }`. */
export function sendError(res: ServerResponse, status: number, message: string, headers: OutgoingHttpHeaders = {}): void {
  sendJson(res, status, { error: message }, headers);
}

export function sendText(res: ServerResponse, status: number, body: string, headers: OutgoingHttpHeaders): void {
  res.writeHead(status, { 'content-length': Buffer.byteLength(body), ...headers });
  res.end(body);
}

/** An HTTP failure with its status, thrown by request parsing and caught at the edge. */
export class HttpError extends Error {
  readonly status: number;
  readonly headers: OutgoingHttpHeaders;

  constructor(status: number, message: string, headers: OutgoingHttpHeaders = {}) {
    super(message);
    this.status = status;
    this.headers = headers;
  }
}
