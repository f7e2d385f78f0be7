import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, test } from 'node:test';
import { GateProcess, ROOT } from '../helpers/gate.ts';
import { runPythonJson, sdkPython } from '../helpers/python.ts';

const PYTHON_SERVER = path.join(ROOT, 'test', 'python', 'mrtr_server.py');
const TS_SERVER = path.join(ROOT, 'test', 'fixtures', 'modernBackend.ts');

const { python, skip } = await sdkPython();

interface Seen {
  protocolVersion: string;
  call: string[];
  isError: boolean;
  asked: string[];
}

/** The SDK client pinned to 2026-07-28 calls `tool`, answering the server's elicitation with `name`, and retries by itself. */
async function mrtrClient(gate: GateProcess, key: string, tool: string, text: string, name: string): Promise<Seen> {
  return runPythonJson<Seen>(python, 'mrtr_client.py', [`${gate.base}/mcp`, key, tool, text, name]);
}

/** Usage events of a key, as `status:credits`, sorted. */
async function usageOf(gate: GateProcess, id: number): Promise<string[]> {
  const usage = await gate.admin('GET', `/usage?keyId=${id}&limit=100`);
  return usage.json.events.map((event: { status: string; creditsCharged: number }) => `${event.status}:${event.creditsCharged}`).sort();
}

describe('the official Python SDK 2.x client pinned to 2026-07-28 retries a Multi Round-Trip tool through the gate', { skip }, async () => {
  test('against a Python SDK server: asked once, answered, and charged once', async () => {
    const gate = await GateProcess.start(['--rate-limit', '0'], { backend: { server: `"${python}" "${PYTHON_SERVER}"` } });
    const { key, id } = await gate.createKey({ credits: 10 });
    const seen = await mrtrClient(gate, key, 'greet', 'hi', 'octocat');
    assert.deepEqual(seen, { protocolVersion: '2026-07-28', call: ['hi octocat'], isError: false, asked: ['Who are you?'] });
    assert.equal(await gate.balance(key), 9);
    assert.deepEqual(await usageOf(gate, id), ['charged:1', 'refunded:0']);
  });

  test('against the TypeScript 2026-07-28 fixture: asked once, answered, and charged once', async () => {
    const gate = await GateProcess.start(['--rate-limit', '0'], { backend: { server: `"${process.execPath}" "${TS_SERVER}"` } });
    const { key, id } = await gate.createKey({ credits: 10 });
    const seen = await mrtrClient(gate, key, 'greet', 'unused', 'octocat');
    assert.deepEqual(seen, { protocolVersion: '2026-07-28', call: ['hello octocat'], isError: false, asked: ['Who are you?'] });
    assert.equal(await gate.balance(key), 9);
    assert.deepEqual(await usageOf(gate, id), ['charged:1', 'refunded:0']);
  });
});
