import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { ROOT, waitFor } from '../helpers/gate.ts';
import { notification, openWorkbench, pickRow, quickInput, rowTexts, runCommand, startCodeServer, type CodeServer } from './workbench.ts';

/**
 * The packaged extension in a real VS Code, driven as a user would: it activates, shows a broken
 * config's problem, starts a gate from the command palette, shows calls in the usage panel and runs a
 * batch. Screenshots and logs go to test-results/e2e/; the figures it measures are printed.
 */
const VSIX = path.join(ROOT, 'paygate-mcp.vsix');
const OUT = path.join(ROOT, 'test-results', 'e2e');
const CUSTOMER_KEY = `pg_${'e2e0'.repeat(12)}`;

fs.rmSync(OUT, { recursive: true, force: true });
const workspace = path.join(OUT, 'workspace');
fs.mkdirSync(workspace, { recursive: true });
fs.writeFileSync(
  path.join(workspace, 'paygate.json'),
  `${JSON.stringify(
    {
      name: 'docs-demo',
      serverCommand: process.execPath,
      serverArgs: [path.join(ROOT, 'dist', 'example-server.js')],
      toolPricing: { search_docs: { creditsPerCall: 2 }, weather: { creditsPerCall: 3 } },
      importKeys: { [CUSTOMER_KEY]: { name: 'customer', credits: 100 } },
    },
    null,
    2,
  )}\n`,
);
fs.writeFileSync(path.join(workspace, 'broken.paygate.json'), '{\n  "serverCommand": "node",\n  "toolPricing": { "search_docs": { "creditPerCall": 2 } }\n}\n');

let server: CodeServer;
let browser: Browser;
let page: Page;
let endpoint = '';

function figure(name: string, value: string): void {
  console.log(`# figure: ${name}: ${value}`);
}

async function shot(name: string): Promise<void> {
  await page.screenshot({ path: path.join(OUT, `${name}.png`) });
}

async function callTool(name: string, args: object): Promise<number> {
  const response = await fetch(endpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json', 'x-api-key': CUSTOMER_KEY },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name, arguments: args } }),
  });
  await response.arrayBuffer();
  return response.status;
}

/** The usage panel's rows, as text. */
function usageRows(): Promise<string[]> {
  return rowTexts(page.locator('.pane', { has: page.locator('.pane-header', { hasText: 'Usage' }) }));
}

before(async () => {
  assert.ok(fs.existsSync(VSIX), `${VSIX} is missing: npm run package makes it`);
  server = await startCodeServer({ runDir: path.join(OUT, 'run'), vsix: VSIX, settings: { 'paygate.port': 0, 'chat.disableAIFeatures': false }, timeoutS: 600 });
  ({ browser, page } = await openWorkbench(server.url(workspace), path.join(OUT, 'browser-console.log')));
});

after(async () => {
  if (page) await page.screenshot({ path: path.join(OUT, 'last.png') }).catch(() => {});
  await browser?.close().catch(() => {});
  await server?.stop();
  const logs = path.join(server?.userDataDir ?? OUT, 'logs');
  if (fs.existsSync(logs)) fs.cpSync(logs, path.join(OUT, 'vscode-logs'), { recursive: true });
});

test('the installed .vsix activates on a workspace with a PayGate config and shows its status bar item', async () => {
  const item = page.locator('.statusbar-item', { hasText: 'PayGate' });
  await item.waitFor({ state: 'visible', timeout: 90_000 });
  assert.match(await item.innerText(), /PayGate/);
});

test('a broken config shows its diagnostic in the Problems panel', async () => {
  await page.keyboard.press('Control+P');
  await quickInput(page).input.waitFor({ state: 'visible' });
  await page.keyboard.type('broken.paygate.json', { delay: 5 });
  await pickRow(page, 'broken.paygate.json');
  await runCommand(page, 'View: Toggle Problems');
  const problem = page.locator('.markers-panel .monaco-list-row', { hasText: 'did you mean "creditsPerCall"' }).first();
  await problem.waitFor({ state: 'visible', timeout: 60_000 });
  assert.match(await problem.innerText(), /unknown field "creditPerCall"/);
  await shot('diagnostics');
  await runCommand(page, 'View: Toggle Problems');
});

