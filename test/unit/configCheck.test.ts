import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TextDocument } from 'vscode-languageserver-textdocument';
import { checkConfig } from '../../server/src/config/check.ts';
import { fixEdits, formatDiagnostic } from '../../server/src/config/diagnostic.ts';
import type { ConfigFacts } from '../../server/src/config/rules.ts';

/** `code severity line:col` (1-based) of every diagnostic, in order. */
function summary(text: string, facts: ConfigFacts = {}): string[] {
  return checkConfig(text, facts).diagnostics.map((d) => `${d.code} ${d.severity} ${d.range.start.line + 1}:${d.range.start.character + 1}`);
}

function applyFix(text: string, facts: ConfigFacts = {}): string {
  const { diagnostics, document } = checkConfig(text, facts);
  const fix = diagnostics.find((d) => d.fix)!.fix!;
  return TextDocument.applyEdits(TextDocument.create('file:///x', 'jsonc', 1, text), fixEdits(document, fix));
}

/** `line:col` (1-based) where `needle` starts in `text` (its `nth` occurrence). */
function at(text: string, needle: string, nth = 1): string {
  let offset = -1;
  for (let i = 0; i < nth; i++) offset = text.indexOf(needle, offset + 1);
  const before = text.slice(0, offset).split('\n');
  return `${before.length}:${before.at(-1)!.length + 1}`;
}

const TOOLS: ConfigFacts = { tools: new Set(['search', 'fetch', 'github:search']) };

test('JSONC is accepted: comments and trailing commas', () => {
  assert.deepEqual(summary('{\n  // the server\n  "serverCommand": "node", /* inline */\n  "port": 3402,\n}\n'), []);
});

test('syntax errors are reported where they are, and nothing else is checked then', () => {
  assert.deepEqual(summary('{\n  "port": 3402\n  "host": "x"\n}'), ['syntax error 3:3']);
  assert.deepEqual(summary('[[[[' + '['.repeat(20_000)), ['syntax error 1:1']);
});

test('schema: wrong types, unknown fields (with did-you-mean and its fix), missing fields, composite fields', () => {
  assert.deepEqual(summary('{ "port": "3402" }'), ['invalid-value error 1:11']);
  assert.deepEqual(summary('{ "toolPricing": { "a": { "creditPerCall": 1 } } }'), ['unknown-field error 1:27']);
  assert.equal(applyFix('{ "toolPricing": { "a": { "creditPerCall": 1 } } }'), '{ "toolPricing": { "a": { "creditsPerCall": 1 } } }');
  assert.deepEqual(JSON.parse(applyFix('{ "port": 1, "colour": "blue" }')), { port: 1 });
  assert.deepEqual(summary('{ "servers": [ { "serverCommand": "x" } ] }'), ['missing-field error 1:16']);
  const both = checkConfig('{ "servers": [ { "prefix": "a", "serverCommand": "x", "remoteUrl": "https://h" } ] }').diagnostics;
  assert.equal(both[0]!.message, 'servers[0] gives more than one of "serverCommand" and "remoteUrl": keep one');
  assert.equal(checkConfig('{ "importKeys": { "pg_longenough": "ten" } }').diagnostics[0]!.message, 'importKeys.pg_longenough must be integer or object, not string');
  assert.equal(checkConfig('{ "importKeys": { "pg_longenough": { "credits": -1 } } }').diagnostics[0]!.message, 'importKeys.pg_longenough.credits must be >= 0');
  assert.equal(checkConfig('{ "redisUrl": "http://x" }').diagnostics[0]!.message, 'redisUrl must be a redis:// or rediss:// URL');
});

