import { parse, printParseErrorCode, type ParseError } from 'jsonc-parser';
import type { BatchCallParams, BatchOutcome } from '../../server/src/lsp/protocol.ts';
import { isObject } from '../../server/src/proxy/jsonrpc.ts';
import { plural } from './words.ts';

export type BatchCall = BatchCallParams['calls'][number];

function placeholder(schema: unknown): unknown {
  if (!isObject(schema)) return '';
  if (schema.default !== undefined) return schema.default;
  if (Array.isArray(schema.examples) && schema.examples.length > 0) return schema.examples[0];
  if (Array.isArray(schema.enum) && schema.enum.length > 0) return schema.enum[0];
  switch (Array.isArray(schema.type) ? schema.type[0] : schema.type) {
    case 'integer':
    case 'number':
      return 0;
    case 'boolean':
      return false;
    case 'array':
      return [];
    case 'object':
      return {};
    default:
      return '';
  }
}

/** Arguments to start editing from: every required argument of the tool's input schema, with a value of its type. */
export function argumentSkeleton(inputSchema: Record<string, unknown> | undefined): Record<string, unknown> {
  const properties = isObject(inputSchema?.properties) ? inputSchema.properties : {};
  const required = Array.isArray(inputSchema?.required) ? inputSchema.required.filter((name): name is string => typeof name === 'string') : [];
  return Object.fromEntries(required.map((name) => [name, placeholder(properties[name])]));
}

/** What is wrong with text typed as a call's arguments, or undefined when it is a JSON object. */
export function argumentsProblem(text: string): string | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return isObject(value) ? undefined : 'the arguments must be a JSON object, such as {"query": "pricing"}';
  } catch (error) {
    return `not valid JSON: ${(error as Error).message}`;
  }
}

/** The text of a new `*.batch.json` file for the given calls. */
export function batchFileText(calls: readonly BatchCall[]): string {
  return `${JSON.stringify({ calls }, null, 2)}\n`;
}

/** The calls of a `*.batch.json` file (`{"calls": [{"name", "arguments"}]}`, JSONC), or what is wrong with it. */
export function parseBatchFile(text: string): { calls: BatchCall[] } | { problem: string } {
  const errors: ParseError[] = [];
  const value: unknown = parse(text, errors, { allowTrailingComma: true });
  if (errors.length > 0) return { problem: `the file is not valid JSON: ${printParseErrorCode(errors[0]!.error)} at offset ${errors[0]!.offset}` };
  const calls = isObject(value) ? value.calls : undefined;
  if (!Array.isArray(calls) || calls.length === 0) return { problem: 'a batch file needs "calls": a non-empty array of {"name", "arguments"}' };
  const parsed: BatchCall[] = [];
  for (const [index, call] of calls.entries()) {
    if (!isObject(call) || typeof call.name !== 'string' || call.name === '') return { problem: `calls[${index}] needs "name": the tool to call` };
    if (call.arguments !== undefined && !isObject(call.arguments)) return { problem: `calls[${index}].arguments must be an object` };
    parsed.push(call.arguments === undefined ? { name: call.name } : { name: call.name, arguments: call.arguments });
  }
  return { calls: parsed };
}

function resultText(result: Record<string, unknown>): string {
  const content = Array.isArray(result.content) ? result.content : [];
  const texts = content.filter(isObject).map((part) => (part.type === 'text' && typeof part.text === 'string' ? part.text : `[${String(part.type)} content]`));
  if (texts.length > 0) return texts.join('\n');
  return JSON.stringify(result.structuredContent ?? result, null, 2);
}

function fenced(text: string): string {
  const fence = '`'.repeat(Math.max(3, ...[...text.matchAll(/`+/g)].map((run) => run[0].length + 1)));
  return `${fence}\n${text}\n${fence}`;
}

const cell = (text: string) => text.replace(/\|/g, '\\|').replace(/\s+/g, ' ');

/** A readable report of a batch: what each call returned and cost, the total, and what is left. */
export function batchReport(calls: readonly BatchCall[], outcome: BatchOutcome, keyLabel: string): string {
  const lines = ['# PayGate batch result', ''];
  if (!outcome.ok) {
    lines.push(`**Refused: nothing ran and nothing was charged.** (key: ${keyLabel})`, '', `> ${outcome.message} (JSON-RPC error ${outcome.code})`, '');
    lines.push('| # | tool |', '|---|---|', ...calls.map((call, index) => `| ${index} | ${cell(call.name)} |`));
    return `${lines.join('\n')}\n`;
  }
  lines.push(
    `Key: ${keyLabel} · ${plural(outcome.results.length, 'call')} · **${plural(outcome.totalCreditsCharged, 'credit')} charged** · ${outcome.remainingCredits ?? 'unknown'} credits left`,
    '',
    '| # | tool | credits | outcome |',
    '|---|---|---|---|',
  );
  outcome.results.forEach((item, index) => {
    const failed = item.error !== undefined || item.result?.isError === true;
    const summary = item.error ? `error ${item.error.code}: ${item.error.message}` : failed ? 'tool reported an error' : 'ok';
    lines.push(`| ${index} | ${cell(item.tool)} | ${item.creditsCharged} | ${cell(summary)} |`);
  });
  outcome.results.forEach((item, index) => {
    lines.push('', `## ${index}. ${item.tool} — ${plural(item.creditsCharged, 'credit')}`, '');
    const args = calls[index]?.arguments;
    if (args && Object.keys(args).length > 0) lines.push(`Arguments: \`${JSON.stringify(args)}\``, '');
    lines.push(fenced(item.error ? item.error.message : resultText(item.result ?? {})));
  });
  return `${lines.join('\n')}\n`;
}
