import fs from 'node:fs';
import { UserFacingError } from '../errors.ts';
import { checkConfig } from './check.ts';
import { formatDiagnostic } from './diagnostic.ts';
import type { ConfigFile } from './types.ts';

/** A config file that cannot be used; `problems` are `file:line:col severity code message` lines. */
export class ConfigError extends UserFacingError {
  readonly problems: string[];

  constructor(file: string, problems: string[]) {
    super(`${file} is not a valid PayGate config:\n${problems.map((problem) => `  ${problem}`).join('\n')}`);
    this.problems = problems;
  }
}

export interface LoadedConfig {
  config: ConfigFile;
  /** Warnings and hints, formatted: the config is usable, but they deserve a look. */
  notes: string[];
}

/** Reads and checks a config file (JSONC); throws a `ConfigError` listing every error with its position. */
export function loadConfigFile(file: string): LoadedConfig {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigError(file, [`${file}:1:1 error unreadable cannot read the file: ${(error as Error).message}`]);
  }
  const { config, diagnostics } = checkConfig(text);
  const lines = (severity: string) => diagnostics.filter((d) => d.severity === severity).map((d) => formatDiagnostic(file, d));
  if (!config) throw new ConfigError(file, lines('error'));
  return { config, notes: lines('warning') };
}