test('unknown-tool: a priced or ACL-listed tool no server offers, with the nearest name and a fix', () => {
  const text = '{\n  "toolPricing": { "serch": { "creditsPerCall": 2 }, "search": { "creditsPerCall": 3 } },\n  "importKeys": { "pg_0123456789": { "credits": 1, "allowedTools": ["fetch", "fecth", "zzz"] } }\n}';
  assert.deepEqual(summary(text, TOOLS), [`unknown-tool warning ${at(text, '"serch"')}`, `unknown-tool warning ${at(text, '"fecth"')}`, `unknown-tool warning ${at(text, '"zzz"')}`]);
  const messages = checkConfig(text, TOOLS).diagnostics.map((d) => d.message);
  assert.match(messages[0]!, /"serch": did you mean "search"\?/);
  assert.match(messages[2]!, /"zzz" \(a price/);
  assert.match(applyFix(text, TOOLS), /"search": \{ "creditsPerCall": 2 \}, "search"/);
  assert.deepEqual(summary(text), [], 'without a tool list nothing is said about tools');
});

test('unknown-tool: the nearest name is taken from the tool list the config is checked against, each time', () => {
  const text = '{ "toolPricing": { "serch": { "creditsPerCall": 2 } } }';
  const suggested = (tools: ReadonlySet<string>) => checkConfig(text, { tools }).diagnostics[0]!.message.match(/did you mean "(.*)"/)?.[1];
  const search = new Set(['search', 'count']);
  const perch = new Set(['perch', 'count']);
  assert.equal(suggested(search), 'search');
  assert.equal(suggested(perch), 'perch');
  assert.equal(suggested(search), 'search');
  assert.equal(suggested(new Set(['count'])), undefined);
});

test('servers: a duplicate prefix and a prefix with a colon are errors', () => {
  const text = '{ "servers": [ { "prefix": "gh", "serverCommand": "a" }, { "prefix": "gh", "serverCommand": "b" }, { "prefix": "a:b", "remoteUrl": "https://x" } ] }';
  assert.deepEqual(summary(text), [`duplicate-prefix error ${at(text, '"gh"', 2)}`, `prefix-colon error ${at(text, '"a:b"')}`]);
});

test('servers: a prefix whose tools would break the tool-name rule is an error', () => {
  const text = '{ "servers": [ { "prefix": "my server", "serverCommand": "a" }, { "prefix": "gh.v2_x-y", "serverCommand": "b" } ] }';
  assert.deepEqual(summary(text), [`prefix-characters error ${at(text, '"my server"')}`]);
});

test('servers: a config names its servers one way, and each server has only the fields of its kind', () => {
  const both = '{ "serverCommand": "node", "remoteUrl": "https://x.example/mcp" }';
  assert.deepEqual(summary(both), [`server-conflict error ${at(both, '"remoteUrl"')}`]);
  const mixed = '{ "servers": [ { "prefix": "a", "remoteUrl": "https://x.example/mcp", "cwd": "/tmp" }, { "prefix": "b", "serverCommand": "node", "headers": { "x": "y" } } ] }';
  assert.deepEqual(summary(mixed), [`server-field error ${at(mixed, '"cwd"')}`, `server-field error ${at(mixed, '"headers"')}`]);
  assert.match(checkConfig(mixed).diagnostics[0]!.message, /servers\[0\] is remote \(remoteUrl\): serverArgs, env, cwd and roots apply only to serverCommand; remove "cwd"/);
});

test('limit-below-price: a credit quota or spending limit below the cheapest price locks every call out', () => {
  const text = '{ "defaultCreditsPerCall": 5, "toolPricing": { "cheap": { "creditsPerCall": 3 }, "free": { "creditsPerCall": 0 } }, "globalQuota": { "dailyCreditLimit": 2 } }';
  assert.deepEqual(summary(text).filter((line) => !line.startsWith('zero-meaning')), [`limit-below-price error ${at(text, '2 }')}`]);
  assert.match(checkConfig(text).diagnostics.find((d) => d.code === 'limit-below-price')!.message, /below the cheapest tool price \(3\)/);
  const keyed = '{ "importKeys": { "pg_0123456789": { "credits": 9, "spendingLimit": 0, "quota": { "monthlyCreditLimit": 1 } } }, "defaultCreditsPerCall": 2 }';
  assert.deepEqual(summary(keyed).filter((l) => l.startsWith('limit')), [`limit-below-price error ${at(keyed, '1 }')}`]);
});

test('tool-limit-above-global, acl-overlap, webhook-scheme', () => {
  const limits = '{ "globalRateLimitPerMin": 10, "toolPricing": { "a": { "rateLimitPerMin": 20 }, "b": { "rateLimitPerMin": 5 } } }';
  assert.deepEqual(summary(limits), [`tool-limit-above-global warning ${at(limits, '20')}`]);
  const acl = '{ "importKeys": { "pg_0123456789": { "credits": 1, "allowedTools": ["a", "b"], "deniedTools": ["b"] } } }';
  assert.deepEqual(summary(acl), [`acl-overlap warning ${at(acl, '"b"', 2)}`]);
  const hook = '{ "webhookUrl": "ftp://x/y" }';
  assert.deepEqual(summary(hook), [`not-supported-yet warning ${at(hook, '"webhookUrl"')}`, `webhook-scheme error ${at(hook, '"ftp')}`]);
});

test('environment: a state folder that cannot be written, a port in use or privileged', () => {
  assert.deepEqual(summary('{ "stateFile": "/proc/x/state.db", "port": 80 }', { stateDirProblem: 'cannot write', portPrivileged: true }), ['state-dir-not-writable error 1:16', 'port-privileged warning 1:44']);
  assert.deepEqual(summary('{ }', { portInUse: true }), ['port-in-use warning 1:1']);
});

test('zero-meaning: a 0 that means "no limit" in one field and "free" or "never" in another gets a hint', () => {
  const hints = checkConfig('{ "globalRateLimitPerMin": 0, "defaultCreditsPerCall": 0, "callTimeoutMs": 0, "toolPricing": { "a": { "creditsPerCall": 0 } } }').diagnostics;
  assert.deepEqual(hints.map((d) => [d.code, d.severity]), Array(4).fill(['zero-meaning', 'hint']));
  assert.deepEqual(hints.map((d) => d.message.split('which here means ')[1]), ['no rate limit at all', 'every tool without its own price is free', 'calls never time out', '"a" is free']);
});

test('not-supported-yet: fields later versions act on are accepted but called out; redisUrl and redis are acted on', () => {
  const text = '{ "alertRules": [ { "type": "credits_low", "threshold": 5 } ], "redisUrl": "redis://h", "redis": { "leaseMs": 5000 }, "oauth": {}, "teams": [] }';
  assert.deepEqual(summary(text).map((line) => line.split(' ')[0]), Array(3).fill('not-supported-yet'));
  assert.equal(checkConfig('{ "redisUrl": "redis://h", "redis": { "keyPrefix": "a b" } }').diagnostics[0]!.message, 'redis.keyPrefix must be 1 to 64 letters, digits, _ . : or -');
});

test('diagnostics print as file:line:col severity code message', () => {
  const [diagnostic] = checkConfig('{\n  "port": "x"\n}').diagnostics;
  assert.equal(formatDiagnostic('paygate.json', diagnostic!), 'paygate.json:2:11 error invalid-value port must be integer');
});
