import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateApiKey, hashApiKey } from '../keys/apiKey.ts';
import { parseFlags, resolveSettings } from './args.ts';
import { runGate } from './run.ts';
import { keptSecret } from './secrets.ts';

const DEMO_CREDITS = 1000;

/** The package root: the folder that holds `examples/` (one level above `dist/` or `server/src/cli/`). */
function packageRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!fs.existsSync(path.join(dir, 'examples', 'paygate.json'))) {
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error('cannot find the bundled examples/ folder');
    dir = parent;
  }
  return dir;
}

function exampleServer(root: string): string {
  const built = path.join(root, 'dist', 'example-server.js');
  return fs.existsSync(built) ? built : path.join(root, 'examples', 'example-server.ts');
}

/** `paygate-mcp demo`: the bundled example server behind a gate, with a demo key that has credits. */
export async function runDemo(argv: string[]): Promise<void> {
  const { values } = parseFlags(argv, {
    port: { type: 'string' },
    'state-file': { type: 'string' },
    'show-admin-key': { type: 'boolean' },
  });
  const root = packageRoot();
  const settings = resolveSettings({
    config: path.join(root, 'examples', 'paygate.json'),
    server: `"${process.execPath}" "${exampleServer(root)}"`,
    ...(values.port === undefined ? {} : { port: values.port }),
    ...(values['state-file'] === undefined ? {} : { 'state-file': values['state-file'] }),
  });
  const demoKey = keptSecret(`${path.resolve(settings.stateFile)}.demo-key`, generateApiKey);
  settings.importKeys[demoKey.value] = { name: 'demo', credits: DEMO_CREDITS };
  await runGate(settings, {
    showAdminKey: values['show-admin-key'] ?? false,
    extraBanner: async (gate) => {
      const credits = (await gate.engine.ledger.findByHash(hashApiKey(demoKey.value)))?.credits ?? 0;
      const call = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo', arguments: { text: 'hello' } } });
      return [
        `  Demo API key  ${demoKey.value}  (${credits} credits left; kept in ${demoKey.file})`,
        '',
        'Call a tool:',
        `  curl -s ${gate.url} -H 'Content-Type: application/json' -H 'X-API-Key: ${demoKey.value}' \\`,
        `    -d '${call}'`,
        'See your balance:',
        `  curl -s ${gate.url.replace(/\/mcp$/, '/balance')} -H 'X-API-Key: ${demoKey.value}'`,
      ];
    },
  });
}
