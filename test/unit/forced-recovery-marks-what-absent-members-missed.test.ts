// Proves: when forced recovery gives up an absent member's chunk in a dirty stripe (taking it as
// zeros so parity is consistent), that member is recorded faulty and the stripe marked: when it
// returns it is stale (not taken in as if in sync), and re-add rebuilds that stripe, so parity
// agrees everywhere. Found by the fault simulation (RAID-5 seed 496, a member mid-re-add).
import { describe, expect, it } from 'vitest';
import { assembleDevices } from '../../src/engine/assemble.js';
import { prepareReAdd, runRebuild } from '../../src/engine/maintenance.js';
import { scrubArray } from '../../src/engine/scrub.js';
import { fillRandom, makeMemoryMembers, openMemoryArray } from '../helpers/memory-array.js';

describe('forced recovery around an absent member', () => {
  it('records it faulty and marks the stripe for its return', async () => {
    const devices = await makeMemoryMembers({ level: 5, raidDevices: 4, chunkSizeBytes: 4096, memberSizeBytes: 4 * 1024 * 1024 + 16 * 4096 });
    const first = await openMemoryArray(devices);
    await fillRandom(first, 5, 20);
    await first.close();
    const { array } = await assembleDevices(devices, { journal: { idleCleanMs: 0 } });
    const g = array.geometry;
    // A stripe where member 3 holds data; a write to another of its chunks, then power is lost.
    const stripe = [2, 3, 4].find((s) => g.stripeMap(s).dataRoles.includes(3))!;
    const other = g.stripeMap(stripe).dataRoles.findIndex((role) => role !== 3);
    await array.write(stripe * g.stripeDataBytes + other * 4096, Buffer.alloc(4096, 0xee));
    await array.abandon();

    const without = await assembleDevices(devices.slice(0, 3), { forceRecovery: true });
    const recovery = without.report.recovery as { lostBlocks: { firstBlock: number }[] };
    expect(recovery.lostBlocks.length).toBeGreaterThan(0);
    await without.array.close();

    const all = await assembleDevices(devices);
    expect(all.report.stale).toEqual(['mem3']);
    const plan = await prepareReAdd(all, 'mem3');
    expect(plan.mode).toBe('partial');
    await runRebuild(all.array, plan.index);
    const scrub = await scrubArray(all.array, { restart: true });
    expect(scrub.mismatches).toEqual([]);
    await all.array.close();
  });
});
