#!/usr/bin/env node
// `npm run build` step after tsc: bundles the command line (dist/src/cli/main.js and every
// module it imports) into one file, dist/src/cli/jraid.mjs, which bin/jraid runs. Node 20 has
// no compile cache, and resolving and compiling ~200 separate ES modules cost each call of
// jraid about a tenth of a second of CPU; one file costs a fraction of that.
//
// Left outside the bundle: native addons (loaded from node_modules as before) and the packages
// the CLI loads only when needed (ora, fs-extra). The bundle lives beside main.js so that the
// paths the code resolves from import.meta.url (package.json, ../parity/kernels.wasm) are the
// same from either file.
import { build } from 'esbuild';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { statSync } from 'node:fs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const outfile = join(root, 'dist/src/cli/jraid.mjs');
await build({
  entryPoints: [join(root, 'dist/src/cli/main.js')],
  outfile,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  external: ['@node-rs/crc32', 'fs-native-extensions', 'ora', 'fs-extra'],
  // CommonJS packages inside the bundle (commander, cli-table3) call require().
  banner: { js: "import { createRequire as createRequireForBundle } from 'node:module'; const require = createRequireForBundle(import.meta.url);" },
  sourcemap: 'linked',
  logLevel: 'warning',
});
console.log(`bundle: dist/src/cli/main.js -> dist/src/cli/jraid.mjs (${Math.round(statSync(outfile).size / 1024)} KiB)`);
