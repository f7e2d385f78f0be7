import { build } from 'esbuild';

/**
 * Bundles the CLI (also the library entry later) and the bundled example server into dist/, one ESM
 * file each, dependencies included, so that `dist/` runs without node_modules.
 */
const production = process.argv.includes('--production');

await build({
  entryPoints: {
    cli: 'server/src/cli.ts',
    'example-server': 'examples/example-server.ts',
  },
  outdir: 'dist',
  bundle: true,
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
