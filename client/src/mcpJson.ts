import { parse, printParseErrorCode, type ParseError } from 'jsonc-parser';
import type { StdioServer } from '../../server/src/lsp/protocol.ts';
import { isObject } from '../../server/src/proxy/jsonrpc.ts';

/** A stdio server of `.vscode/mcp.json`, before its `${...}` variables are resolved. */
export interface DeclaredServer {
  name: string;
  command: string;
  args: string[];
  env: Record<string, string>;
  envFile: string | undefined;
  cwd: string | undefined;
}

/** An entry of `inputs`: asked of the user when a server refers to it as `${input:id}`. */
export interface DeclaredInput {
  id: string;
  type: 'promptString' | 'pickString';
  description: string;
  password: boolean;
  options: string[];
  default: string | undefined;
}

export interface McpJson {
  servers: DeclaredServer[];
  inputs: DeclaredInput[];
  /** Entries that cannot be gated here (remote servers, malformed entries), with why. */
  skipped: string[];
}

const strings = (value: unknown): string[] => (Array.isArray(value) ? value.filter((item): item is string => typeof item === 'string') : []);
const stringMap = (value: unknown): Record<string, string> =>
  isObject(value) ? Object.fromEntries(Object.entries(value).filter((entry): entry is [string, string] => typeof entry[1] === 'string')) : {};

/** Reads `.vscode/mcp.json` (JSONC). Throws with the position of a syntax error. */
export function parseMcpJson(text: string): McpJson {
  const errors: ParseError[] = [];
  const value: unknown = parse(text, errors, { allowTrailingComma: true });
  if (errors.length > 0) throw new Error(`.vscode/mcp.json is not valid JSON: ${printParseErrorCode(errors[0]!.error)} at offset ${errors[0]!.offset}`);
  const root = isObject(value) ? value : {};
  const servers: DeclaredServer[] = [];
  const skipped: string[] = [];
  for (const [name, entry] of Object.entries(isObject(root.servers) ? root.servers : {})) {
    if (!isObject(entry)) {
      skipped.push(`${name}: not an object`);
    } else if (typeof entry.command !== 'string' || entry.command === '') {
      skipped.push(`${name}: ${typeof entry.url === 'string' ? 'a remote server (url); only stdio servers are gated from mcp.json' : 'no command'}`);
    } else {
      servers.push({
        name,
        command: entry.command,
        args: strings(entry.args),
        env: stringMap(entry.env),
        envFile: typeof entry.envFile === 'string' ? entry.envFile : undefined,
        cwd: typeof entry.cwd === 'string' ? entry.cwd : undefined,
      });
    }
  }
  const inputs: DeclaredInput[] = (Array.isArray(root.inputs) ? root.inputs : []).filter(isObject).flatMap((input): DeclaredInput[] =>
    typeof input.id === 'string'
      ? [
          {
            id: input.id,
            type: input.type === 'pickString' ? 'pickString' : 'promptString',
            description: typeof input.description === 'string' ? input.description : input.id,
            password: input.password === true,
            options: strings(input.options),
            default: typeof input.default === 'string' ? input.default : undefined,
          },
        ]
      : [],
  );
  return { servers, inputs, skipped };
}

const VARIABLE = /\$\{([^}]+)\}/g;

function texts(server: DeclaredServer): string[] {
  return [server.command, ...server.args, ...Object.values(server.env), server.envFile ?? '', server.cwd ?? ''];
}

/** The ids of the inputs (`${input:id}`) a server refers to, each once, in order. */
export function inputsOf(server: DeclaredServer): string[] {
  const ids = new Set<string>();
  for (const text of texts(server)) for (const match of text.matchAll(VARIABLE)) if (match[1]!.startsWith('input:')) ids.add(match[1]!.slice('input:'.length));
  return [...ids];
}

/**
 * Replaces `${...}` variables as VS Code does for mcp.json: `workspaceFolder`, `workspaceFolderBasename`,
 * `userHome`, `pathSeparator` (or `/`), `env:NAME` and `input:id`, the last from `variable`.
 * Throws naming a variable it does not know.
 */
export function substitute(text: string, variable: (name: string) => string | undefined): string {
  return text.replace(VARIABLE, (whole, name: string) => {
    const value = variable(name);
    if (value === undefined) throw new Error(`${whole} cannot be resolved here`);
    return value;
  });
}

/** The server with its variables resolved, ready to gate once its env file (if any) is read into `env`. */
export function resolveServer(server: DeclaredServer, variable: (name: string) => string | undefined): StdioServer & { envFile: string | undefined } {
  const resolve = (text: string) => substitute(text, variable);
  return {
    name: prefixOf(server.name),
    command: resolve(server.command),
    args: server.args.map(resolve),
    env: Object.fromEntries(Object.entries(server.env).map(([name, value]) => [name, resolve(value)])),
    envFile: server.envFile === undefined ? undefined : resolve(server.envFile),
    ...(server.cwd === undefined ? {} : { cwd: resolve(server.cwd) }),
  };
}

/** The prefix a server's tools get when several are gated together: its name, without characters a prefix cannot have. */
export function prefixOf(name: string): string {
  return name.replace(/[^A-Za-z0-9_-]+/g, '-') || 'server';
}
