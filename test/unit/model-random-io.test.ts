// Proves: random unaligned reads and writes on every level and layout match an in-memory shadow.
import { describe, expect, it } from 'vitest';
import { Rng } from '../../src/rng.js';
import { makeMemoryMembers, openMemoryArray } from '../helpers/memory-array.js';
import type { LayoutName, Level } from '../../src/format/types.js';

const cases: { level: Level; raidDevices: number; layout: LayoutName }[] = [
  { level: 4, raidDevices: 3, layout: 'parity-last' },
  { level: 4, raidDevices: 5, layout: 'parity-last' },
  { level: 5, raidDevices: 3, layout: 'left-symmetric' },
  { level: 5, raidDevices: 4, layout: 'left-symmetric' },
  { level: 5, raidDevices: 5, layout: 'left-asymmetric' },
  { level: 5, raidDevices: 4, layout: 'right-symmetric' },
  { level: 5, raidDevices: 4, layout: 'right-asymmetric' },
  { level: 6, raidDevices: 4, layout: 'left-symmetric' },
  { level: 6, raidDevices: 6, layout: 'left-symmetric' },
  { level: 6, raidDevices: 5, layout: 'right-asymmetric' },
];

describe('random unaligned I/O against a shadow', () => {
  for (const c of cases) {
    it(`RAID-${c.level} ${c.raidDevices} members ${c.layout}`, async () => {
      const chunkSizeBytes = 16 * 1024;
      const devices = await makeMemoryMembers({ ...c, chunkSizeBytes, memberSizeBytes: 4 * 1024 * 1024 + 24 * chunkSizeBytes });
      const array = await openMemoryArray(devices);
      const shadow = Buffer.alloc(array.sizeBytes);
      const rng = new Rng(c.level * 100 + c.raidDevices);
      for (let op = 0; op < 1500; op++) {
        const maxLength = rng.pick([1, 100, 4096, 9000, chunkSizeBytes * 3 + 7]);
        const length = 1 + rng.int(maxLength);
        const offset = rng.int(array.sizeBytes - length);
        if (rng.next() < 0.6) {
          const data = rng.bytes(length);
          await array.write(offset, data);
          data.copy(shadow, offset);
        } else {
          const got = await array.read(offset, length);
          expect(got.equals(shadow.subarray(offset, offset + length))).toBe(true);
        }
      }
      expect((await array.read(0, array.sizeBytes)).equals(shadow)).toBe(true);
      await array.close();
    });
  }
});
