import { toolNameProblem } from '../engine/toolCall.ts';
import { closest, type Finding } from './diagnostic.ts';
import type { JsonPath } from './document.ts';
import { fieldName } from './schemaCheck.ts';
import type { ToolPolicy } from '../gate/types.ts';
import { DEFAULTS, type ConfigFile, type IsolationFields } from './types.ts';

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
  config: ConfigFile;
  facts: ConfigFacts;
  /** `toolPricing`, and its names listed once for all rules (there may be thousands). */
  pricing: Record<string, ToolPolicy>;
  toolNames: readonly string[];
  report: (finding: Finding) => void;
}

const atKey = (path: JsonPath) => ({ path, part: 'key' as const });
const atValue = (path: JsonPath) => ({ path, part: 'value' as const });

/** Fields PayGate reads but does not act on yet: leaving them silent would let users believe they work. */
const NOT_YET = ['webhookUrl', 'webhookSecret', 'webhookMaxRetries', 'alertRules', 'teams', 'oauth', 'stripeWebhookSecret'] as const;

/**
 * The nearest offered name to each unknown one, per tool list (the daemon keeps a gate's list the
 * same object while its tools do not change). Finding one compares it with every offered name: on
 * thousands of tools, working them all out again at each keystroke would take seconds.
 */
const suggestions = new WeakMap<ReadonlySet<string>, Map<string, string | undefined>>();
const SUGGESTIONS_KEPT = 10_000;

function suggestTool(name: string, offered: ReadonlySet<string>): string | undefined {
  let known = suggestions.get(offered);
  if (!known) suggestions.set(offered, (known = new Map()));
  if (known.has(name)) return known.get(name);
  if (known.size >= SUGGESTIONS_KEPT) known.clear();
  const suggestion = closest(name, offered);
  known.set(name, suggestion);
  return suggestion;
}

/** What to say of a tool name no server offers, and the offered name it was probably meant to be. */
export function unknownTool(name: string, offered: ReadonlySet<string>): { message: string; suggestion: string | undefined } {
  const suggestion = suggestTool(name, offered);
  return { message: `no server offers a tool "${name}"${suggestion ? `: did you mean "${suggestion}"?` : ''} (a price or rule for a name nobody calls never applies)`, suggestion };
}

function unknownTools({ config, facts, toolNames, report }: Context): void {
  const offered = facts.tools;
  if (!offered) return;
  const check = (name: string, path: JsonPath, isKey: boolean) => {
    if (offered.has(name)) return;
    const { message, suggestion } = unknownTool(name, offered);
    const place = isKey ? atKey(path) : atValue(path);
    report({
      code: 'unknown-tool',
      severity: 'warning',
      message,
      place,
      ...(suggestion ? { fix: { title: `Change to "${suggestion}"`, kind: isKey ? 'rename' : 'replace', place, newText: suggestion } } : {}),
    });
  };
  for (const name of toolNames) check(name, ['toolPricing', name], true);
  for (const [key, entry] of Object.entries(config.importKeys ?? {})) {
    if (typeof entry !== 'object') continue;
    for (const list of ['allowedTools', 'deniedTools'] as const) (entry[list] ?? []).forEach((name, index) => check(name, ['importKeys', key, list, index], false));
  }
}

function serverPrefixes({ config, report }: Context): void {
  const seen = new Map<string, number>();
  (config.servers ?? []).forEach((server, index) => {
    const path = ['servers', index, 'prefix'];
    if (server.prefix.includes(':')) {
      report({ code: 'prefix-colon', severity: 'error', message: `the prefix "${server.prefix}" contains ":", which separates a prefix from a tool name: remove it`, place: atValue(path) });
    } else if (toolNameProblem(`${server.prefix}:tool`) !== undefined) {
      report({
        code: 'prefix-characters',
        severity: 'error',
        message: `the prefix "${server.prefix}" would put its tools outside MCP's tool-name rule, so no client could call them: use only A-Z, a-z, 0-9, "_", "-" and "."`,
        place: atValue(path),
      });
    }
    const first = seen.get(server.prefix);
    if (first !== undefined) {
      report({ code: 'duplicate-prefix', severity: 'error', message: `the prefix "${server.prefix}" is already used by servers[${first}]: every server needs its own`, place: atValue(path) });
    } else seen.set(server.prefix, index);
  });
}

