import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { ROOT } from '../helpers/gate.ts';
import { tempDir } from '../helpers/tmp.ts';

const run = promisify(execFile);

test('the library example runs as documented: node examples/library.ts', async () => {
  const { stdout } = await run(process.execPath, [path.join(ROOT, 'examples', 'library.ts')], { cwd: ROOT });
  assert.match(stdout, /three searches: \{\n\s+allAllowed: false,\n\s+failedIndex: 2,\n\s+reason: 'insufficient_credits'/);
  assert.match(stdout, /a denied tool: \{\n\s+allAllowed: false,\n\s+failedIndex: 0,\n\s+reason: 'tool_denied'/);
  assert.match(stdout, /balance: 2\n/);
});

test('a TypeScript project that installs the package type-checks against its declarations', async () => {
  const dir = tempDir();
  fs.mkdirSync(path.join(dir, 'node_modules'));
  fs.symlinkSync(ROOT, path.join(dir, 'node_modules', 'paygate-mcp'));
  fs.writeFileSync(
    path.join(dir, 'use.ts'),
    `import { Gate, type Verdict } from 'paygate-mcp';\n` +
      `const gate = new Gate({ toolPricing: { search: { creditsPerCall: 5 } } });\n` +
      `const { key } = gate.createKey({ credits: 10, namespace: 'acme' });\n` +
      `const verdict: Verdict = gate.evaluateBatch(key, [{ name: 'search', arguments: { q: 'x' } }], '127.0.0.1');\n` +
      `const reason: string | null = verdict.reason;\n` +
      `export { reason };\n`,
  );
  const tsc = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  const args = ['--noEmit', '--strict', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2023', '--types', 'node', '--typeRoots', path.join(ROOT, 'node_modules', '@types'), 'use.ts'];
  const result = await run(process.execPath, [tsc, ...args], { cwd: dir }).catch((error: { stdout: string }) => ({ stdout: error.stdout, failed: true }));
  assert.equal('failed' in result, false, result.stdout);
});
