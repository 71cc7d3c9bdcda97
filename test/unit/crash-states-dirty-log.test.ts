// Proves: after a crash at any point of a concurrent workload (unflushed writes dropped, kept in
// random subsets, or torn), dirty-log recovery leaves parity consistent, acknowledged writes
// intact, and in-flight blocks old, new or EIO. JRAID_CRASH_STATES sets the states per level.
import { describe, expect, it } from 'vitest';
import { exploreCrashStates } from '../helpers/crash-explorer.js';

const STATES = Number(process.env.JRAID_CRASH_STATES ?? 5000);

describe('crash-state exploration (dirty-log)', () => {
  for (const [level, raidDevices] of [[4, 4], [5, 4], [6, 5]] as const) {
    it(`RAID-${level}: ${STATES} crash states`, async () => {
      const result = await exploreCrashStates({ level, raidDevices, seed: level * 7919, states: STATES });
      console.log(`RAID-${level}: explored ${result.statesExplored} crash states over a log of ${result.logLength} member writes and flushes; ${result.tornBlocksFound} torn blocks caught as EIO`);
      expect(result.failures).toEqual([]);
      expect(result.statesExplored).toBeGreaterThanOrEqual(STATES);
    }, 600_000);
  }
});
