// Proves: with members on loop devices (FileDevice on block devices: records written through the
// O_DSYNC descriptor, data buffered), a crash at any point of a concurrent workload leaves parity
// consistent after dirty-log recovery, acknowledged writes intact, in-flight blocks old, new or
// EIO. Root only (CI fails loudly without). JRAID_CRASH_STATES_FILES sets the states per level.
import { describe, expect, it } from 'vitest';
import { exploreCrashStates } from '../helpers/crash-explorer.js';
import { loopSuiteEnabled } from '../helpers/loop.js';

const STATES = Number(process.env.JRAID_CRASH_STATES_FILES ?? 2000);

describe.runIf(loopSuiteEnabled())('crash-state exploration (dirty-log) on loop devices', () => {
  for (const [level, raidDevices] of [[5, 4], [6, 5]] as const) {
    it(`RAID-${level}: ${STATES} crash states`, async () => {
      const result = await exploreCrashStates({ level, raidDevices, seed: level * 130_363, states: STATES, members: 'loop' });
      console.log(`RAID-${level} on loop devices: explored ${result.statesExplored} crash states over a log of ${result.logLength} member writes and flushes; ${result.tornBlocksFound} torn blocks caught as EIO`);
      expect(result.failures).toEqual([]);
      expect(result.statesExplored).toBeGreaterThanOrEqual(STATES);
    }, 600_000);
  }
});
