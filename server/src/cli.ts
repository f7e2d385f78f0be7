#!/usr/bin/env node
import { ConfigError } from './config/load.ts';
import { StartError } from './service.ts';
import { StateFileError } from './store/open.ts';
import { parseWrapFlags, resolveSettings, UsageError } from './cli/args.ts';
import { runDemo } from './cli/demo.ts';
import { MAIN_HELP, WRAP_HELP } from './cli/help.ts';
import { runKeys } from './cli/keys.ts';
import { runGate } from './cli/run.ts';
import { VERSION } from './version.ts';

async function main(argv: string[]): Promise<number | undefined> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'wrap': {
      const flags = parseWrapFlags(rest);
      if (flags.help) {
        process.stdout.write(WRAP_HELP);
        return 0;
      }
      await runGate(resolveSettings(flags), { showAdminKey: flags['show-admin-key'] ?? false });
      return undefined;
    }
    case 'demo':
      await runDemo(rest);
      return undefined;
    case 'keys':
      return runKeys(rest);
    case 'version':
    case '--version':
    case '-v':
      process.stdout.write(`paygate-mcp ${VERSION}\n`);
      return 0;
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(MAIN_HELP);
      return command === undefined ? 2 : 0;
    default:
      throw new UsageError(`unknown command "${command}"; the commands are wrap, demo, keys (see paygate-mcp --help)`);
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code !== undefined) process.exitCode = code;
  },
  (error: unknown) => {
    if (error instanceof UsageError) {
      process.stderr.write(`paygate-mcp: ${error.message}\n`);
      process.exit(2);
    }
    const known = error instanceof ConfigError || error instanceof StateFileError || error instanceof StartError;
    process.stderr.write(`paygate-mcp: ${known ? (error as Error).message : ((error as Error).stack ?? String(error))}\n`);
    process.exit(1);
  },
);
