import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { createMcpServer, type ServerOptions } from './createServer.ts';

/** Serves one client over stdin/stdout; exits once stdin ends and the answers are written, or on SIGINT/SIGTERM. */
export async function runStdio(options: ServerOptions): Promise<void> {
  const server = createMcpServer(options);
  const transport = new StdioServerTransport();
  await server.connect(transport);

  // Count requests in flight, so that when stdin ends (e.g. requests piped from a file)
  // their answers are still written before the process exits.
  let inFlight = 0;
  let stdinEnded = false;
  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    void server
      .close()
      .catch(() => undefined)
      .finally(() => process.exit(0));
    setTimeout(() => process.exit(0), 2000).unref();
  };
  const onMessage = transport.onmessage;
  transport.onmessage = (message) => {
    if ('method' in message && 'id' in message) inFlight++;
    onMessage?.(message);
  };
  const send = transport.send.bind(transport);
  transport.send = async (message) => {
    await send(message);
    if (!('method' in message) && 'id' in message) {
      inFlight = Math.max(0, inFlight - 1);
      if (stdinEnded && inFlight === 0) stop();
    }
  };
  process.stdin.once('end', () => {
    stdinEnded = true;
    if (inFlight === 0) {
      stop();
      return;
    }
    // Give pending calls a bounded time to finish (a pending sampling or elicitation request
    // can never be answered once stdin is closed).
    setTimeout(stop, 10_000).unref();
  });
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
