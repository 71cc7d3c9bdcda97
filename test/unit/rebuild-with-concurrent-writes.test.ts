// Proves: writes that land during a rebuild, on both sides of its checkpoint, end up on the
// rebuilt member and everywhere else correctly (content exact, parity consistent).
import { describe, expect, it } from 'vitest';
import { assembleDevices } from '../../src/engine/assemble.js';
import { failDisk, prepareRebuild, runRebuild } from '../../src/engine/maintenance.js';
import { scrubArray } from '../../src/engine/scrub.js';
import { Rng } from '../../src/rng.js';
import { fillRandom, makeMemoryMembers, openMemoryArray } from '../helpers/memory-array.js';

describe('writes during a rebuild', () => {
  for (const level of [4, 5, 6] as const) {
    it(`RAID-${level}`, async () => {
      const raidDevices = level === 6 ? 5 : 4;
      const devices = await makeMemoryMembers({ level, raidDevices, spares: 1, chunkSizeBytes: 4096, memberSizeBytes: 4 * 1024 * 1024 + 128 * 4096 });
      const first = await openMemoryArray(devices);
      const shadow = await fillRandom(first, 99);
      await first.close();
      const assembled = await assembleDevices(devices);
      const { array } = assembled;
      await failDisk(assembled, devices[1]!.path, false);
      const [target] = await prepareRebuild(array, undefined);
      const rng = new Rng(level);
      let writesBelow = 0;
      let writesAbove = 0;
      const rebuild = runRebuild(array, target!, {
        onProgress: () => {
          // Every few stripes, start a write somewhere (not awaited here: it queues behind stripe locks).
          if (rng.next() < 0.3) {
            const checkpoint = array.rebuiltBytes(target!);
            const length = 1 + rng.int(12_000);
            const offset = rng.int(array.sizeBytes - length);
            const stripe = Math.floor(offset / array.geometry.stripeDataBytes);
            if ((stripe + 1) * 4096 <= checkpoint) writesBelow++; else writesAbove++;
            const data = rng.bytes(length);
            data.copy(shadow, offset);
            pending.push(array.write(offset, data));
          }
        },
      });
      const pending: Promise<void>[] = [];
      await rebuild;
      await Promise.all(pending);
      expect(writesBelow).toBeGreaterThan(0);
      expect(writesAbove).toBeGreaterThan(0);
      expect(array.degradedRoles()).toEqual([]);
      expect((await array.read(0, array.sizeBytes)).equals(shadow)).toBe(true);
      const scrub = await scrubArray(array);
      expect(scrub.mismatches).toEqual([]);
      await array.close();
    });
  }
});