test('"PayGate: Start Gated Server" from the command palette starts a gate whose /health answers', async () => {
  await runCommand(page, 'PayGate: Start Gated Server');
  await quickInput(page).rows.first().waitFor({ state: 'visible' });
  const asked = Date.now();
  await pickRow(page, 'paygate.json', 'broken');
  const toast = await notification(page, 'PayGate is gating', 60_000);
  figure('Start Gated Server picked → gate ready notice', `${Date.now() - asked} ms`);
  endpoint = /(http:\/\/127\.0\.0\.1:\d+\/mcp)/.exec(toast)?.[1] ?? '';
  assert.match(toast, /PayGate is gating docs-demo at http:\/\/127\.0\.0\.1:\d+\/mcp/);
  const health = await fetch(endpoint.replace(/\/mcp$/, '/health'));
  assert.equal(health.status, 200);
  assert.equal(((await health.json()) as { status: string }).status, 'healthy');
  await waitFor('the status bar to show the port', async () => ((await page.locator('.statusbar-item', { hasText: /PayGate :\d+/ }).count()) > 0 ? true : undefined));
});

test('a tool call shows up in the usage tree, live', async () => {
  await runCommand(page, 'PayGate: Show Usage Panel');
  await waitFor('the usage tree', async () => ((await usageRows()).some((row) => row.startsWith('search_docs')) ? true : undefined), 30_000);
  assert.ok((await usageRows()).some((row) => /^search_docs\s*2 cr · 0 calls · 0 earned/.test(row)), JSON.stringify(await usageRows()));

  // Five calls, a second apart: each shows in the tree (calls, earnings, the key's balance) soon after its answer.
  const delays: number[] = [];
  for (let call = 1; call <= 5; call++) {
    if (call > 1) await new Promise((resolve) => setTimeout(resolve, 1000));
    assert.equal(await callTool('search_docs', { query: 'pricing' }), 200);
    const answered = Date.now();
    const tool = new RegExp(`^search_docs\\s*2 cr · ${call} calls? · ${2 * call} earned`);
    const key = new RegExp(`^customer\\s*${100 - 2 * call} left · ${2 * call} spent`);
    for (;;) {
      const rows = await usageRows();
      if (rows.some((row) => tool.test(row)) && rows.some((row) => key.test(row))) break;
      if (Date.now() - answered > 10_000) assert.fail(`the tree did not show call ${call}: ${JSON.stringify(rows)}`);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    delays.push(Date.now() - answered);
  }
  figure('tool call answered → usage tree shows it (5 calls)', `${delays.join(', ')} ms`);
  await shot('usage-panel');
});

test('"Run Batch Call…" runs tools/call_batch with the dev key and shows each result and its credits', async () => {
  await runCommand(page, 'PayGate: Run Batch Call');
  const { input, rows } = quickInput(page);
  await rows.first().waitFor({ state: 'visible' });
  for (const [index, tool] of ['echo', 'search_docs'].entries()) {
    await input.fill(tool);
    // Filtering also matches descriptions ("slow" echoes too): wait until the list is filtered, then take the tool's own row.
    await waitFor(`the list filtered to ${tool}`, async () => ((await rowTexts(page.locator('.quick-input-list'))).length <= 2 ? true : undefined));
    await rows.filter({ hasText: new RegExp(`^${tool}`) }).first().locator('.monaco-custom-toggle, input[type=checkbox]').first().click();
    await page.locator('.quick-input-widget .quick-input-count', { hasText: `${index + 1} Selected` }).waitFor({ state: 'visible' });
  }
  await page.locator('.quick-input-widget .monaco-button', { hasText: 'OK' }).click();
  for (const [index, [tool, args]] of [['echo', '{"text": "hello from the e2e test"}'], ['search_docs', '{"query": "pricing"}']].entries()) {
    await page.locator('.quick-input-widget .quick-input-title', { hasText: `Arguments for ${tool} (${index + 1}/2)` }).waitFor({ state: 'visible' });
    await input.fill(args!);
    await page.keyboard.press('Enter');
  }
  await pickRow(page, 'Dev key');
  const report = page.locator('.monaco-editor .view-lines', { hasText: 'PayGate batch result' }).first();
  await report.waitFor({ state: 'visible', timeout: 30_000 });
  const text = (await report.innerText()).replace(/\u00a0/g, ' ');
  assert.match(text, /2 calls · \*\*3 credits charged\*\* · 997 credits left/);
  assert.match(text, /\| 0 \| echo \| 1 \| ok \|/);
  assert.match(text, /\| 1 \| search_docs \| 2 \| ok \|/);
  assert.match(text, /hello from the e2e test/);
  await waitFor('the dev key\'s spending in the tree', async () => ((await usageRows()).some((row) => /^vscode-dev\s*997 left · 3 spent/.test(row)) ? true : undefined));
  await shot('batch-result');
});

test('a daemon that dies is restarted with a notice, and the gate it ran comes back', async () => {
  // The daemon of this run only: the node running the installed extension's cli.js under this run's extensions folder.
  const found = spawnSync('pgrep', ['-f', `${server.extensionsDir}/.*/dist/cli\\.js lsp`], { encoding: 'utf8' }).stdout.trim().split('\n').filter(Boolean);
  assert.equal(found.length, 1, `expected one daemon, found ${JSON.stringify(found)}`);
  await runCommand(page, 'Notifications: Clear All Notifications');
  process.kill(Number(found[0]), 'SIGKILL');
  await notification(page, 'The PayGate daemon stopped unexpectedly and was restarted', 30_000);
  // The port setting is 0, so the gate that comes back has a new port: the panel shows its endpoint.
  const restarted = await waitFor('the restarted gate in the panel', async () => {
    const servers = (await usageRows()).find((row) => row.startsWith('Servers'));
    const url = servers && /(http:\/\/127\.0\.0\.1:\d+)\/mcp/.exec(servers)?.[1];
    return url && `${url}/mcp` !== endpoint ? url : undefined;
  }, 30_000);
  assert.equal((await fetch(`${restarted}/health`)).status, 200);
  // The ledger is the same file: the customer's earlier spending is still there.
  await waitFor('the customer key in the tree after the restart', async () => ((await usageRows()).some((row) => /^customer\s*90 left · 10 spent/.test(row)) ? true : undefined), 30_000);
});

test('the servers of .vscode/mcp.json are gated on demand, offered to VS Code\'s MCP client with the dev key', async () => {
  const folder = path.join(OUT, 'mcp-workspace');
  fs.mkdirSync(path.join(folder, '.vscode'), { recursive: true });
  const example = path.join(ROOT, 'dist', 'example-server.js');
  fs.writeFileSync(
    path.join(folder, '.vscode', 'mcp.json'),
    JSON.stringify({
      inputs: [{ type: 'promptString', id: 'docs-token', description: 'Token for the docs server', password: true }],
      servers: {
        docs: { command: process.execPath, args: [example], env: { DOCS_TOKEN: '${input:docs-token}' } },
        weather: { type: 'stdio', command: process.execPath, args: ['${workspaceFolder}/../../../dist/example-server.js'] },
        remote: { type: 'http', url: 'https://example.invalid/mcp' },
      },
    }),
  );
  // A new window on a folder without a PayGate config: the extension activates with the command.
  await page.goto(server.url(folder), { waitUntil: 'domcontentloaded' });
  await page.locator('.monaco-workbench .part.sidebar .pane-header').first().waitFor({ timeout: 90_000 });
  await runCommand(page, 'PayGate: Start Gated Server');
  await pickRow(page, 'All servers in .vscode/mcp.json');
  await page.locator('.quick-input-widget .quick-input-title', { hasText: 'Token for the docs server' }).waitFor({ state: 'visible' });
  await quickInput(page).input.fill('secret-token');
  await page.keyboard.press('Enter');
  const toast = await notification(page, 'PayGate is gating', 60_000);
  assert.match(toast, /PayGate is gating \.vscode\/mcp\.json at http:\/\/127\.0\.0\.1:\d+\/mcp/);

  await runCommand(page, 'PayGate: Show Usage Panel');
  await waitFor('both servers in the tree', async () => {
    const rows = await usageRows();
    return rows.some((row) => /^docs\s*up · 6 tools/.test(row)) && rows.some((row) => /^weather\s*up · 6 tools/.test(row)) ? true : undefined;
  }, 30_000);
  await page.locator('.pane-header', { hasText: 'Usage' }).locator('.codicon-collapse-all').click().catch(() => {});

  await runCommand(page, 'Output: Show Output Channels');
  await pickRow(page, 'PayGate');
  const output = page.locator('.part.panel .monaco-editor .view-lines').first();
  const logged = async () => (await output.innerText()).replace(/\s+/g, ' ');
  const ready = await waitFor('the gate-ready line in the PayGate output', async () => /gate ready at \S+: (\d+) ms after the start was asked, (\d+) ms after the extension activated/.exec(await logged()) ?? undefined, 20_000);
  const daemon = /daemon ready (\d+) ms after the extension activated/.exec(await logged());
  figure('extension activated (by the command) → daemon ready', `${daemon?.[1]} ms`);
  figure('extension activated → gate ready, with the test picking the servers and typing the input', `${ready[2]} ms, of which ${ready[1]} ms after the pick`);

  await runCommand(page, 'MCP: List Servers');
  await pickRow(page, 'PayGate: .vscode/mcp.json');
  await shot('mcp-servers');
  await pickRow(page, 'Start Server');
  const health = /(http:\/\/127\.0\.0\.1:\d+)\/mcp/.exec(toast)![1] + '/health';
  const sessions = await waitFor('VS Code\'s MCP client to open a session through the gate', async () => {
    const body = (await (await fetch(health)).json()) as { sessions: number };
    return body.sessions > 0 ? body.sessions : undefined;
  }, 30_000);
  assert.ok(sessions >= 1);
});

test('with paygate.autoStart, opening a folder starts its config\'s gate with no click: activation to gate ready', async () => {
  const folder = path.join(OUT, 'auto-workspace');
  fs.mkdirSync(path.join(folder, '.vscode'), { recursive: true });
  fs.writeFileSync(path.join(folder, '.vscode', 'settings.json'), JSON.stringify({ 'paygate.autoStart': true }));
  fs.writeFileSync(path.join(folder, 'paygate.json'), JSON.stringify({ serverCommand: process.execPath, serverArgs: [path.join(ROOT, 'dist', 'example-server.js')] }));
  await page.goto(server.url(folder), { waitUntil: 'domcontentloaded' });
  const toast = await notification(page, 'PayGate is gating paygate.json', 90_000);
  const url = /(http:\/\/127\.0\.0\.1:\d+)\/mcp/.exec(toast)![1];
  assert.equal((await fetch(`${url}/health`)).status, 200);

  await runCommand(page, 'Output: Show Output Channels');
  await pickRow(page, 'PayGate');
  const output = page.locator('.part.panel .monaco-editor .view-lines').first();
  const ready = await waitFor('the gate-ready line in the PayGate output', async () => /gate ready at \S+: \d+ ms after the start was asked, (\d+) ms after the extension activated/.exec((await output.innerText()).replace(/\s+/g, ' ')) ?? undefined, 20_000);
  figure('extension activated → gate ready (paygate.autoStart, no clicks)', `${ready[1]} ms`);
});
