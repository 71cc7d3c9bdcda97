// Proves: one failure more than the level tolerates stops writes with a clear error, and
// everything acknowledged before it stays readable once a member is back.
import { describe, expect, it } from 'vitest';
import { assembleDevices } from '../../src/engine/assemble.js';
import { failDisk } from '../../src/engine/maintenance.js';
import { FaultDevice } from '../../src/device/fault-device.js';
import { cloneDevices, fillRandom, makeMemoryMembers, openMemoryArray } from '../helpers/memory-array.js';

describe('more failures than the level survives', () => {
  it('RAID-5: fail-disk of a second member is refused without --force', async () => {
    const devices = await makeMemoryMembers({ level: 5, raidDevices: 4 });
    const assembled = await assembleDevices(devices);
    await failDisk(assembled, 'mem0', false);
    await expect(failDisk(assembled, 'mem1', false)).rejects.toMatchObject({ code: 'E_REFUSED', message: expect.stringMatching(/would leave the array unusable: 2 members lost, RAID-5 survives 1/) });
    await expect(failDisk(assembled, 'mem0', false)).rejects.toMatchObject({ code: 'E_REFUSED', message: expect.stringMatching(/already faulty/) });
    await expect(failDisk(assembled, 'nosuch', false)).rejects.toMatchObject({ code: 'E_MEMBER_UNKNOWN' });
    await assembled.array.close();
  });

  for (const level of [5, 6] as const) {
    it(`RAID-${level}: a member dying mid-stream stops writes, acknowledged data survives`, async () => {
      const raidDevices = level === 6 ? 5 : 4;
      const devices = await makeMemoryMembers({ level, raidDevices, chunkSizeBytes: 4096 });
      const setup = await openMemoryArray(devices);
      const shadow = await fillRandom(setup, 3);
      await setup.close();
      const working = cloneDevices(devices);
      const wrapped = working.map((device) => new FaultDevice(device));
      const { array } = await assembleDevices(wrapped);
      // Lose as many members as the level survives, then one more.
      for (let i = 0; i < (level === 6 ? 2 : 1); i++) await array.failMember(i, 'test');
      wrapped[raidDevices - 1]!.dead = true;
      await expect(array.write(0, Buffer.alloc(50_000, 1))).rejects.toMatchObject({ code: 'E_ARRAY_FAILED' });
      await expect(array.write(100_000, Buffer.alloc(10, 1))).rejects.toMatchObject({ code: 'E_ARRAY_FAILED' });
      await array.abandon();
      // Nothing acknowledged was lost: bring the members back (forced) and compare a range the
      // failed writes never touched (their stripes are recovered; lost chunks there read as EIO).
      const back = await assembleDevices(working, { force: true });
      expect((await back.array.read(150_000, 30_000)).equals(shadow.subarray(150_000, 180_000))).toBe(true);
      await back.array.close();
    });
  }
});
