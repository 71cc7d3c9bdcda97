// Proves: with members on image files (FileDevice: records written through the O_DSYNC
// descriptor, data buffered), a crash at any point of a concurrent workload leaves parity
// consistent after dirty-log recovery, acknowledged writes intact, in-flight blocks old, new or
// EIO. JRAID_CRASH_STATES_FILES sets the states per level.
import { describe, expect, it } from 'vitest';
import { exploreCrashStates } from '../helpers/crash-explorer.js';

const STATES = Number(process.env.JRAID_CRASH_STATES_FILES ?? 2000);

describe('crash-state exploration (dirty-log) on image files', () => {
  for (const [level, raidDevices] of [[5, 4], [6, 5]] as const) {
    it(`RAID-${level}: ${STATES} crash states`, async () => {
      const result = await exploreCrashStates({ level, raidDevices, seed: level * 104_729, states: STATES, members: 'files' });
      console.log(`RAID-${level} on image files: explored ${result.statesExplored} crash states over a log of ${result.logLength} member writes and flushes; ${result.tornBlocksFound} torn blocks caught as EIO`);
      expect(result.failures).toEqual([]);
      expect(result.statesExplored).toBeGreaterThanOrEqual(STATES);
    }, 600_000);
  }
});
