import * as jsonc from 'jsonc-parser';
import { CompletionItemKind, MarkupKind, type CompletionItem, type Hover, type Position } from 'vscode-languageserver/node';
import type { ConfigDocument } from '../config/document.ts';
import { DEFAULTS, type ConfigFile } from '../config/types.ts';
import { toolPricing } from '../gate/pricing.ts';

/** Where in a config the cursor names a tool: a `toolPricing` key, or an item of a key's ACL lists. */
function toolSlot(location: jsonc.Location): 'price' | 'acl' | undefined {
  const [first, , third] = location.path;
  if (first === 'toolPricing' && location.path.length === 2 && location.isAtPropertyKey) return 'price';
  if (first === 'importKeys' && (third === 'allowedTools' || third === 'deniedTools') && location.path.length === 4) return 'acl';
  return undefined;
}

/** Tool names the running gate offers, at a place that takes one; nothing when the list is not known. */
export function completeTools(document: ConfigDocument, position: Position, config: ConfigFile | undefined, tools: ReadonlySet<string> | undefined): CompletionItem[] {
  if (!tools) return [];
  const offset = document.offset(position);
  const location = jsonc.getLocation(document.text, offset);
  const slot = toolSlot(location);
  if (!slot) return [];
  const node = location.previousNode;
  const replace = node && node.type === 'string' && node.offset <= offset && offset <= node.offset + node.length ? document.range(node.offset, node.length) : { start: position, end: position };
  const priced = new Set(Object.keys(config?.toolPricing ?? {}));
  return [...tools]
    .filter((name) => slot === 'acl' || !priced.has(name))
    .map((name) => ({ label: name, kind: slot === 'price' ? CompletionItemKind.Property : CompletionItemKind.Value, detail: 'offered by the running gate', textEdit: { range: replace, newText: JSON.stringify(name) } }));
}

/** A tool's effective price and limits, for the name under the cursor. */
export function describeTool(document: ConfigDocument, position: Position, config: ConfigFile | undefined, tools: ReadonlySet<string> | undefined): Hover | null {
  if (!config) return null;
  const location = jsonc.getLocation(document.text, document.offset(position));
  const node = location.previousNode;
  const onKey = location.path[0] === 'toolPricing' && location.path.length >= 2 && typeof location.path[1] === 'string';
  const name = onKey ? String(location.path[1]) : toolSlot(location) === 'acl' && node?.type === 'string' ? String(node.value) : undefined;
  if (name === undefined) return null;
  const global = config.globalRateLimitPerMin ?? DEFAULTS.globalRateLimitPerMin;
  const { creditsPerCall: price, creditsPerKbInput, rateLimitPerMin } = toolPricing(
    {
      defaultCreditsPerCall: config.defaultCreditsPerCall ?? DEFAULTS.defaultCreditsPerCall,
      toolPricing: config.toolPricing ?? {},
      globalRateLimitPerMin: global,
      globalQuota: null,
      shadowMode: false,
    },
    name,
  );
  const limit = rateLimitPerMin === 0 ? 'no rate limit' : `${rateLimitPerMin} calls a minute per key (${rateLimitPerMin === global ? 'the global limit' : 'its own limit'})`;
  const lines = [
    `**${name}**`,
    '',
    `- ${price === 0 ? 'free' : `${price} credit${price === 1 ? '' : 's'} a call`}${creditsPerKbInput ? `, plus ${creditsPerKbInput} per started KiB of arguments` : ''}`,
    `- ${limit}`,
    tools ? `- ${tools.has(name) ? 'offered' : '**not offered**'} by the running gate` : '- no running gate for this config: its tools are not known',
  ];
  return { contents: { kind: MarkupKind.Markdown, value: lines.join('\n') } };
}
