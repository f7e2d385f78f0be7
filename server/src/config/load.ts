import fs from 'node:fs';
import * as jsonc from 'jsonc-parser';
import schema from '../../../schemas/paygate.schema.json' with { type: 'json' };
import type { ValidateFunction } from 'ajv/dist/2020.js';
import { ajv, explain } from '../validation/ajv.ts';
import type { ConfigFile } from './types.ts';

let compiled: ValidateFunction<ConfigFile> | undefined;

/** Compiled on first use: commands that read no config should not pay for it. */
function validateConfig(value: unknown): value is ConfigFile {
  compiled ??= ajv.compile<ConfigFile>(schema);
  return compiled(value);
}

/** A config file that cannot be used; `problems` are `line:column message` lines. */
export class ConfigError extends Error {
  readonly problems: string[];

  constructor(file: string, problems: string[]) {
    super(`${file} is not a valid PayGate config:\n${problems.map((problem) => `  ${file}:${problem}`).join('\n')}`);
    this.problems = problems;
  }
}

function position(text: string, offset: number): string {
  const before = text.slice(0, offset).split('\n');
  return `${before.length}:${before.at(-1)!.length + 1}`;
}

/** Where the value at a JSON pointer (`/toolPricing/search`) starts in the text. */
function offsetOf(tree: jsonc.Node | undefined, pointer: string): number {
  if (!tree) return 0;
  const path = pointer
    .split('/')
    .slice(1)
    .map((part) => part.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((part) => (/^\d+$/.test(part) ? Number(part) : part));
  for (let length = path.length; length >= 0; length--) {
    const node = jsonc.findNodeAtLocation(tree, path.slice(0, length));
    if (node) return node.parent?.type === 'property' && node.parent.children?.[1] === node ? node.parent.offset : node.offset;
  }
  return 0;
}

/** Parses JSONC text (comments and trailing commas allowed) and checks it against the schema. */
export function parseConfig(file: string, text: string): ConfigFile {
  const syntax: jsonc.ParseError[] = [];
  const tree = jsonc.parseTree(text, syntax, { allowTrailingComma: true, disallowComments: false });
  if (syntax.length > 0) {
    throw new ConfigError(file, syntax.map((error) => `${position(text, error.offset)} syntax error: ${jsonc.printParseErrorCode(error.error)}`));
  }
  const value: unknown = tree ? jsonc.getNodeValue(tree) : undefined;
  if (!validateConfig(value)) {
    const problems = (compiled!.errors ?? []).map((error) => {
      const [line] = explain([error], 'config');
      return `${position(text, offsetOf(tree, error.instancePath))} ${line}`;
    });
    throw new ConfigError(file, [...new Set(problems)]);
  }
  return value;
}

export function loadConfigFile(file: string): ConfigFile {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigError(file, [`1:1 cannot read the file: ${(error as Error).message}`]);
  }
  return parseConfig(file, text);
}
