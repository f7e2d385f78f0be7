import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { test } from 'node:test';
import { ADMIN_KEY, GateProcess } from '../helpers/gate.ts';

const gate = await GateProcess.start();
const FIVE_MIB = 5 * 1024 * 1024;
const CHUNK = Buffer.alloc(64 * 1024, 0x20);

interface Sent {
  status: number | undefined;
  text: string;
  /** The error the request ended with, if any (a reset connection: ECONNRESET, EPIPE). */
  error: string | undefined;
}

/**
 * POSTs `total` bytes (endless when Infinity) in 64 KiB chunks with node:http, as a client streaming
 * an upload does, and reads whatever the gate answers.
 */
function upload(path: string, total: number, options: { declareLength: boolean }): Promise<Sent> {
  return new Promise((resolve) => {
    const headers: http.OutgoingHttpHeaders = { 'content-type': 'application/json', accept: 'application/json', 'x-admin-key': ADMIN_KEY };
    if (options.declareLength) headers['content-length'] = total;
    const sent: Sent = { status: undefined, text: '', error: undefined };
    const req = http.request({ host: '127.0.0.1', port: gate.port, path, method: 'POST', headers }, (res) => {
      sent.status = res.statusCode;
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (sent.text += chunk));
    });
    req.on('error', (error: NodeJS.ErrnoException) => (sent.error = error.code ?? error.message));
    req.on('close', () => resolve(sent));
    let written = 0;
    const write = () => {
      while (written < total) {
        written += CHUNK.length;
        if (!req.write(CHUNK)) return void req.once('drain', write);
      }
      req.end();
    };
    write();
  });
}

for (const path of ['/mcp', '/keys']) {
  for (const declareLength of [true, false]) {
    test(`a client streaming 5 MiB to ${path} (${declareLength ? 'Content-Length' : 'chunked'}) reads the 413, not a reset connection`, async () => {
      const sent = await upload(path, FIVE_MIB, { declareLength });
      assert.equal(sent.error, undefined, `the connection failed instead of answering: ${sent.error}`);
      assert.equal(sent.status, 413);
      assert.match(sent.text, /limit (is|of) 1048576/);
    });
  }

  test(`fetch posting 5 MiB to ${path} reads the 413 and its message`, async () => {
    const response = await fetch(`http://127.0.0.1:${gate.port}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json', 'x-admin-key': ADMIN_KEY },
      body: JSON.stringify({ text: 'x'.repeat(FIVE_MIB) }),
    });
    assert.equal(response.status, 413);
    assert.equal(response.headers.get('connection'), 'close');
    assert.match(await response.text(), /limit is 1048576/);
  });
}

test('a client that keeps sending after its 413 is cut off after a bounded amount, and the gate keeps serving', async () => {
  const declared = 1024 * 1024 * 1024;
  const socket = net.connect(gate.port, '127.0.0.1');
  let received = '';
  let written = 0;
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => (received += chunk));
  const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
  socket.on('error', () => {});
  socket.write(`POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:${gate.port}\r\nContent-Type: application/json\r\nContent-Length: ${declared}\r\n\r\n`);
  const write = () => {
    while (!socket.destroyed && written < declared) {
      written += CHUNK.length;
      if (!socket.write(CHUNK)) return void socket.once('drain', write);
    }
  };
  write();
  await closed;
  assert.match(received, /^HTTP\/1\.1 413 /);
  assert.ok(written < 256 * 1024 * 1024, `the gate read ${written} bytes of a refused body before closing`);
  const { key } = await gate.createKey();
  assert.equal((await gate.callTool(key, 'echo', { text: 'after' })).json.result.content[0].text, 'after');
});
