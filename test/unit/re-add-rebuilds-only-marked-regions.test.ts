// Proves: a member that returns after a short absence is rebuilt only where writes landed while
// it was away (counted), and a member older than the marks gets a full rebuild, saying why.
import { describe, expect, it } from 'vitest';
import { assembleDevices } from '../../src/engine/assemble.js';
import { failDisk, prepareReAdd, runRebuild } from '../../src/engine/maintenance.js';
import { scrubArray } from '../../src/engine/scrub.js';
import { makeMemoryMembers, openMemoryArray, fillRandom } from '../helpers/memory-array.js';
import { MIB } from '../../src/units.js';

describe('re-add', () => {
  it('rebuilds only the regions written while the member was away', async () => {
    // 64 KiB chunks, 1 MiB write-intent regions: 16 stripes per region.
    const devices = await makeMemoryMembers({ level: 5, raidDevices: 4, chunkSizeBytes: 64 * 1024, memberSizeBytes: 4 * MIB + 16 * MIB });
    const first = await openMemoryArray(devices);
    const shadow = await fillRandom(first, 5);
    await first.close();
    const assembled = await assembleDevices(devices);
    const { array } = assembled;
    expect(array.sb.writeIntentChunkBytes).toBe(MIB);
    await failDisk(assembled, devices[2]!.path, false);
    // Three writes in three distinct 1 MiB member regions (array offsets: 3 MiB of data per MiB of member).
    for (const memberRegion of [0, 5, 11]) {
      const offset = memberRegion * 3 * MIB + 1000;
      const data = Buffer.alloc(5000, memberRegion + 1);
      await array.write(offset, data);
      data.copy(shadow, offset);
    }
    expect(array.writeIntent.markedBitCount()).toBe(3);
    const plan = await prepareReAdd(assembled, devices[2]!.path);
    expect(plan.mode).toBe('partial');
    expect(plan.reason).toMatch(/3 region\(s\) of 1048576 bytes/);
    const outcome = await runRebuild(array, plan.index);
    expect(outcome.mode).toBe('partial');
    expect(outcome.stripesRebuilt).toBe(3 * 16);
    expect(outcome.bytesWritten).toBe(3 * MIB);
    expect(array.degradedRoles()).toEqual([]);
    expect(array.writeIntent.tracking).toBe(false);
    expect((await array.read(0, array.sizeBytes)).equals(shadow)).toBe(true);
    expect((await scrubArray(array)).mismatches).toEqual([]);
    await array.close();
  });

  it('falls back to a full rebuild for a copy older than the marks', async () => {
    const devices = await makeMemoryMembers({ level: 6, raidDevices: 4, chunkSizeBytes: 64 * 1024, memberSizeBytes: 4 * MIB + 4 * MIB });
    const snapshot = Buffer.from(devices[0]!.bytes); // an old copy of member 0
    const assembled = await assembleDevices(devices);
    const { array } = assembled;
    // Member 0 leaves, misses a write, comes back (partial), and the array is whole again.
    await failDisk(assembled, devices[0]!.path, false);
    await array.write(0, Buffer.alloc(100, 7));
    await runRebuild(array, (await prepareReAdd(assembled, devices[0]!.path)).index);
    expect(array.writeIntent.tracking).toBe(false);
    // It leaves again; what returns is the old copy, which also missed the first write.
    await failDisk(assembled, devices[0]!.path, false);
    await array.write(5 * MIB, Buffer.alloc(100, 8));
    snapshot.copy(devices[0]!.bytes);
    const plan = await prepareReAdd(assembled, devices[0]!.path);
    expect(plan.mode).toBe('full');
    expect(plan.reason).toMatch(/it is older \(events \d+\) than the write-intent marks/);
    const outcome = await runRebuild(array, plan.index);
    expect(outcome.stripesRebuilt).toBe(array.geometry.stripeCount);
    expect((await array.read(0, 100)).equals(Buffer.alloc(100, 7))).toBe(true);
    expect((await scrubArray(array)).mismatches).toEqual([]);
    await array.close();
  });
});