/** Each server is one thing: a command or a URL, with the fields of that kind only. */
function serverShapes({ config, report }: Context): void {
  const given = (['serverCommand', 'remoteUrl', 'servers'] as const).filter((field) => config[field] !== undefined);
  for (const field of given.slice(1)) {
    report({ code: 'server-conflict', severity: 'error', message: `"${field}" is given with "${given[0]}": a config names its servers one way, by serverCommand, remoteUrl or servers; keep one`, place: atKey([field]) });
  }
  if (config.roots !== undefined && config.serverCommand === undefined && given.length > 0) {
    const where = config.servers !== undefined ? 'give each entry of "servers" its own "roots"' : 'roots apply only to a server run by a command (serverCommand)';
    report({ code: 'server-field', severity: 'error', message: `top-level "roots" belong to serverCommand: ${where}`, place: atKey(['roots']) });
  }
  (config.servers ?? []).forEach((server, index) => {
    const misplaced = server.remoteUrl !== undefined ? (['serverArgs', 'env', 'cwd', 'roots'] as const) : (['headers'] as const);
    for (const field of misplaced) {
      if (server[field] === undefined) continue;
      const why = server.remoteUrl !== undefined ? 'is remote (remoteUrl): serverArgs, env, cwd and roots apply only to serverCommand' : 'runs a command: headers apply only to remoteUrl';
      report({ code: 'server-field', severity: 'error', message: `servers[${index}] ${why}; remove "${field}"`, place: atKey(['servers', index, field]) });
    }
  });
}

const ISOLATION_TUNING = ['idleTimeoutSec', 'maxProcesses'] as const;

/** Isolation where it applies: servers run as a command, with its tuning only beside `key` or `session`. */
function isolationFields({ config, report }: Context): void {
  const check = (fields: IsolationFields, at: JsonPath, remote: boolean) => {
    const isolated = fields.isolation === 'key' || fields.isolation === 'session';
    if (isolated && remote) {
      report({
        code: 'isolation-remote',
        severity: 'warning',
        message: `isolation "${fields.isolation}" applies to servers run as a command: a remote server already gets an upstream session per client session and per key, so this has no effect`,
        place: atValue([...at, 'isolation']),
      });
      return;
    }
    for (const field of ISOLATION_TUNING) {
      if (fields[field] === undefined || isolated) continue;
      report({
        code: 'isolation-unused',
        severity: 'warning',
        message: `${field} applies only with isolation "key" or "session" (one process per key or session); ${fields.isolation === undefined ? 'isolation is not set' : `isolation is "${fields.isolation}"`}, so it has no effect`,
        place: atKey([...at, field]),
      });
    }
  };
  if (config.servers !== undefined) {
    for (const field of ['isolation', ...ISOLATION_TUNING] as const) {
      if (config[field] === undefined) continue;
      report({
        code: 'isolation-misplaced',
        severity: 'warning',
        message: `a top-level ${field} applies to serverCommand only: with servers, set it on each entry of servers`,
        place: atKey([field]),
      });
    }
  } else {
    check(config, [], config.remoteUrl !== undefined);
  }
  (config.servers ?? []).forEach((server, index) => check(server, ['servers', index], server.remoteUrl !== undefined));
}

/** The least a call can cost (over priced tools and the default price), ignoring free tools. */
function cheapestPrice({ config, pricing, toolNames }: Context): number | undefined {
  const fallback = config.defaultCreditsPerCall ?? DEFAULTS.defaultCreditsPerCall;
  let cheapest = fallback > 0 ? fallback : Number.POSITIVE_INFINITY;
  for (const name of toolNames) {
    const price = pricing[name]!.creditsPerCall ?? fallback;
    if (price > 0 && price < cheapest) cheapest = price;
  }
  return Number.isFinite(cheapest) ? cheapest : undefined;
}

function limitsBelowPrice(context: Context): void {
  const { config, report } = context;
  const cheapest = cheapestPrice(context);
  if (cheapest === undefined) return;
  const check = (limit: number | undefined, path: JsonPath, what: string) => {
    if (limit === undefined || limit === 0 || limit >= cheapest) return;
    report({
      code: 'limit-below-price',
      severity: 'error',
      message: `${what} of ${limit} is below the cheapest tool price (${cheapest}): no call could ever be made. Raise it, or use 0 for no limit`,
      place: atValue(path),
    });
  };
  for (const field of ['dailyCreditLimit', 'monthlyCreditLimit'] as const) check(config.globalQuota?.[field], ['globalQuota', field], `the global ${field}`);
  for (const [key, entry] of Object.entries(config.importKeys ?? {})) {
    if (typeof entry !== 'object') continue;
    check(entry.spendingLimit, ['importKeys', key, 'spendingLimit'], 'this key\'s spendingLimit');
    for (const field of ['dailyCreditLimit', 'monthlyCreditLimit'] as const) check(entry.quota?.[field], ['importKeys', key, 'quota', field], `this key's ${field}`);
  }
}

