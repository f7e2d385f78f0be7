import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { DidOpenTextDocumentNotification } from 'vscode-languageserver-protocol/node';
import { SQLITE_NODE, StartServer, Status } from '../../server/src/lsp/protocol.ts';
import { ADMIN_KEY } from '../helpers/gate.ts';
import { DaemonClient } from '../helpers/lsp.ts';
import { tempDir } from '../helpers/tmp.ts';

/** A `node` on PATH (outside node_modules) without node:sqlite, such as the Node 20 these machines have. */
function nodeWithoutSqlite(): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const node = path.join(dir, 'node');
    if (dir.includes('node_modules') || !fs.existsSync(node)) continue;
    if (spawnSync(node, ['-e', "try { require('node:sqlite'); process.exit(1) } catch { process.exit(0) }"]).status === 0) return node;
  }
  return undefined;
}

const oldNode = nodeWithoutSqlite();

test('on a Node without node:sqlite the daemon still checks configs, and starting a gate says which setting fixes it', { skip: oldNode ? false : 'no Node without node:sqlite on PATH' }, async () => {
  const daemon = await DaemonClient.start(oldNode);
  const uri = `file://${path.join(tempDir(), 'paygate.json')}`;
  await daemon.connection.sendNotification(DidOpenTextDocumentNotification.type, { textDocument: { uri, languageId: 'jsonc', version: 1, text: '{"defaultCreditsPerCall": "x"}' } });
  const published = await daemon.diagnostics(uri);
  assert.equal(published.diagnostics[0]?.code, 'invalid-value');

  await assert.rejects(
    daemon.connection.sendRequest(StartServer, {
      source: { kind: 'command', commandLine: 'node server.js' },
      baseDir: tempDir(),
      defaults: { host: '127.0.0.1', port: 0, stateFile: '.paygate/state.db' },
      adminKey: ADMIN_KEY,
      devKey: undefined,
    }),
    new RegExp(`does not have\\. Set the setting "paygate\\.server\\.runtime" to a Node ${SQLITE_NODE.replaceAll('.', '\\.')} or later`),
  );
  assert.equal((await daemon.connection.sendRequest(Status)).gate.state, 'stopped');
});
