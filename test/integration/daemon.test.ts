import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { test } from 'node:test';
import { TextDocument } from 'vscode-languageserver-textdocument';
import {
  CodeActionRequest,
  CompletionRequest,
  DidChangeTextDocumentNotification,
  DidChangeWatchedFilesNotification,
  DidOpenTextDocumentNotification,
  FileChangeType,
  HoverRequest,
  type CompletionItem,
  type Diagnostic,
  type TextEdit,
} from 'vscode-languageserver-protocol/node';
import { GateProcess } from '../helpers/gate.ts';
import { DaemonClient } from '../helpers/lsp.ts';
import { tempDir } from '../helpers/tmp.ts';

const daemon = await DaemonClient.start();
const dir = tempDir();

function uriOf(name: string): string {
  return pathToFileURL(path.join(dir, name)).href;
}

function open(uri: string, text: string): void {
  void daemon.connection.sendNotification(DidOpenTextDocumentNotification.type, { textDocument: { uri, languageId: 'jsonc', version: 1, text } });
}

function codes(diagnostics: Diagnostic[]): string[] {
  return diagnostics.map((d) => `${d.code}@${d.range.start.line}:${d.range.start.character}-${d.range.end.line}:${d.range.end.character}`);
}

const BROKEN = `{
  // prices
  "serverCommand": "node",
  "defaultCreditsPerCall": "two",
  "toolPricing": {
    "search": { "creditPerCall": 5 }
  }
}
`;

test('a broken config gets its diagnostics at the exact ranges; editing and a quick fix clear them', async () => {
  const uri = uriOf('paygate.json');
  open(uri, BROKEN);
  const first = await daemon.diagnostics(uri);
  assert.deepEqual(codes(first.diagnostics), ['invalid-value@3:27-3:32', 'unknown-field@5:16-5:31']);
  assert.equal(first.diagnostics[1]!.message, 'toolPricing.search has an unknown field "creditPerCall": did you mean "creditsPerCall"?');
  assert.equal(first.diagnostics[0]!.source, 'paygate');

  let document = TextDocument.create(uri, 'jsonc', 1, BROKEN);
  const fixType = { range: { start: { line: 3, character: 27 }, end: { line: 3, character: 32 } }, text: '2' };
  document = TextDocument.update(document, [fixType], 2);
  await daemon.connection.sendNotification(DidChangeTextDocumentNotification.type, { textDocument: { uri, version: 2 }, contentChanges: [fixType] });
  const second = await daemon.diagnostics(uri, (params) => params.version === 2);
  assert.deepEqual(codes(second.diagnostics), ['unknown-field@5:16-5:31']);

  const actions = await daemon.connection.sendRequest(CodeActionRequest.type, {
    textDocument: { uri },
    range: second.diagnostics[0]!.range,
    context: { diagnostics: second.diagnostics },
  });
  assert.equal(actions?.length, 1);
  const action = actions![0]! as { title: string; edit: { changes: Record<string, TextEdit[]> } };
  assert.equal(action.title, 'Rename to "creditsPerCall"');
  const fixed = TextDocument.applyEdits(document, action.edit.changes[uri]!);
  assert.match(fixed, /"search": \{ "creditsPerCall": 5 \}/);
  await daemon.connection.sendNotification(DidChangeTextDocumentNotification.type, { textDocument: { uri, version: 3 }, contentChanges: [{ text: fixed }] });
  const third = await daemon.diagnostics(uri, (params) => params.version === 3);
  assert.deepEqual(third.diagnostics, []);
});

