import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { build, type BuildOptions } from 'esbuild';

/**
 * Bundles the CLI (which is also the editor's daemon: `cli.js lsp`), the library
 * (`import { Gate } from 'paygate-mcp'`) and the example server into dist/, ESM, dependencies
 * included, so that `dist/` runs without node_modules; the VS Code extension into
 * dist/extension.cjs (extension hosts load CommonJS); then the library's type declarations into
 * dist/types. `--production` minifies, for the .vsix.
 */
const production = process.argv.includes('--production');
fs.rmSync('dist', { recursive: true, force: true });

/** What every bundle shares. */
const common = {
  outdir: 'dist',
  bundle: true,
  platform: 'node',
  // Desktop VS Code 1.101 runs extensions on Node 22; the CLI needs 22.13.
  target: 'node22',
  // Prefer ES module builds: jsonc-parser's UMD build loads its parts with require() calls a bundle cannot follow.
  mainFields: ['module', 'main'],
  sourcemap: true,
  // The .vsix carries maps for stack traces, not a second copy of the sources.
  sourcesContent: !production,
  minify: production,
  legalComments: 'none',
  logLevel: 'warning',
} satisfies BuildOptions;

await build({
  ...common,
  entryPoints: { extension: 'client/src/extension.ts' },
  outExtension: { '.js': '.cjs' },
  format: 'cjs',
  external: ['vscode'],
});

await build({
  ...common,
  entryPoints: {
    cli: 'server/src/cli.ts',
    index: 'server/src/index.ts',
    'example-server': 'examples/example-server.ts',
  },
  // Commands load their code when they run; the chunks they share are files of their own.
  splitting: true,
  chunkNames: 'chunks/[name]-[hash]',
  format: 'esm',
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
