// Proves: a member that fails (here its flush fails, and its cache is lost) may never have put
// on its medium the writes it took since its last flush; their stripes are marked before it is
// failed, so a partial re-add rebuilds them and, once another member is lost, every byte still
// reads back. Found by the fault simulation (RAID-4 seeds 6150, 6318, 6402 at 300 operations).
import { describe, expect, it } from 'vitest';
import { failDisk, prepareReAdd, runRebuild } from '../../src/engine/maintenance.js';
import { assembleNow, scriptedArray } from '../helpers/sim-script.js';

describe('re-add after a failed flush', () => {
  for (const level of [4, 5, 6] as const) {
    it(`RAID-${level}: the stripes written since the member's last flush are rebuilt`, async () => {
      const raidDevices = level === 6 ? 5 : 4;
      const { world, devices, content } = await scriptedArray({ level, raidDevices, chunkSizeBytes: 4096, stripes: 8 });
      const assembled = await assembleNow(world, devices, { journal: { idleCleanMs: 0, cleanBatchStripes: 64 } });
      const { array } = assembled;
      world.instant = true;
      // Writes over every stripe land on member 1 (in its cache), then its flush fails.
      const data = Buffer.alloc(array.sizeBytes, 0x6d);
      await array.write(0, data);
      devices[1]!.armed.push({ kind: 'flush', label: 'test' });
      await array.flush();
      expect(array.sb.members[1]!.state).toBe('faulty');
      // Its cache was lost: it comes back holding what it had before those writes.
      devices[1]!.loseVolatile('drop-all');
      const plan = await prepareReAdd(assembled, 'sim1');
      expect(plan.mode).toBe('partial');
      await runRebuild(array, plan.index);
      await failDisk(assembled, 'sim0', false);
      expect((await array.read(0, array.sizeBytes)).equals(data)).toBe(true);
      expect(content.equals(data)).toBe(false);
    });
  }
});
