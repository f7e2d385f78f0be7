import { DEFAULTS } from '../config/types.ts';
import { importKeys, parseKeyImport } from '../keys/import.ts';
import { openSqliteLedger } from '../store/sqliteLedger.ts';
import { parseFlags, readInputFile, UsageError } from './args.ts';

/** `paygate-mcp keys import FILE`: adds the keys in FILE to a state file (not while a gate is using it). */
export async function runKeys(argv: string[]): Promise<number> {
  const { values, positionals } = parseFlags(argv, { 'state-file': { type: 'string' }, help: { type: 'boolean', short: 'h' } }, true);
  const [action, file, ...rest] = positionals;
  if (values.help || action === undefined) {
    process.stdout.write('Usage: paygate-mcp keys import FILE [--state-file F]\n  FILE: JSON lines of key records, or a paygate-mcp 2.x state file\n');
    return values.help ? 0 : 2;
  }
  if (action !== 'import') throw new UsageError(`unknown keys command "${action}"; the keys command is: import`);
  if (file === undefined) throw new UsageError('keys import needs the FILE to import');
  if (rest.length > 0) throw new UsageError(`unexpected argument "${rest[0]}"`);
  const text = readInputFile(file);
  const parsed = parseKeyImport(text, Date.now());
  if (parsed.errors.length > 0) {
    process.stderr.write(`paygate-mcp: nothing was imported; fix these in ${file}:\n${parsed.errors.map((line) => `  ${line}\n`).join('')}`);
    return 1;
  }
  const ledger = openSqliteLedger(values['state-file'] ?? DEFAULTS.stateFile);
  try {
    const outcome = await importKeys(ledger, parsed.keys);
    process.stdout.write(`imported ${outcome.imported} key(s); ${outcome.skipped} already present and left unchanged\n`);
    if (parsed.ignoredFields.length > 0) process.stdout.write(`fields PayGate does not use were ignored: ${parsed.ignoredFields.join(', ')}\n`);
  } finally {
    await ledger.close();
  }
  return 0;
}
