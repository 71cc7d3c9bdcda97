// Proves the journal policy's proxy under crashes: a member fails in the middle of a concurrent
// workload (its updates in flight published to its proxy, later ones served by it), and at every
// cut point (unflushed writes dropped, kept in random subsets, or torn), recovered with that
// member back (a transient failure), without it, and on RAID-6 also without it and each other
// one, every acknowledged write reads back, every other block old or new, no EIO; and a journal
// step left out is still caught in this mode.
// JRAID_CRASH_STATES sets the states per level.
import { describe, expect, it } from 'vitest';
import { exploreCrashStates } from '../helpers/crash-explorer.js';

const STATES = Math.ceil(Number(process.env.JRAID_CRASH_STATES ?? 5000) / 8);

describe('crash-state exploration (journal policy, a member failing mid-write)', () => {
  for (const [level, raidDevices] of [[5, 3], [6, 4]] as const) {
    it(`RAID-${level}, acknowledged at atomic: ${STATES} crash states`, async () => {
      const result = await exploreCrashStates({ level, raidDevices, seed: level * 31 + 5, states: STATES, policy: 'journal', ackPoint: 'atomic', writesPerBatch: 4, batches: 5, failMember: { index: 1, afterBatch: 2 } });
      console.log(`journal policy RAID-${level}, member 1 failing mid-write: explored ${result.statesExplored} crash states, ${result.failures.length} failing, over a log of ${result.logLength} member writes and flushes`);
      expect(result.proxyPublished).toBeGreaterThan(0);
      expect(result.failures).toEqual([]);
      expect(result.statesExplored).toBeGreaterThanOrEqual(STATES);
    }, 600_000);
  }

  it('the exploration can fail in this mode: in-place copies rewritten before both sides completed are caught', async () => {
    const result = await exploreCrashStates({ level: 5, raidDevices: 3, seed: 5 * 31 + 5, states: 1000, policy: 'journal', ackPoint: 'durable', writesPerBatch: 4, batches: 5, failMember: { index: 1, afterBatch: 2 }, unsafeJournalSkip: 'apply-before-completed', failuresMax: 1 });
    expect(result.failures.length).toBeGreaterThan(0);
  }, 600_000);
});
