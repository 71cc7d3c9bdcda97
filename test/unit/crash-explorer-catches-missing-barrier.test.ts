// Proves the explorer can fail: with the journal barrier removed (writers released before their
// record is durable), it finds crash states whose parity recovery cannot restore, on memory
// members and on image files (records through the O_DSYNC descriptor).
import { describe, expect, it } from 'vitest';
import { exploreCrashStates } from '../helpers/crash-explorer.js';

describe('crash explorer without the journal barrier', () => {
  for (const members of ['memory', 'files'] as const) {
    it(`finds inconsistent stripes (${members})`, async () => {
      const result = await exploreCrashStates({ level: 5, raidDevices: 4, seed: 4242, states: 3000, unsafeSkipBarrier: true, failuresMax: 3, members });
      console.log(`without the barrier (${members}): ${result.failures.length} failing state(s) in ${result.statesExplored} explored; first: ${result.failures[0]}`);
      expect(result.failures.length).toBeGreaterThan(0);
      expect(result.failures.some((failure) => /parity inconsistent|neither its old nor its new|changed/.test(failure))).toBe(true);
    }, 600_000);
  }
});
