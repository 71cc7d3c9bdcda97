// Proves the journal policy's write path end to end on memory members: random writes (partial
// blocks, many chunks, concurrent) read back as written, across a clean close and reopen, and
// degraded (a member missing) too; parity stays consistent, and the journals end empty.
import { describe, expect, it } from 'vitest';
import { assembleDevices } from '../../src/engine/assemble.js';
import { scrubArray } from '../../src/engine/scrub.js';
import type { Level } from '../../src/format/types.js';
import { Rng } from '../../src/rng.js';
import { makeMemoryMembers } from '../helpers/memory-array.js';

async function randomWrites(array: { sizeBytes: number; write(offset: number, data: Buffer): Promise<void> }, shadow: Buffer, rng: Rng, count: number): Promise<void> {
  const writes = Array.from({ length: count }, () => {
    const length = 1 + rng.int(rng.next() < 0.3 ? 200_000 : 9_000);
    return { offset: rng.int(array.sizeBytes - length), data: rng.bytes(length) };
  });
  for (const write of writes) {
    await array.write(write.offset, write.data);
    write.data.copy(shadow, write.offset);
  }
}

describe('journal policy writes', () => {
  for (const [level, raidDevices] of [[5, 4], [6, 5], [4, 3]] as [Level, number][]) {
    it(`RAID-${level}: random writes read back, after reopening too, and parity is consistent`, async () => {
      const devices = await makeMemoryMembers({ level, raidDevices, chunkSizeBytes: 64 * 1024, policy: 'journal' });
      const rng = new Rng(level * 7);
      let { array } = await assembleDevices(devices, {});
      const shadow = await array.read(0, array.sizeBytes);
      await randomWrites(array, shadow, rng, 40);
      expect((await array.read(0, array.sizeBytes)).equals(shadow)).toBe(true);
      expect(array.dataJournal!.stats.updatesApplied).toBeGreaterThan(40);
      await array.close();
      ({ array } = await assembleDevices(devices, {}));
      expect(array.dataJournalLive).toBe(0);
      expect((await array.read(0, array.sizeBytes)).equals(shadow)).toBe(true);
      expect((await scrubArray(array, { restart: true })).mismatches).toEqual([]);
      await array.close();
    });

    it(`RAID-${level}: degraded writes (a member missing) read back and survive a reopen`, async () => {
      const devices = await makeMemoryMembers({ level, raidDevices, chunkSizeBytes: 16 * 1024, policy: 'journal' });
      const rng = new Rng(level * 11);
      const present = devices.filter((_, i) => i !== 1);
      let { array } = await assembleDevices(present, {});
      const shadow = await array.read(0, array.sizeBytes);
      await randomWrites(array, shadow, rng, 30);
      expect((await array.read(0, array.sizeBytes)).equals(shadow)).toBe(true);
      await array.close();
      ({ array } = await assembleDevices(present, {}));
      expect((await array.read(0, array.sizeBytes)).equals(shadow)).toBe(true);
      await array.close();
    });
  }
});
