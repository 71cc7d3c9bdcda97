// Proves: a fault-simulation seed replays exactly: the same seed gives the same trace (every
// operation, fault, crash and I/O completion in the same order), so a failing seed can be studied.
import { expect, it } from 'vitest';
import { runSimulationSeed } from '../helpers/sim-run.js';
import type { Level } from '../../src/format/types.js';

it('the same seed gives the same trace, I/O by I/O', async () => {
  for (const [level, seed] of [[5, 7], [6, 11], [4, 3]] as [Level, number][]) {
    const traces: string[][] = [[], []];
    for (const trace of traces) {
      const result = await runSimulationSeed({ level, seed, operations: 150, traceIo: true, trace: (line) => trace.push(line.replace(/[0-9a-f]{8}-[0-9a-f-]{27}/g, 'UUID')) });
      expect(result.violations).toEqual([]);
    }
    expect(traces[0]!.length).toBeGreaterThan(500);
    expect(traces[1]).toEqual(traces[0]);
  }
});
