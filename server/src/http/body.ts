import type { IncomingMessage } from 'node:http';
import { HttpError } from './respond.ts';

/**
 * Reads a request body of at most `limit` bytes. Past the limit it stops keeping what arrives and
 * throws a 413 that closes the connection, once the client has sent the rest (see `sendJson`), so
 * that the client can read it.
 */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) {
    return Promise.reject(new HttpError(413, `the request body is ${declared} bytes; the limit is ${limit}`, { connection: 'close' }));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.off('data', onData);
        req.off('end', onEnd);
        reject(new HttpError(413, `the request body is larger than the limit of ${limit} bytes`, { connection: 'close' }));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    // on(), not once(): the listeners go with the request, and a settled promise ignores what fires later.
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', (error) => reject(new HttpError(400, `the request body could not be read: ${error.message}`)));
  });
}

/** A body that is not JSON: a 400 that says where it broke (on /mcp, a JSON-RPC parse error). */
export class JsonParseError extends HttpError {}

/** Parses a JSON body. */
export function parseJson(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString('utf8'));
  } catch (error) {
    throw new JsonParseError(400, `the request body is not valid JSON: ${(error as Error).message}`);
  }
}
