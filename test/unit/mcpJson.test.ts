import assert from 'node:assert/strict';
import { test } from 'node:test';
import { inputsOf, parseMcpJson, prefixOf, resolveServer, substitute } from '../../client/src/mcpJson.ts';

const MCP_JSON = `{
  // servers of this workspace
  "inputs": [
    { "type": "promptString", "id": "token", "description": "GitHub token", "password": true },
    { "type": "pickString", "id": "region", "description": "Region", "options": ["eu", "us"] },
  ],
  "servers": {
    "github": { "command": "npx", "args": ["-y", "server-github", "--region", "\${input:region}"], "env": { "TOKEN": "\${input:token}" } },
    "files": { "type": "stdio", "command": "node", "args": ["\${workspaceFolder}/server.js"], "envFile": "\${workspaceFolder}/.env", "cwd": "\${workspaceFolder}" },
    "remote": { "type": "http", "url": "https://example.com/mcp" },
    "broken": 42
  }
}`;

test('mcp.json (JSONC) gives its stdio servers and inputs; remote and malformed entries are skipped with why', () => {
  const parsed = parseMcpJson(MCP_JSON);
  assert.deepEqual(parsed.servers.map((server) => server.name), ['github', 'files']);
  assert.deepEqual(parsed.inputs.map((input) => [input.id, input.type, input.password]), [['token', 'promptString', true], ['region', 'pickString', false]]);
  assert.deepEqual(parsed.skipped, ['remote: a remote server (url); only stdio servers are gated from mcp.json', 'broken: not an object']);
  assert.throws(() => parseMcpJson('{ "servers": '), /not valid JSON/);
});

test('the inputs a server needs are found once each, in order', () => {
  const [github, files] = parseMcpJson(MCP_JSON).servers;
  assert.deepEqual(inputsOf(github!), ['region', 'token']);
  assert.deepEqual(inputsOf(files!), []);
});

test('variables are resolved everywhere in a server; an unknown one is an error naming it', () => {
  const [github, files] = parseMcpJson(MCP_JSON).servers;
  const variables: Record<string, string> = { workspaceFolder: '/ws', 'input:token': 's3cret', 'input:region': 'eu' };
  const lookup = (name: string) => variables[name];
  assert.deepEqual(resolveServer(github!, lookup), { name: 'github', command: 'npx', args: ['-y', 'server-github', '--region', 'eu'], env: { TOKEN: 's3cret' }, envFile: undefined });
  assert.deepEqual(resolveServer(files!, lookup), { name: 'files', command: 'node', args: ['/ws/server.js'], env: {}, envFile: '/ws/.env', cwd: '/ws' });
  assert.throws(() => substitute('${command:pick}', lookup), /\$\{command:pick\} cannot be resolved here/);
});

test('server names become prefixes without the characters a prefix cannot have', () => {
  assert.equal(prefixOf('github'), 'github');
  assert.equal(prefixOf('my server:v2'), 'my-server-v2');
  assert.equal(prefixOf('::'), '-');
});
