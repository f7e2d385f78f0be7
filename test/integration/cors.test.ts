import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, test } from 'node:test';
import { chromium, type Browser } from 'playwright-core';
import { GateProcess } from '../helpers/gate.ts';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** A web site on its own 127.0.0.1 port: another origin than the gate's. */
async function site(): Promise<string> {
  const server = http.createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>MCP web client</title>'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  after(() => server.close());
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

const listed = await site();
const unlisted = await site();
const gate = await GateProcess.start(['--allowed-origin', listed]);
const { key } = await gate.createKey({ credits: 100 });
const mcpHeaders = { accept: 'application/json, text/event-stream', 'content-type': 'application/json' };
const ping = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' });

function preflight(origin: string, path = '/mcp'): Promise<Response> {
  return fetch(`${gate.base}${path}`, {
    method: 'OPTIONS',
    headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type, x-api-key, mcp-session-id' },
  });
}

test('a preflight from a listed origin gets 204 with the methods and headers MCP clients send', async () => {
  const response = await preflight(listed);
  assert.equal(response.status, 204);
  assert.equal(response.headers.get('access-control-allow-origin'), listed);
  assert.equal(response.headers.get('vary'), 'Origin');
  assert.equal(response.headers.get('access-control-allow-methods'), 'POST, GET, DELETE');
  const allowed = response.headers.get('access-control-allow-headers')!.toLowerCase().split(', ');
  for (const header of ['content-type', 'accept', 'authorization', 'x-api-key', 'mcp-session-id', 'mcp-protocol-version', 'last-event-id', 'mcp-method', 'mcp-name']) {
    assert.ok(allowed.includes(header), `${header} is not allowed`);
  }
  assert.equal(response.headers.get('access-control-max-age'), '7200');
});

test('a preflight from an unlisted origin, loopback or not, gets 403 without CORS headers', async () => {
  for (const origin of [unlisted, 'https://evil.example.com']) {
    const response = await preflight(origin);
    assert.equal(response.status, 403, origin);
    assert.match(await response.text(), /--allowed-origin/);
    assert.equal(response.headers.get('access-control-allow-origin'), null, origin);
  }
});

test('answers to a listed origin carry its CORS headers; an unlisted loopback origin is served without them', async () => {
  const fromListed = await fetch(gate.base + '/mcp', { method: 'POST', headers: { ...mcpHeaders, origin: listed }, body: ping });
  assert.equal(fromListed.status, 200);
  assert.equal(fromListed.headers.get('access-control-allow-origin'), listed);
  assert.match(fromListed.headers.get('access-control-expose-headers')!, /Mcp-Session-Id, X-Credits-Remaining, X-RateLimit-Limit.*Retry-After, WWW-Authenticate/);
  const refused = await fetch(gate.base + '/mcp', { method: 'POST', headers: { ...mcpHeaders, origin: listed }, body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'echo' } }) });
  assert.equal(refused.status, 401);
  assert.equal(refused.headers.get('access-control-allow-origin'), listed, 'a refusal must be readable too');
  const fromLoopback = await fetch(gate.base + '/mcp', { method: 'POST', headers: { ...mcpHeaders, origin: unlisted }, body: ping });
  assert.equal(fromLoopback.status, 200);
  assert.equal(fromLoopback.headers.get('access-control-allow-origin'), null);
  const noOrigin = await fetch(gate.base + '/mcp', { method: 'OPTIONS' });
  assert.equal(noOrigin.status, 204);
  assert.equal(noOrigin.headers.get('access-control-allow-origin'), null);
});

test('the admin API never sends CORS headers, not even to a listed origin', async () => {
  const options = await preflight(listed, '/keys');
  assert.ok(options.status >= 400, `OPTIONS /keys answered ${options.status}`);
  assert.equal(options.headers.get('access-control-allow-origin'), null);
  for (const path of ['/health', '/status', '/balance']) {
    const response = await fetch(gate.base + path, { headers: { origin: listed, 'x-admin-key': 'admin_test_0123456789abcdef', 'x-api-key': key } });
    assert.equal(response.headers.get('access-control-allow-origin'), null, path);
    assert.equal(response.headers.get('access-control-expose-headers'), null, path);
  }
});

let chrome: Promise<Browser> | undefined;

/** Headless Chromium, the browser the VS Code tests drive; its absence fails the test with what to do. */
function browser(): Promise<Browser> {
  if (!fs.existsSync(CHROMIUM)) {
    assert.fail(`Chromium is not installed at ${CHROMIUM}; install it with "sudo apt-get install -y chromium" (Debian, Ubuntu) or set CHROMIUM_PATH`);
  }
  chrome ??= chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
  return chrome;
}
after(async () => (await chrome)?.close());

interface PageCall {
  sessionId: string | null;
  text: string;
  credits: string | null;
}

/** What a page on `origin` gets when it initializes a session and calls echo with fetch, or the error fetch rejects with. */
async function callFromPage(chrome: Browser, origin: string): Promise<PageCall | { failed: string }> {
  const page = await chrome.newPage();
  try {
    await page.goto(origin);
    return await page.evaluate(
      async ({ url, key }) => {
        const post = async (body: object, headers: Record<string, string>) => {
          const response = await fetch(url, { method: 'POST', headers: { accept: 'application/json, text/event-stream', 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
          return { response, json: (await response.json()) as { result: { content: { text: string }[] } } };
        };
        try {
          const init = await post({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'page', version: '1' } } }, { 'x-api-key': key });
          const sessionId = init.response.headers.get('mcp-session-id');
          const call = await post(
            { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'echo', arguments: { text: 'from the page' } } },
            { 'x-api-key': key, 'mcp-session-id': sessionId ?? '', 'mcp-protocol-version': '2025-11-25' },
          );
          return { sessionId, text: call.json.result.content[0]!.text, credits: call.response.headers.get('x-credits-remaining') };
        } catch (error) {
          return { failed: String(error) };
        }
      },
      { url: `${gate.base}/mcp`, key },
    );
  } finally {
    await page.close();
  }
}

test('in Chromium, a page on a listed origin calls a tool and reads the answer, its session and its balance', async () => {
  const result = await callFromPage(await browser(), listed);
  assert.ok(!('failed' in result), `the page's fetch failed: ${'failed' in result ? result.failed : ''}`);
  assert.equal(result.text, 'from the page');
  assert.match(result.sessionId ?? '', /.{16,}/);
  assert.equal(result.credits, '99');
  assert.equal(await gate.balance(key), 99);
});

test('in Chromium, a page on an unlisted origin is refused: its fetch rejects and nothing is charged', async () => {
  const before = await gate.balance(key);
  const result = await callFromPage(await browser(), unlisted);
  assert.ok('failed' in result, `the page read ${JSON.stringify(result)}`);
  assert.match(result.failed, /TypeError: Failed to fetch/);
  assert.equal(await gate.balance(key), before);
});
