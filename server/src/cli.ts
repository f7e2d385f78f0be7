#!/usr/bin/env node
import { UserFacingError } from './errors.ts';
import { MAIN_HELP } from './cli/help.ts';
import { VERSION } from './version.ts';

/** Each command is loaded when it runs: `validate` and `--version` need not load the gate. */
async function main(argv: string[]): Promise<number | undefined> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'wrap':
      return (await import('./cli/wrap.ts')).runWrap(rest);
    case 'validate':
      return (await import('./cli/validate.ts')).runValidate(rest);
    case 'demo':
      await (await import('./cli/demo.ts')).runDemo(rest);
      return undefined;
    case 'keys':
      return (await import('./cli/keys.ts')).runKeys(rest);
    case 'usage':
      return (await import('./cli/usageExport.ts')).runUsage(rest);
    case 'redis':
      return (await import('./cli/redis.ts')).runRedis(rest);
    case 'lsp':
      return (await import('./cli/lsp.ts')).runLsp(rest);
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
      throw new UserFacingError(`unknown command "${command}"; the commands are wrap, validate, demo, keys, usage, redis, lsp (see paygate-mcp --help)`, 2);
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code !== undefined) process.exitCode = code;
  },
  (error: unknown) => {
    const known = error instanceof UserFacingError;
    process.stderr.write(`paygate-mcp: ${known ? error.message : error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(known ? error.exitCode : 1);
  },
);
