import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, test } from 'node:test';
import { GateProcess, ROOT } from '../helpers/gate.ts';
import { runPythonJson, sdkPython } from '../helpers/python.ts';

const MODERN_SERVER = path.join(ROOT, 'test', 'python', 'modern_server.py');

const { python, skip } = await sdkPython();

interface Seen {
  protocolVersion: string;
  tools: string[];
  call: string[];
  isError: boolean;
  read: string[];
}

/** Runs the SDK client script against the gate: it lists, calls `tool` and reads, or fails on anything the SDK rejects. */
async function sdkClient(gate: GateProcess, key: string, mode: string, tool: string, text: string): Promise<Seen> {
  return runPythonJson<Seen>(python, 'client.py', [`${gate.base}/mcp`, key, mode, tool, text]);
}

const MODES = [
  ['pinned to 2026-07-28', '2026-07-28', '2026-07-28'],
  ['in auto mode', 'auto', '2026-07-28'],
  ['pinned to 2025-11-25 (legacy)', 'legacy', '2025-11-25'],
] as const;

describe('the official Python SDK 2.x client through the gate, in front of a 2025 server', { skip }, async () => {
  const gate = skip ? undefined : await GateProcess.start(['--rate-limit', '0']);

  for (const [how, mode, version] of MODES) {
    test(`${how}: it lists, calls and reads, and the call is billed once to its key`, async () => {
      const { key } = await gate!.createKey({ credits: 10 });
      const seen = await sdkClient(gate!, key, mode, 'echo', `hello ${mode}`);
      assert.equal(seen.protocolVersion, version);
      assert.ok(seen.tools.includes('echo'));
      assert.deepEqual([seen.call, seen.isError], [[`hello ${mode}`], false]);
      assert.deepEqual(seen.read, ['the secret']);
      assert.equal(await gate!.balance(key), 9);
    });
  }
});

describe('the official Python SDK 2.x client through the gate, in front of a Python SDK server that speaks only 2026-07-28', { skip }, async () => {
  const gate = skip ? undefined : await GateProcess.start(['--rate-limit', '0'], { backend: { server: `"${python}" "${MODERN_SERVER}"` } });

  for (const [how, mode, version] of MODES) {
    test(`${how}: it lists, calls and reads, and the call is billed once to its key`, async () => {
      const { key } = await gate!.createKey({ credits: 10 });
      const seen = await sdkClient(gate!, key, mode, 'echo', `hello ${mode}`);
      assert.equal(seen.protocolVersion, version);
      assert.deepEqual(seen.tools, ['echo']);
      assert.deepEqual([seen.call, seen.isError], [[`hello ${mode}`], false]);
      assert.deepEqual(seen.read, ['python contents']);
      assert.equal(await gate!.balance(key), 9);
    });
  }
});
