// jraid benchmarks: `node dist/bench/main.js [name...]` runs the named benches (default: all)
// and prints each figure beside a reference measured in the same run.
//
// To add a bench: write one `Bench` function in its own file and add one line to BENCHES.

import os from 'node:os';
import { formatComparison, type Bench } from './measure.js';
import { benchParity } from './parity.js';
import { benchMaintenance } from './maintenance.js';
import { benchGroupCommit, benchRecovery } from './journal.js';
import { benchNbd } from './nbd.js';

const BENCHES: Record<string, Bench> = {
  parity: benchParity,
  maintenance: benchMaintenance,
  recovery: benchRecovery,
  'group-commit': benchGroupCommit,
  nbd: benchNbd,
};

async function main(argv: readonly string[]): Promise<number> {
  const names = argv.length > 0 ? argv : Object.keys(BENCHES);
  const unknown = names.filter((name) => !Object.hasOwn(BENCHES, name));
  if (unknown.length > 0) {
    console.error(`jraid bench: unknown bench ${unknown.join(', ')}; known: ${Object.keys(BENCHES).join(', ')}`);
    return 2;
  }
  console.log(`jraid bench: node ${process.version}, cpu ${os.cpus()[0]?.model ?? 'unknown'}, ${new Date().toISOString()}`);
  for (const name of names) {
    await BENCHES[name]!((comparison) => console.log(formatComparison(comparison)));
  }
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  },
);