function toolLimitsAboveGlobal({ config, pricing, toolNames, report }: Context): void {
  const global = config.globalRateLimitPerMin ?? DEFAULTS.globalRateLimitPerMin;
  if (global === 0) return;
  for (const tool of toolNames) {
    const rule = pricing[tool]!;
    if ((rule.rateLimitPerMin ?? 0) <= global) continue;
    report({
      code: 'tool-limit-above-global',
      severity: 'warning',
      message: `"${tool}" may be called ${rule.rateLimitPerMin} times a minute, but the global limit of ${global} a minute applies first, so this limit never takes effect`,
      place: atValue(['toolPricing', tool, 'rateLimitPerMin']),
    });
  }
}

function aclOverlaps({ config, report }: Context): void {
  for (const [key, entry] of Object.entries(config.importKeys ?? {})) {
    if (typeof entry !== 'object' || !entry.allowedTools || !entry.deniedTools) continue;
    entry.deniedTools.forEach((tool, index) => {
      if (!entry.allowedTools!.includes(tool)) return;
      report({
        code: 'acl-overlap',
        severity: 'warning',
        message: `"${tool}" is both allowed and denied for this key: denied wins, so listing it in allowedTools has no effect`,
        place: atValue(['importKeys', key, 'deniedTools', index]),
      });
    });
  }
}

function webhookScheme({ config, report }: Context): void {
  if (config.webhookUrl === undefined || /^https?:\/\//i.test(config.webhookUrl)) return;
  report({ code: 'webhook-scheme', severity: 'error', message: 'webhookUrl must be an http:// or https:// URL: events are POSTed to it', place: atValue(['webhookUrl']) });
}

function environment({ config, facts, report }: Context): void {
  if (facts.stateDirProblem) {
    report({ code: 'state-dir-not-writable', severity: 'error', message: facts.stateDirProblem, place: atValue(config.stateFile === undefined ? [] : ['stateFile']) });
  }
  const portPath = config.port === undefined ? [] : ['port'];
  if (facts.portPrivileged) {
    report({ code: 'port-privileged', severity: 'warning', message: `port ${config.port} is below 1024: only a privileged user may listen on it; pick one above 1023`, place: atValue(portPath) });
  } else if (facts.portInUse) {
    report({
      code: 'port-in-use',
      severity: 'warning',
      message: `port ${config.port ?? DEFAULTS.port} is already in use on ${config.host ?? DEFAULTS.host} (by this gate, if it is running; otherwise pick another)`,
      place: atValue(portPath),
    });
  }
}

/** The same 0 means "no limit" in one field and "free" or "never" in others: say which. */
function zeroMeanings({ config, pricing, toolNames, report }: Context): void {
  const hint = (path: JsonPath, meaning: string) =>
    report({ code: 'zero-meaning', severity: 'hint', message: `${fieldName(path)} is 0, which here means ${meaning}`, place: atValue(path) });
  if (config.globalRateLimitPerMin === 0) hint(['globalRateLimitPerMin'], 'no rate limit at all');
  if (config.defaultCreditsPerCall === 0) hint(['defaultCreditsPerCall'], 'every tool without its own price is free');
  if (config.callTimeoutMs === 0) hint(['callTimeoutMs'], 'calls never time out');
  if (config.usageRetentionDays === 0) hint(['usageRetentionDays'], 'usage events are kept for ever');
  for (const [field, value] of Object.entries(config.globalQuota ?? {})) if (value === 0) hint(['globalQuota', field], 'no limit');
  for (const tool of toolNames) {
    const rule = pricing[tool]!;
    if (rule.creditsPerCall === 0) hint(['toolPricing', tool, 'creditsPerCall'], `"${tool}" is free`);
    if (rule.rateLimitPerMin === 0) hint(['toolPricing', tool, 'rateLimitPerMin'], `"${tool}" has no limit of its own (the global one still applies)`);
  }
}

function notYetSupported({ config, report }: Context): void {
  for (const field of NOT_YET) {
    if (config[field] === undefined) continue;
    report({
      code: 'not-supported-yet',
      severity: 'warning',
      message: `${field} is accepted but not acted on by this version of PayGate yet: nothing will happen because of it`,
      place: atKey([field]),
    });
  }
}

const RULES = [unknownTools, serverShapes, serverPrefixes, isolationFields, limitsBelowPrice, toolLimitsAboveGlobal, aclOverlaps, webhookScheme, environment, zeroMeanings, notYetSupported];

/** The rules a schema cannot express, on a config that passed the schema. */
export function semanticFindings(config: ConfigFile, facts: ConfigFacts): Finding[] {
  const findings: Finding[] = [];
  // Names and lookups rather than Object.entries: on thousands of tools, entries take 3× the time and
  // fill the young generation, and the collections that follow land on a later keystroke.
  const pricing = config.toolPricing ?? {};
  const context: Context = { config, facts, pricing, toolNames: Object.keys(pricing), report: (finding) => findings.push(finding) };
  for (const rule of RULES) rule(context);
  return findings;
}
