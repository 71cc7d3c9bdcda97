#!/usr/bin/env node
// `npm run build` step after tsc: assembles the WebAssembly text kernels of src/ into binary
// modules beside their compiled JavaScript in dist/ (dist/src/parity/kernels.wasm), with wabt
// from the npm registry, so no toolchain is downloaded and no binary is committed.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import initWabt from 'wabt';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const SOURCES = ['src/parity/kernels.wat'];

const wabt = await initWabt();
for (const source of SOURCES) {
  const path = join(root, source);
  const text = readFileSync(path, 'utf8');
  // Only the SIMD feature: the kernels must run on Node 20 without flags.
  const module = wabt.parseWat(source, text, { simd: true });
  try {
    module.validate();
    const { buffer } = module.toBinary({ log: false, write_debug_names: true });
    const out = join(root, 'dist', source.replace(/\.wat$/, '.wasm'));
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, buffer);
    console.log(`build-wasm: ${source} -> ${relative(root, out)} (${buffer.length} bytes)`);
  } finally {
    module.destroy();
  }
}
