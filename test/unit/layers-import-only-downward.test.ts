// Proves the layering of src/ holds: each folder imports only folders below it (cli -> daemon
// -> app -> engine -> journal -> parity -> geometry -> format -> device), never one above.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = resolve(import.meta.dirname, '../../src');

/** Folders from the top down; a folder may import its own and any later one. */
const LAYERS = ['cli', 'daemon', 'app', 'engine', 'journal', 'parity', 'geometry', 'format', 'device', 'memory'] as const;
/** Shared by every layer and importing no layer: errors, units, rng, type declarations. */
const BASE = '(base)';

function layerOf(file: string): string {
  const first = relative(SRC, file).split('/')[0]!;
  if (/\.[jt]s$/.test(first) || first === 'types') return BASE;
  expect(LAYERS as readonly string[], `${first} is a known layer (add new folders to LAYERS)`).toContain(first);
  return first;
}

function rank(layer: string): number {
  return layer === BASE ? LAYERS.length : LAYERS.indexOf(layer as (typeof LAYERS)[number]);
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}

/** Relative import specifiers of a module, static and dynamic, type-only included. */
function importsOf(file: string, text = readFileSync(file, 'utf8')): string[] {
  const found = [...text.matchAll(/(?:from\s+|import\s*\(\s*|import\s+)'(\.[^']+)'/g)].map((match) => match[1]!);
  return found.map((specifier) => resolve(dirname(file), specifier));
}

/** Every import that goes up a layer, as "importer -> imported". */
function upwardImports(files: string[], textOf: (file: string) => string = (file) => readFileSync(file, 'utf8')): string[] {
  const problems: string[] = [];
  for (const file of files) {
    const from = layerOf(file);
    for (const target of importsOf(file, textOf(file))) {
      const to = layerOf(target);
      if (rank(to) < rank(from)) problems.push(`${relative(SRC, file)} (${from}) imports ${relative(SRC, target)} (${to})`);
    }
  }
  return problems;
}

describe('layering', () => {
  const files = sourceFiles(SRC);

  it('finds the source files and their imports', () => {
    expect(files.length).toBeGreaterThan(50);
    expect(files.some((file) => importsOf(file).length > 0)).toBe(true);
  });

  it('no module imports a layer above its own', () => {
    expect(upwardImports(files)).toEqual([]);
  });

  it('the journal never imports the engine, and the app layer sits between the commands and the engine', () => {
    const journal = files.filter((file) => layerOf(file) === 'journal');
    expect(journal.length).toBeGreaterThan(0);
    for (const file of journal) for (const target of importsOf(file)) expect(layerOf(target), `${relative(SRC, file)}`).not.toBe('engine');
    const engine = files.filter((file) => layerOf(file) === 'engine');
    for (const file of engine) for (const target of importsOf(file)) expect(['app', 'daemon', 'cli']).not.toContain(layerOf(target));
  });

  it('the check catches an upward import (a journal module importing the engine)', () => {
    const probe = join(SRC, 'journal', 'store.ts');
    const broken = `${readFileSync(probe, 'utf8')}\nimport type { RaidArray } from '../engine/raid-array.js';\n`;
    expect(upwardImports([probe])).toEqual([]);
    expect(upwardImports([probe], () => broken)).toEqual(['journal/store.ts (journal) imports engine/raid-array.js (engine)']);
  });
});
