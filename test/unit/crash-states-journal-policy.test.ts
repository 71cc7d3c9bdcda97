// Proves the journal policy's guarantee: after a crash at any point of a concurrent workload
// (unflushed writes dropped, kept in random subsets, or torn), plus the loss of any member (any
// two on RAID-6), recovery leaves every acknowledged write intact at toughness durable and
// atomic, every other block old or new, parity consistent, and no block reading as EIO.
// JRAID_CRASH_STATES sets the states per level and acknowledgement point.
import { describe, expect, it } from 'vitest';
import { exploreCrashStates } from '../helpers/crash-explorer.js';

const STATES = Number(process.env.JRAID_CRASH_STATES ?? 5000);
// durable acknowledges later than atomic (every state it must survive, atomic must too): half the states.
const statesFor = (ackPoint: string) => ackPoint === 'atomic' ? STATES : Math.ceil(STATES / 2);

describe('crash-state exploration (journal policy, with member loss)', () => {
  for (const [level, raidDevices] of [[5, 3], [6, 4]] as const) {
    for (const ackPoint of ['durable', 'atomic'] as const) {
      it(`RAID-${level}, acknowledged at ${ackPoint}: ${statesFor(ackPoint)} crash states`, async () => {
        const result = await exploreCrashStates({ level, raidDevices, seed: level * 7919 + (ackPoint === 'atomic' ? 1 : 0), states: statesFor(ackPoint), policy: 'journal', ackPoint, loseMembers: true, writesPerBatch: 4, batches: 6 });
        console.log(`journal policy RAID-${level} at ${ackPoint}: explored ${result.statesExplored} crash states, ${result.failures.length} failing, (each cut with no member, each member${level === 6 ? ' and each pair' : ''} lost) over a log of ${result.logLength} member writes and flushes`);
        expect(result.failures).toEqual([]);
        expect(result.statesExplored).toBeGreaterThanOrEqual(statesFor(ackPoint));
      }, Math.max(900_000, statesFor(ackPoint) * 40));
    }
  }
});
