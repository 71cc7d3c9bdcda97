// Proves: a rebuild whose target fails (its writes fail, or it is failed meanwhile) stops with
// E_IO, leaves the target faulty (never active over chunks it never got) and the array degraded
// with every byte readable. Found by the fault simulation (RAID-5 seed 27).
import { describe, expect, it } from 'vitest';
import { assembleDevices } from '../../src/engine/assemble.js';
import { failDisk, prepareRebuild, runRebuild } from '../../src/engine/maintenance.js';
import { FaultDevice } from '../../src/device/fault-device.js';
import { MemoryDevice } from '../../src/device/memory-device.js';
import { fillRandom, makeMemoryMembers, openMemoryArray } from '../helpers/memory-array.js';

const MEMBER_SIZE_BYTES = 4 * 1024 * 1024 + 32 * 4096;

async function degradedArray(level: 5 | 6) {
  const raidDevices = level === 6 ? 5 : 4;
  const devices = await makeMemoryMembers({ level, raidDevices, chunkSizeBytes: 4096, memberSizeBytes: MEMBER_SIZE_BYTES });
  const first = await openMemoryArray(devices);
  const shadow = await fillRandom(first, level);
  await first.close();
  const assembled = await assembleDevices(devices);
  await failDisk(assembled, 'mem1', false);
  return { assembled, array: assembled.array, shadow };
}

describe('a rebuild whose target fails', () => {
  for (const level of [5, 6] as const) {
    it(`RAID-${level}: the replacement's writes fail`, async () => {
      const { array, shadow } = await degradedArray(level);
      // Enrolment takes 5 writes (metadata, two superblocks, the table commit's two); then it dies.
      const replacement = new FaultDevice(new MemoryDevice(MEMBER_SIZE_BYTES, 'replacement'), { failWritesAfter: 9 });
      const [target] = await prepareRebuild(array, replacement);
      await expect(runRebuild(array, target!)).rejects.toMatchObject({ code: 'E_IO', message: expect.stringMatching(/rebuild of role 1 onto replacement stopped/) });
      expect(array.sb.members[target!]!.state).toBe('faulty');
      expect(array.health()).toBe('degraded');
      expect((await array.read(0, array.sizeBytes)).equals(shadow)).toBe(true);
      await array.close();
    });

    it(`RAID-${level}: the target is failed while it is rebuilt`, async () => {
      const { array, shadow } = await degradedArray(level);
      const spare = new MemoryDevice(MEMBER_SIZE_BYTES, 'spare');
      const [target] = await prepareRebuild(array, spare);
      let failing: Promise<void> | undefined;
      const rebuild = runRebuild(array, target!, {
        onProgress: ({ doneBytes }) => { if (doneBytes >= 8 * 4096 && !failing) failing = array.failMember(target!, 'failed by the test'); },
      });
      await expect(rebuild).rejects.toMatchObject({ code: 'E_IO', message: expect.stringMatching(/failed meanwhile/) });
      await failing;
      expect(array.sb.members[target!]!.state).toBe('faulty');
      expect(array.health()).toBe('degraded');
      expect((await array.read(0, array.sizeBytes)).equals(shadow)).toBe(true);
      await array.close();
    });
  }
});
