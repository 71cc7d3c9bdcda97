// Proves: the dirty-log journal's batched mark-clean (completed stripes made durable by a member
// flush in the background, dropped from the record only by a record after that flush ended)
// keeps every crash state recoverable. The workload runs each batch's writes in waves with a
// clean batch of one or two stripes, so stripes complete while later writers still need
// records: the background flush and the drop riding on a later record happen many times in
// the recorded run (the plain explorer's writes all finish together and are flushed by a sync).
import { describe, expect, it } from 'vitest';
import { exploreCrashStates } from '../helpers/crash-explorer.js';

const STATES = Number(process.env.JRAID_CRASH_STATES ?? 5000) / 2;

describe('crash-state exploration (dirty-log, background mark-clean flush)', () => {
  for (const [level, raidDevices, cleanBatchStripes] of [[5, 4, 1], [6, 5, 2]] as const) {
    it(`RAID-${level}, batches of ${cleanBatchStripes} stripe(s): ${STATES} crash states`, async () => {
      const result = await exploreCrashStates({ level, raidDevices, seed: level * 6007, states: STATES, waves: 3, writesPerBatch: 6, batches: 10, cleanBatchStripes });
      console.log(`RAID-${level}: ${result.backgroundFlushes} background flushes; explored ${result.statesExplored} crash states over a log of ${result.logLength} member writes and flushes`);
      expect(result.backgroundFlushes).toBeGreaterThanOrEqual(5);
      expect(result.failures).toEqual([]);
      expect(result.statesExplored).toBeGreaterThanOrEqual(STATES);
    }, 600_000);
  }
});
