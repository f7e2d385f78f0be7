import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { build } from 'esbuild';

/**
 * Bundles the CLI, the library (`import { Gate } from 'paygate-mcp'`) and the example server into
 * dist/, one ESM file each, dependencies included, so that `dist/` runs without node_modules; then
 * writes the library's type declarations to dist/types.
 */
const production = process.argv.includes('--production');

await build({
  entryPoints: {
    cli: 'server/src/cli.ts',
    index: 'server/src/index.ts',
    'example-server': 'examples/example-server.ts',
  },
  outdir: 'dist',
  bundle: true,
  // Commands load their code when they run; the chunks they share are files of their own.
  splitting: true,
  chunkNames: 'chunks/[name]-[hash]',
  platform: 'node',
  format: 'esm',
  target: 'node22',
  // Prefer ES module builds: jsonc-parser's UMD build loads its parts with require() calls a bundle cannot follow.
  mainFields: ['module', 'main'],
  sourcemap: true,
  minify: production,
  legalComments: 'none',
  logLevel: 'warning',
  banner: {
    // CommonJS dependencies call require() for Node built-ins; give the ESM bundle one.
    js: "import { createRequire as __paygateRequire } from 'node:module'; const require = __paygateRequire(import.meta.url);",
  },
});

execFileSync(process.execPath, [path.join('node_modules', 'typescript', 'bin', 'tsc'), '-p', 'server/tsconfig.types.json'], { stdio: 'inherit' });
// The sources import `./x.ts` (Node runs them as they are); declarations must name `./x.js` for their readers.
for (const file of fs.readdirSync('dist/types', { recursive: true, encoding: 'utf8' })) {
  if (!file.endsWith('.d.ts')) continue;
  const full = path.join('dist/types', file);
  fs.writeFileSync(full, fs.readFileSync(full, 'utf8').replace(/(from\s+'\.{1,2}\/[^']+)\.ts'/g, "$1.js'"));
}
