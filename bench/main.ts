// jraid benchmarks: `node dist/bench/main.js [--json] [--quick] [name...]` runs the named
// benches (default: all; with --quick, the ones that print issue 11's goal rows) and prints
// each figure beside a reference measured in the same run; with --json, stdout is one JSON
// document with every comparison instead (for scripts), and the goal rows a run missed.
//
// To add a bench: write one `Bench` function in its own file and add one line to BENCHES.

import os from 'node:os';
import { comparisonJson, formatComparison, setQuick, TABLE_HEADER, type Bench, type Comparison } from './measure.js';
import { benchParity } from './parity.js';
import { benchMaintenance } from './maintenance.js';
import { benchGroupCommit, benchRecovery } from './journal.js';
import { benchNbd } from './nbd.js';
import { benchTakeover } from './takeover.js';
import { benchCluster } from './cluster.js';
import { benchMemberIo } from './member-io.js';
import { GOAL_BENCHES, GOAL_ROW_IDS } from './goals.js';

const BENCHES: Record<string, Bench> = {
  parity: benchParity,
  maintenance: benchMaintenance,
  recovery: benchRecovery,
  'group-commit': benchGroupCommit,
  nbd: benchNbd,
  takeover: benchTakeover,
  cluster: benchCluster,
  'member-io': benchMemberIo,
};

async function main(argv: readonly string[]): Promise<number> {
  const json = argv.includes('--json');
  const quick = argv.includes('--quick') || process.env.JRAID_BENCH_QUICK === '1';
  setQuick(quick);
  const named = argv.filter((arg) => arg !== '--json' && arg !== '--quick');
  const names = named.length > 0 ? named : quick ? [...GOAL_BENCHES] : Object.keys(BENCHES);
  const unknown = names.filter((name) => !Object.hasOwn(BENCHES, name));
  if (unknown.length > 0) {
    console.error(`jraid bench: unknown bench ${unknown.join(', ')}; known: ${Object.keys(BENCHES).join(', ')}`);
    return 2;
  }
  const machine = { node: process.version, cpu: os.cpus()[0]?.model ?? 'unknown', date: new Date().toISOString(), quick };
  if (!json) {
    console.log(`jraid bench: node ${machine.node}, cpu ${machine.cpu}, ${machine.date}${quick ? ' (quick: short runs, figures not representative)' : ''}`);
    console.log(TABLE_HEADER);
  }
  const results: ({ bench: string } & ReturnType<typeof comparisonJson>)[] = [];
  // With --json, whatever a bench prints itself (a skip notice) goes to stderr: stdout is the document.
  const print = console.log;
  if (json) console.log = console.error;
  try {
    for (const name of names) {
      await BENCHES[name]!((comparison: Comparison) => {
        results.push({ bench: name, ...comparisonJson(comparison) });
        if (!json) print(formatComparison(comparison));
      });
    }
  } finally {
    console.log = print;
  }
  // Goal rows a run of every goal bench did not print (a bench skipped for a missing tool).
  const printed = new Set(results.map((row) => row.id));
  const missing = GOAL_BENCHES.every((name) => names.includes(name)) ? GOAL_ROW_IDS.filter((id) => !printed.has(id)) : [];
  if (json) console.log(JSON.stringify({ ...machine, results, missingGoalRows: missing }, null, 2));
  else if (missing.length > 0) console.log(`goal rows not measured in this run: ${missing.join(', ')}`);
  return missing.length > 0 ? 1 : 0;
}

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  },
);
