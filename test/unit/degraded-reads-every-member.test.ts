// Proves: with each member lost in turn (every pair on RAID-6), the array reads back exactly,
// and degraded writes read back exactly too.
import { describe, expect, it } from 'vitest';
import { assembleDevices } from '../../src/engine/assemble.js';
import type { LayoutName, Level } from '../../src/format/types.js';
import { cloneDevices, fillRandom, makeMemoryMembers, openMemoryArray, sha256 } from '../helpers/memory-array.js';
import { Rng } from '../../src/rng.js';

const shapes: { level: Level; raidDevices: number; layout: LayoutName }[] = [
  { level: 4, raidDevices: 4, layout: 'parity-last' },
  { level: 5, raidDevices: 4, layout: 'left-symmetric' },
  { level: 5, raidDevices: 5, layout: 'right-asymmetric' },
  { level: 6, raidDevices: 5, layout: 'left-symmetric' },
  { level: 6, raidDevices: 6, layout: 'right-symmetric' },
  { level: 6, raidDevices: 5, layout: 'left-asymmetric' },
  { level: 6, raidDevices: 6, layout: 'right-asymmetric' },
];

describe('degraded reads and writes', () => {
  for (const shape of shapes) {
    it(`RAID-${shape.level} ${shape.raidDevices} ${shape.layout}: every single${shape.level === 6 ? ' and pair' : ''} loss`, async () => {
      const devices = await makeMemoryMembers({ ...shape, chunkSizeBytes: 8192 });
      const array = await openMemoryArray(devices);
      const shadow = await fillRandom(array, shape.raidDevices * 7 + shape.level);
      await array.close();
      const expected = sha256(shadow);
      const losses: number[][] = [];
      for (let a = 0; a < shape.raidDevices; a++) {
        losses.push([a]);
        if (shape.level === 6) for (let b = a + 1; b < shape.raidDevices; b++) losses.push([a, b]);
      }
      for (const lost of losses) {
        const copies = cloneDevices(devices).filter((_, index) => !lost.includes(index));
        const { array: degraded, report } = await assembleDevices(copies);
        expect(report.missingRoles).toEqual(lost);
        expect(degraded.state()).toBe('degraded');
        expect(sha256(await degraded.read(0, degraded.sizeBytes))).toBe(expected);
        // Writes while degraded (reconstruct-write) read back exactly, before and after reopening.
        const changed = Buffer.from(shadow);
        const rng = new Rng(lost.reduce((x, y) => x * 10 + y, 1));
        for (let i = 0; i < 20; i++) {
          const length = 1 + rng.int(20_000);
          const offset = rng.int(degraded.sizeBytes - length);
          const data = rng.bytes(length);
          await degraded.write(offset, data);
          data.copy(changed, offset);
        }
        expect((await degraded.read(0, degraded.sizeBytes)).equals(changed)).toBe(true);
        await degraded.close();
        const again = await openMemoryArray(copies);
        expect((await again.read(0, again.sizeBytes)).equals(changed)).toBe(true);
        await again.close();
      }
    });
  }
});
