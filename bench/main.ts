// jraid benchmarks: `node dist/bench/main.js [--json] [name...]` runs the named benches
// (default: all) and prints each figure beside a reference measured in the same run; with
// --json, stdout is one JSON document with every comparison instead (for scripts).
//
// To add a bench: write one `Bench` function in its own file and add one line to BENCHES.

import os from 'node:os';
import { comparisonJson, formatComparison, type Bench, type Comparison } from './measure.js';
import { benchParity } from './parity.js';
import { benchMaintenance } from './maintenance.js';
import { benchGroupCommit, benchRecovery } from './journal.js';
import { benchNbd } from './nbd.js';
import { benchTakeover } from './takeover.js';
import { benchCluster } from './cluster.js';

const BENCHES: Record<string, Bench> = {
  parity: benchParity,
  maintenance: benchMaintenance,
  recovery: benchRecovery,
  'group-commit': benchGroupCommit,
  nbd: benchNbd,
  takeover: benchTakeover,
  cluster: benchCluster,
};

async function main(argv: readonly string[]): Promise<number> {
  const json = argv.includes('--json');
  const named = argv.filter((arg) => arg !== '--json');
  const names = named.length > 0 ? named : Object.keys(BENCHES);
  const unknown = names.filter((name) => !Object.hasOwn(BENCHES, name));
  if (unknown.length > 0) {
    console.error(`jraid bench: unknown bench ${unknown.join(', ')}; known: ${Object.keys(BENCHES).join(', ')}`);
    return 2;
  }
  const machine = { node: process.version, cpu: os.cpus()[0]?.model ?? 'unknown', date: new Date().toISOString() };
  if (!json) console.log(`jraid bench: node ${machine.node}, cpu ${machine.cpu}, ${machine.date}`);
  const results: ({ bench: string } & ReturnType<typeof comparisonJson>)[] = [];
  // With --json, whatever a bench prints itself (a skip notice) goes to stderr: stdout is the document.
  const print = console.log;
  if (json) console.log = console.error;
  try {
    for (const name of names) {
      await BENCHES[name]!((comparison: Comparison) => {
        if (json) results.push({ bench: name, ...comparisonJson(comparison) });
        else print(formatComparison(comparison));
      });
    }
  } finally {
    console.log = print;
  }
  if (json) console.log(JSON.stringify({ ...machine, results }, null, 2));
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  },
);
