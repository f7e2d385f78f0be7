import { closest, type ConfigDiagnostic } from './diagnostic.ts';
import type { ConfigDocument, JsonPath } from './document.ts';
import { fieldName } from './schemaCheck.ts';
import { DEFAULTS, type ConfigFile } from './types.ts';

/** What checking a config may know beyond its text; each is absent when it could not be found out. */
export interface ConfigFacts {
  /** The tools the servers offer (a running gate's list, or the servers started by --dry-run). */
  tools?: ReadonlySet<string>;
  /** The configured port is taken on the configured host. */
  portInUse?: boolean;
  /** The configured port is below 1024 and this process may not listen on it. */
  portPrivileged?: boolean;
  /** Why the state file's folder cannot be written, if it cannot. */
  stateDirProblem?: string;
}

interface Context {
  document: ConfigDocument;
  config: ConfigFile;
  facts: ConfigFacts;
  report: (diagnostic: ConfigDiagnostic) => void;
}

/** Fields PayGate reads but does not act on yet: leaving them silent would let users believe they work. */
const NOT_YET = ['webhookUrl', 'webhookSecret', 'webhookMaxRetries', 'alertRules', 'teams', 'oauth', 'redisUrl', 'stripeWebhookSecret'] as const;

/** Tool names the config refers to, with where: prices, and the ACLs of keys it creates. */
function toolReferences(config: ConfigFile): { name: string; path: JsonPath; key: boolean }[] {
  const references: { name: string; path: JsonPath; key: boolean }[] = [];
  for (const name of Object.keys(config.toolPricing ?? {})) references.push({ name, path: ['toolPricing', name], key: true });
  for (const [key, entry] of Object.entries(config.importKeys ?? {})) {
    if (typeof entry !== 'object') continue;
    for (const list of ['allowedTools', 'deniedTools'] as const) {
      (entry[list] ?? []).forEach((name, index) => references.push({ name, path: ['importKeys', key, list, index], key: false }));
    }
  }
  return references;
}

function unknownTools({ document, config, facts, report }: Context): void {
  if (!facts.tools) return;
  for (const { name, path, key } of toolReferences(config)) {
    if (facts.tools.has(name)) continue;
    const suggestion = closest(name, facts.tools);
    report({
      code: 'unknown-tool',
      severity: 'warning',
      message: `no server offers a tool "${name}"${suggestion ? `: did you mean "${suggestion}"?` : ''} (a price or rule for a name nobody calls never applies)`,
      range: key ? document.keyRange(path) : document.valueRange(path),
      ...(suggestion ? { fix: { title: `Change to "${suggestion}"`, edits: [document.replacement(path, suggestion, key)] } } : {}),
    });
  }
}

function serverPrefixes({ document, config, report }: Context): void {
  const seen = new Map<string, number>();
  (config.servers ?? []).forEach((server, index) => {
    const path = ['servers', index, 'prefix'];
    if (server.prefix.includes(':')) {
      report({ code: 'prefix-colon', severity: 'error', message: `the prefix "${server.prefix}" contains ":", which separates a prefix from a tool name: remove it`, range: document.valueRange(path) });
    }
    const first = seen.get(server.prefix);
    if (first !== undefined) {
      report({ code: 'duplicate-prefix', severity: 'error', message: `the prefix "${server.prefix}" is already used by servers[${first}]: every server needs its own`, range: document.valueRange(path) });
    } else seen.set(server.prefix, index);
  });
}

/** The least a call can cost (over priced tools and the default price), ignoring free tools. */
function cheapestPrice(config: ConfigFile): number | undefined {
  const prices = [config.defaultCreditsPerCall ?? DEFAULTS.defaultCreditsPerCall, ...Object.values(config.toolPricing ?? {}).map((rule) => rule.creditsPerCall ?? config.defaultCreditsPerCall ?? DEFAULTS.defaultCreditsPerCall)];
  const paid = prices.filter((price) => price > 0);
  return paid.length ? Math.min(...paid) : undefined;
}

function limitsBelowPrice({ document, config, report }: Context): void {
  const cheapest = cheapestPrice(config);
  if (cheapest === undefined) return;
  const check = (limit: number | undefined, path: JsonPath, what: string) => {
    if (limit === undefined || limit === 0 || limit >= cheapest) return;
    report({
      code: 'limit-below-price',
      severity: 'error',
      message: `${what} of ${limit} is below the cheapest tool price (${cheapest}): no call could ever be made. Raise it, or use 0 for no limit`,
      range: document.valueRange(path),
    });
  };
  for (const field of ['dailyCreditLimit', 'monthlyCreditLimit'] as const) check(config.globalQuota?.[field], ['globalQuota', field], `the global ${field}`);
  for (const [key, entry] of Object.entries(config.importKeys ?? {})) {
    if (typeof entry !== 'object') continue;
    check(entry.spendingLimit, ['importKeys', key, 'spendingLimit'], 'this key\'s spendingLimit');
    for (const field of ['dailyCreditLimit', 'monthlyCreditLimit'] as const) check(entry.quota?.[field], ['importKeys', key, 'quota', field], `this key's ${field}`);
  }
}

