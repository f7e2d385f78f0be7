import path from 'node:path';
import { checkConfig, checkDocument } from '../config/check.ts';
import { formatDiagnostic } from '../config/diagnostic.ts';
import { configFacts } from '../config/facts.ts';
import { parseFlags, readInputFile, UsageError } from './args.ts';

/**
 * `paygate-mcp validate --config FILE [--json]`: every problem of the config, one per line
 * (`file:line:col severity code message`) or as JSON. Exit 0 when it has no errors, 1 when it has.
 */
export async function runValidate(argv: string[]): Promise<number> {
  const { values } = parseFlags(argv, { config: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } });
  if (values.help) {
    process.stdout.write('Usage: paygate-mcp validate --config FILE [--json]\n  exit 0: no errors (warnings and hints may be printed); exit 1: errors\n');
    return 0;
  }
  if (values.config === undefined) throw new UsageError('validate needs --config FILE');
  const file = values.config;
  const text = readInputFile(file);
  const first = checkConfig(text);
  // Only a config that passed the schema has an environment and a gate worth asking about.
  const { diagnostics } = first.config ? checkDocument(first.document, await configFacts(first.config, process.cwd())) : first;
  if (values.json) {
    const rows = diagnostics.map((d) => ({
      file: path.resolve(file),
      line: d.range.start.line + 1,
      column: d.range.start.character + 1,
      endLine: d.range.end.line + 1,
      endColumn: d.range.end.character + 1,
      severity: d.severity,
      code: d.code,
      message: d.message,
      ...(d.fix ? { fix: d.fix.title } : {}),
    }));
    process.stdout.write(`${JSON.stringify({ valid: !diagnostics.some((d) => d.severity === 'error'), diagnostics: rows }, null, 2)}\n`);
  } else {
    for (const diagnostic of diagnostics) process.stdout.write(`${formatDiagnostic(file, diagnostic)}\n`);
    const errors = diagnostics.filter((d) => d.severity === 'error').length;
    if (errors === 0) process.stdout.write(`${file}: valid${diagnostics.length ? ` (${diagnostics.length} note${diagnostics.length === 1 ? '' : 's'})` : ''}\n`);
  }
  return diagnostics.some((d) => d.severity === 'error') ? 1 : 0;
}

