import * as jsonc from 'jsonc-parser';
import type { ConfigDiagnostic } from './diagnostic.ts';
import { ConfigDocument } from './document.ts';
import { semanticDiagnostics, type ConfigFacts } from './rules.ts';
import { schemaDiagnostics } from './schemaCheck.ts';
import type { ConfigFile } from './types.ts';

export interface CheckResult {
  document: ConfigDocument;
  diagnostics: ConfigDiagnostic[];
  /** The config, when it has no errors (warnings and hints allowed). */
  config: ConfigFile | undefined;
}

function byPosition(diagnostics: ConfigDiagnostic[]): ConfigDiagnostic[] {
  return diagnostics.sort((a, b) => a.range.start.line - b.range.start.line || a.range.start.character - b.range.start.character);
}

function syntaxMessage(error: jsonc.ParseError): string {
  const what = jsonc.printParseErrorCode(error.error).replace(/([a-z])([A-Z])/g, '$1 $2').toLowerCase();
  return `JSON syntax: ${what}`;
}

/**
 * Checks a config's text: JSONC syntax, then the schema, then the rules a schema cannot express.
 * One function for `paygate-mcp validate`, the editor's diagnostics and the gate's start-up.
 */
export function checkConfig(text: string, facts: ConfigFacts = {}): CheckResult {
  const document = new ConfigDocument(text);
  if (document.syntaxErrors.length > 0) {
    const diagnostics = document.syntaxErrors.map((error) => ({
      code: 'syntax',
      severity: 'error' as const,
      message: syntaxMessage(error),
      range: document.range(error.offset, Math.max(1, error.length)),
    }));
    return { document, diagnostics, config: undefined };
  }
  const value = document.value();
  const schema = schemaDiagnostics(document, value);
  if (!schema.valid) return { document, diagnostics: byPosition(schema.diagnostics), config: undefined };
  const config = value as ConfigFile;
  const diagnostics = byPosition(semanticDiagnostics(document, config, facts));
  return { document, diagnostics, config: diagnostics.some((d) => d.severity === 'error') ? undefined : config };
}