test('an unknown field with no near name gets a quick fix that removes it', async () => {
  const uri = uriOf('other.paygate.json');
  const text = '{\n  "serverCommand": "node",\n  "colour": "blue",\n  "port": 3402\n}\n';
  open(uri, text);
  const published = await daemon.diagnostics(uri);
  assert.deepEqual(codes(published.diagnostics), ['unknown-field@2:2-2:10']);
  const [action] = (await daemon.connection.sendRequest(CodeActionRequest.type, { textDocument: { uri }, range: published.diagnostics[0]!.range, context: { diagnostics: published.diagnostics } }))! as { edit: { changes: Record<string, TextEdit[]> } }[];
  const fixed = TextDocument.applyEdits(TextDocument.create(uri, 'jsonc', 1, text), action!.edit.changes[uri]!);
  assert.deepEqual(JSON.parse(fixed), { serverCommand: 'node', port: 3402 });
});

test('a config changed on disk, not open in the editor, is checked too', async () => {
  const file = path.join(dir, '.paygate', 'config.json');
  fs.mkdirSync(path.dirname(file));
  fs.writeFileSync(file, '{ "serverCommand": "node", "servers": [] ');
  const uri = pathToFileURL(file).href;
  await daemon.connection.sendNotification(DidChangeWatchedFilesNotification.type, { changes: [{ uri, type: FileChangeType.Changed }] });
  const published = await daemon.diagnostics(uri);
  assert.deepEqual(published.diagnostics.map((d: Diagnostic) => d.code), ['syntax']);
  assert.match(published.diagnostics[0]!.message as string, /JSON syntax: close brace expected/);
  await daemon.connection.sendNotification(DidChangeWatchedFilesNotification.type, { changes: [{ uri, type: FileChangeType.Deleted }] });
  await daemon.diagnostics(uri, (params) => params.diagnostics.length === 0);
});

test('files that are not PayGate configs are left alone; nonsense never stops the daemon', async () => {
  open(uriOf('package.json'), '{ "name": 1, ');
  const uri = uriOf('junk.paygate.json');
  open(uri, '\u0000'.repeat(10) + '['.repeat(5000));
  const published = await daemon.diagnostics(uri);
  assert.ok(published.diagnostics.length > 0);
  open(uriOf('ok.paygate.json'), '{ "serverCommand": "node" }');
  assert.deepEqual((await daemon.diagnostics(uriOf('ok.paygate.json'))).diagnostics, []);
  assert.equal(daemon.publishedFor(uriOf('package.json')), false);
  assert.equal(daemon.stderr, '');
});

test('with a gate running for the config: tool names complete, hover shows the price, a misspelt tool is caught', async () => {
  const gate = await GateProcess.start(['--rate-limit', '30']);
  const uri = uriOf('live.paygate.json');
  const text = `{\n  "serverCommand": "node",\n  "port": ${gate.port},\n  "globalRateLimitPerMin": 30,\n  "toolPricing": {\n    "slow": { "creditsPerCall": 4, "rateLimitPerMin": 10 },\n    "ecko": { "creditsPerCall": 2 }\n  }\n}\n`;
  open(uri, text);
  const caught = await daemon.diagnostics(uri, (params) => params.diagnostics.some((d: Diagnostic) => d.code === 'unknown-tool'));
  const unknown = caught.diagnostics.find((d: Diagnostic) => d.code === 'unknown-tool')!;
  assert.match(unknown.message as string, /no server offers a tool "ecko": did you mean "echo"\?/);
  assert.deepEqual(unknown.range, { start: { line: 6, character: 4 }, end: { line: 6, character: 10 } });

  const items = (await daemon.connection.sendRequest(CompletionRequest.type, { textDocument: { uri }, position: { line: 6, character: 7 } })) as CompletionItem[];
  const labels = items.map((item) => item.label);
  assert.ok(labels.includes('echo') && labels.includes('count'), labels.join(','));
  assert.ok(!labels.includes('slow'), 'a tool already priced is not offered again');

  const hover = await daemon.connection.sendRequest(HoverRequest.type, { textDocument: { uri }, position: { line: 5, character: 6 } });
  const markdown = (hover!.contents as { value: string }).value;
  assert.match(markdown, /\*\*slow\*\*/);
  assert.match(markdown, /4 credits a call/);
  assert.match(markdown, /10 calls a minute per key \(its own limit\)/);
  assert.match(markdown, /offered by the running gate/);
});

