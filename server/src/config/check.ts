import type { ConfigDiagnostic, Finding } from './diagnostic.ts';
import { ConfigDocument } from './document.ts';
import { semanticFindings, type ConfigFacts } from './rules.ts';
import { schemaFindings } from './schemaCheck.ts';
import type { ConfigFile } from './types.ts';

export interface CheckResult {
  document: ConfigDocument;
  diagnostics: ConfigDiagnostic[];
  /** The config, when it has no errors (warnings and hints allowed). */
  config: ConfigFile | undefined;
}

/** Findings with their ranges (found in one scan of the text), in the order they appear. */
function located(document: ConfigDocument, findings: readonly Finding[]): ConfigDiagnostic[] {
  const ranges = document.ranges(findings.map((finding) => finding.place));
  return findings
    .map(({ place: _place, ...finding }, index) => ({ ...finding, range: ranges[index]! }))
    .sort((a, b) => a.range.start.line - b.range.start.line || a.range.start.character - b.range.start.character);
}

/**
 * Checks a config's text: JSONC syntax, then the schema, then the rules a schema cannot express.
 * One function for `paygate-mcp validate`, the editor's diagnostics and the gate's start-up.
 */
export function checkConfig(text: string, facts: ConfigFacts = {}): CheckResult {
  return checkDocument(new ConfigDocument(text), facts);
}

export function checkDocument(document: ConfigDocument, facts: ConfigFacts = {}): CheckResult {
  if (document.syntaxErrors.length > 0) {
    const diagnostics = document.syntaxErrors.map((error) => ({
      code: 'syntax',
      severity: 'error' as const,
      message: error.message,
      range: document.range(error.offset, error.length),
    }));
    return { document, diagnostics, config: undefined };
  }
  const value = document.value();
  const schema = schemaFindings(document, value);
  if (!schema.valid) return { document, diagnostics: located(document, schema.findings), config: undefined };
  const config = value as ConfigFile;
  const diagnostics = located(document, semanticFindings(config, facts));
  return { document, diagnostics, config: diagnostics.some((d) => d.severity === 'error') ? undefined : config };
}
