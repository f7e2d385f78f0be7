import { WRAP_HELP } from './help.ts';
import { parseWrapFlags, resolveSettings } from './args.ts';
import { runDryRun } from './dryRun.ts';
import { runGate } from './run.ts';

/** `paygate-mcp wrap`: the gate in the foreground, or with --dry-run a look at what it would serve. */
export async function runWrap(argv: string[]): Promise<number | undefined> {
  const flags = parseWrapFlags(argv);
  if (flags.help) {
    process.stdout.write(WRAP_HELP);
    return 0;
  }
  const note = (line: string) => process.stderr.write(`paygate: ${line}\n`);
  if (flags['dry-run']) return runDryRun(resolveSettings(flags), flags.config);
  const readAt = Date.now();
  const settings = resolveSettings(flags, { notes: note });
  await runGate(settings, {
    showAdminKey: flags['show-admin-key'] ?? false,
    ...(flags.config === undefined ? {} : { reload: { file: flags.config, readAt, settings: () => resolveSettings(flags, { notes: note }) } }),
  });
  return undefined;
}