test('a 5,000-tool config gets the same diagnostics from whole-text changes as from one-character ones, and as JSONC', async () => {
  const toolPricing = Object.fromEntries(Array.from({ length: 5000 }, (_, i) => [`tool_${i}`, { creditsPerCall: 1 + (i % 7), rateLimitPerMin: 30 }]));
  let text = `${JSON.stringify({ serverCommand: 'node', toolPricing, globalRateLimitPerMin: 60, port: 0 }, null, 2)}\n`;
  const comment = '// after the value: JSONC, positions unchanged\n';
  const incremental = uriOf('incremental.paygate.json');
  const whole = uriOf('whole.paygate.json');
  const commented = uriOf('commented.paygate.json');
  open(incremental, text);
  open(whole, text);
  open(commented, text + comment);
  for (const uri of [incremental, whole, commented]) assert.deepEqual((await daemon.diagnostics(uri, (params) => params.version === 1)).diagnostics, []);

  /** Offset of `needle` inside the entry of `tool`. */
  const inTool = (tool: string, needle: string) => text.indexOf(needle, text.indexOf(`"${tool}": {`));
  // Each step edits the text where `at` says, then expects these codes starting where `expect` says.
  const steps: { at: () => number; remove: number; insert: string; expect: () => [string, number][] }[] = [
    { at: () => inTool('tool_4917', '30') + 2, remove: 0, insert: '0', expect: () => [['tool-limit-above-global', inTool('tool_4917', '300')]] },
    { at: () => inTool('tool_100', 'credits') + 6, remove: 1, insert: '', expect: () => [['unknown-field', inTool('tool_100', '"creditPerCall"')]] },
    { at: () => inTool('tool_2000', ','), remove: 1, insert: '', expect: () => [['syntax', inTool('tool_2000', '"rateLimitPerMin"')]] },
    { at: () => inTool('tool_2000', '\n      "rateLimitPerMin"'), remove: 0, insert: ',', expect: () => [['unknown-field', inTool('tool_100', '"creditPerCall"')]] },
    { at: () => inTool('tool_100', 'credit') + 6, remove: 0, insert: 's', expect: () => [['tool-limit-above-global', inTool('tool_4917', '300')]] },
    {
      at: () => inTool('tool_7', ': 1') + 2,
      remove: 1,
      insert: '0',
      expect: () => [
        ['zero-meaning', inTool('tool_7', ': 0') + 2],
        ['tool-limit-above-global', inTool('tool_4917', '300')],
      ],
    },
  ];
  let version = 1;
  for (const step of steps) {
    version++;
    const at = step.at();
    const before = TextDocument.create(incremental, 'jsonc', version - 1, text);
    const range = { start: before.positionAt(at), end: before.positionAt(at + step.remove) };
    text = text.slice(0, at) + step.insert + text.slice(at + step.remove);
    const change = (uri: string, contentChanges: object[]) =>
      daemon.connection.sendNotification(DidChangeTextDocumentNotification.type, { textDocument: { uri, version }, contentChanges: contentChanges as [] });
    await change(incremental, [{ range, text: step.insert }]);
    await change(whole, [{ text }]);
    await change(commented, [{ text: text + comment }]);
    const [byRange, byText, asJsonc] = await Promise.all([incremental, whole, commented].map((uri) => daemon.diagnostics(uri, (params) => params.version === version)));
    const after = TextDocument.create(incremental, 'jsonc', version, text);
    const where = step.expect().map(([code, offset]) => `${code}@${after.positionAt(offset).line}:${after.positionAt(offset).character}`);
    assert.deepEqual(codes(byRange!.diagnostics).map((entry) => entry.replace(/-\d+:\d+$/, '')), where, `version ${version}`);
    assert.deepEqual(byText!.diagnostics, byRange!.diagnostics, `version ${version}: the whole text`);
    assert.deepEqual(asJsonc!.diagnostics, byRange!.diagnostics, `version ${version}: as JSONC`);
  }
});
