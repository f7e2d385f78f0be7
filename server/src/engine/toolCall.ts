import { isObject, type JsonObject } from '../proxy/jsonrpc.ts';

/** A tool call as a client asked for it, before anything is looked up. */
export interface ToolCall {
  name: string;
  arguments: JsonObject | undefined;
  /** The params as the client sent them (with `_meta` and the rest), for the server. */
  params: JsonObject;
}

/** Why a call's params are refused: the rule they break, in words, and a reason for `error.data`. */
export interface CallProblem {
  problem: string;
  reason: 'invalid_params' | 'invalid_tool_name';
}

export const MAX_TOOL_NAME_LENGTH = 128;

/**
 * MCP's tool-name rule (2025-11-25): 1 to 128 characters from A–Z, a–z, 0–9, `_`, `-` and `.`; the
 * gate adds `:`, which joins a server's prefix to its tools' names.
 */
const TOOL_NAME = /^[A-Za-z0-9_.:-]{1,128}$/;
const OUTSIDE_ALPHABET = /[^A-Za-z0-9_.:-]/;

export const TOOL_NAME_RULE = `a tool name has 1 to ${MAX_TOOL_NAME_LENGTH} characters from A-Z, a-z, 0-9, "_", "-", "." and ":" (between a server's prefix and the tool's name)`;

/** What is wrong with a tool name, or undefined when it follows the rule. Never throws. */
export function toolNameProblem(name: string): string | undefined {
  if (TOOL_NAME.test(name)) return undefined;
  if (name === '') return `it is empty: ${TOOL_NAME_RULE}`;
  const outside = OUTSIDE_ALPHABET.exec(name);
  if (outside) return `it has ${JSON.stringify(outside[0])} at position ${outside.index}: ${TOOL_NAME_RULE}`;
  return `it is ${name.length} characters long: ${TOOL_NAME_RULE}`;
}

/**
 * Checks one call's name and arguments, naming the field (`params` for `tools/call`,
 * `params.calls[3]` in a batch). Nothing is looked up: a malformed call is refused before its key is.
 */
export function parseToolCall(value: unknown, field: string): ToolCall | CallProblem {
  if (!isObject(value)) return { problem: `${field} must be an object {name, arguments}`, reason: 'invalid_params' };
  const { name } = value;
  if (typeof name !== 'string') return { problem: `${field}.name must be the tool's name, as a string`, reason: 'invalid_params' };
  const nameProblem = toolNameProblem(name);
  if (nameProblem !== undefined) return { problem: `${field}.name is not a valid tool name: ${nameProblem}`, reason: 'invalid_tool_name' };
  if (value.arguments !== undefined && !isObject(value.arguments)) {
    return { problem: `${field}.arguments must be an object of named arguments`, reason: 'invalid_params' };
  }
  return { name, arguments: value.arguments, params: value };
}
