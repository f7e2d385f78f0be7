#!/usr/bin/env node
/**
 * PayGate for MCP: bundled example MCP server.
 *
 * A small, self-contained upstream server to put behind the gate. It offers a few
 * cheap and "expensive" demo tools, one resource and one prompt. All data is fake
 * and deterministic, so it is usable in demos and tests without network access.
 *
 * Usage:
 *   node examples/example-server.ts                      stdio (default)
 *   node examples/example-server.ts --http 3001          Streamable HTTP on http://127.0.0.1:3001/mcp
 *   node examples/example-server.ts --conformance [...]  also register the fixtures of the
 *                                                        @modelcontextprotocol/conformance server scenarios
 *
 * In stdio mode nothing but protocol messages is written to stdout; diagnostics go to stderr.
 * `--http 0` picks a free port; the chosen one is printed as `listening on http://127.0.0.1:<port>/mcp`
 * on stderr once the server accepts connections.
 */
import type { ServerOptions } from './server/createServer.ts';
import { runHttp } from './server/http.ts';
import { logError } from './server/logError.ts';
import { runStdio } from './server/stdio.ts';

interface CliOptions extends ServerOptions {
  /** undefined = stdio */
  httpPort: number | undefined;
}

const USAGE = `Usage: example-server.ts [--conformance] [--http <port>]

  --conformance   also register the fixtures used by the @modelcontextprotocol/conformance server scenarios
  --http <port>   serve Streamable HTTP on http://127.0.0.1:<port>/mcp instead of stdio (0 = any free port)
`;

function parseArgs(argv: string[]): CliOptions {
  const options: CliOptions = { conformance: false, httpPort: undefined };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (arg === '--conformance') {
      options.conformance = true;
    } else if (arg === '--http' || arg.startsWith('--http=')) {
      const value = arg === '--http' ? argv[++i] : arg.slice('--http='.length);
      const port = Number(value);
      if (value === undefined || value === '' || !Number.isInteger(port) || port < 0 || port > 65535) {
        throw new Error(`--http needs a port number (0-65535), got ${value === undefined ? 'nothing' : `"${value}"`}`);
      }
      options.httpPort = port;
    } else if (arg === '--help' || arg === '-h') {
      process.stderr.write(USAGE);
      process.exit(0);
    } else {
      throw new Error(`unknown argument "${arg}"`);
    }
  }
  return options;
}

async function main(): Promise<void> {
  let options: CliOptions;
  try {
    options = parseArgs(process.argv.slice(2));
  } catch (error) {
    logError(error instanceof Error ? error.message : String(error));
    process.stderr.write(USAGE);
    process.exit(2);
  }
  if (options.httpPort !== undefined) {
    await runHttp(options, options.httpPort);
  } else {
    await runStdio(options);
  }
}

main().catch((error: unknown) => {
  logError(`fatal: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  process.exit(1);
});
