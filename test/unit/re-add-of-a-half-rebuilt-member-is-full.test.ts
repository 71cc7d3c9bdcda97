// Proves: a member that failed while it was still being rebuilt holds only part of its role's
// data, so taking it back (re-add) rebuilds it in full, not only the write-intent marked regions;
// once another member is lost, every byte still reads back.
import { describe, expect, it } from 'vitest';
import { assembleDevices } from '../../src/engine/assemble.js';
import { failDisk, prepareReAdd, prepareRebuild, runRebuild } from '../../src/engine/maintenance.js';
import { MemoryDevice } from '../../src/device/memory-device.js';
import { fillRandom, makeMemoryMembers, openMemoryArray } from '../helpers/memory-array.js';

describe('re-add of a member that left mid-rebuild', () => {
  it('is a full rebuild', async () => {
    const memberSizeBytes = 4 * 1024 * 1024 + 16 * 4096;
    const devices = await makeMemoryMembers({ level: 5, raidDevices: 4, chunkSizeBytes: 4096, memberSizeBytes });
    const first = await openMemoryArray(devices);
    const shadow = await fillRandom(first, 21);
    await first.close();
    const assembled = await assembleDevices(devices);
    const { array } = assembled;
    await failDisk(assembled, 'mem1', false);
    const [target] = await prepareRebuild(array, new MemoryDevice(memberSizeBytes, 'replacement'));
    // The rebuild is interrupted a third of the way, and the replacement then fails.
    await expect(runRebuild(array, target!, {
      checkpointIntervalMs: 0,
      onProgress: ({ doneBytes, totalBytes }) => { if (doneBytes * 3 >= totalBytes) throw new Error('interrupted'); },
    })).rejects.toThrow('interrupted');
    await failDisk(assembled, 'replacement', false);

    const plan = await prepareReAdd(assembled, 'replacement');
    expect(plan).toMatchObject({ index: target, mode: 'full', reason: expect.stringMatching(/rebuilding when it left/) });
    await runRebuild(array, plan.index);
    await failDisk(assembled, 'mem0', false);
    expect((await array.read(0, array.sizeBytes)).equals(shadow)).toBe(true);
    await array.close();
  });
});