function toolLimitsAboveGlobal({ document, config, report }: Context): void {
  const global = config.globalRateLimitPerMin ?? DEFAULTS.globalRateLimitPerMin;
  if (global === 0) return;
  for (const [tool, rule] of Object.entries(config.toolPricing ?? {})) {
    if ((rule.rateLimitPerMin ?? 0) <= global) continue;
    report({
      code: 'tool-limit-above-global',
      severity: 'warning',
      message: `"${tool}" may be called ${rule.rateLimitPerMin} times a minute, but the global limit of ${global} a minute applies first, so this limit never takes effect`,
      range: document.valueRange(['toolPricing', tool, 'rateLimitPerMin']),
    });
  }
}

function aclOverlaps({ document, config, report }: Context): void {
  for (const [key, entry] of Object.entries(config.importKeys ?? {})) {
    if (typeof entry !== 'object' || !entry.allowedTools || !entry.deniedTools) continue;
    entry.deniedTools.forEach((tool, index) => {
      if (!entry.allowedTools!.includes(tool)) return;
      report({
        code: 'acl-overlap',
        severity: 'warning',
        message: `"${tool}" is both allowed and denied for this key: denied wins, so listing it in allowedTools has no effect`,
        range: document.valueRange(['importKeys', key, 'deniedTools', index]),
      });
    });
  }
}

function webhookScheme({ document, config, report }: Context): void {
  if (config.webhookUrl === undefined || /^https?:\/\//i.test(config.webhookUrl)) return;
  report({ code: 'webhook-scheme', severity: 'error', message: 'webhookUrl must be an http:// or https:// URL: events are POSTed to it', range: document.valueRange(['webhookUrl']) });
}

function environment({ document, config, facts, report }: Context): void {
  if (facts.stateDirProblem) {
    report({ code: 'state-dir-not-writable', severity: 'error', message: facts.stateDirProblem, range: document.valueRange(config.stateFile === undefined ? [] : ['stateFile']) });
  }
  const portPath = config.port === undefined ? [] : ['port'];
  if (facts.portPrivileged) {
    report({ code: 'port-privileged', severity: 'warning', message: `port ${config.port} is below 1024: only a privileged user may listen on it; pick one above 1023`, range: document.valueRange(portPath) });
  } else if (facts.portInUse) {
    report({
      code: 'port-in-use',
      severity: 'warning',
      message: `port ${config.port ?? DEFAULTS.port} is already in use on ${config.host ?? DEFAULTS.host} (by this gate, if it is running; otherwise pick another)`,
      range: document.valueRange(portPath),
    });
  }
}

/** The same 0 means "no limit" in one field and "free" or "never" in others: say which. */
function zeroMeanings({ document, config, report }: Context): void {
  const hint = (path: JsonPath, meaning: string) =>
    report({ code: 'zero-meaning', severity: 'hint', message: `${fieldName(path)} is 0, which here means ${meaning}`, range: document.valueRange(path) });
  if (config.globalRateLimitPerMin === 0) hint(['globalRateLimitPerMin'], 'no rate limit at all');
  if (config.defaultCreditsPerCall === 0) hint(['defaultCreditsPerCall'], 'every tool without its own price is free');
  if (config.callTimeoutMs === 0) hint(['callTimeoutMs'], 'calls never time out');
  for (const [field, value] of Object.entries(config.globalQuota ?? {})) if (value === 0) hint(['globalQuota', field], 'no limit');
  for (const [tool, rule] of Object.entries(config.toolPricing ?? {})) {
    if (rule.creditsPerCall === 0) hint(['toolPricing', tool, 'creditsPerCall'], `"${tool}" is free`);
    if (rule.rateLimitPerMin === 0) hint(['toolPricing', tool, 'rateLimitPerMin'], `"${tool}" has no limit of its own (the global one still applies)`);
  }
}

function notYetSupported({ document, config, report }: Context): void {
  for (const field of NOT_YET) {
    if (config[field] === undefined) continue;
    report({
      code: 'not-supported-yet',
      severity: 'warning',
      message: `${field} is accepted but not acted on by this version of PayGate yet: nothing will happen because of it`,
      range: document.keyRange([field]),
    });
  }
}

const RULES = [unknownTools, serverPrefixes, limitsBelowPrice, toolLimitsAboveGlobal, aclOverlaps, webhookScheme, environment, zeroMeanings, notYetSupported];

/** The rules a schema cannot express, on a config that passed the schema. */
export function semanticDiagnostics(document: ConfigDocument, config: ConfigFile, facts: ConfigFacts): ConfigDiagnostic[] {
  const diagnostics: ConfigDiagnostic[] = [];
  const context: Context = { document, config, facts, report: (diagnostic) => diagnostics.push(diagnostic) };
  for (const rule of RULES) rule(context);
  return diagnostics;
}
