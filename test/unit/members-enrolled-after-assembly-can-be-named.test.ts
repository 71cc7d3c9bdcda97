// Proves: a member enrolled after assembly (a replacement rebuilt while a daemon serves the array)
// can be named by later commands of that session: fail-disk fails it, and re-add takes it back.
// Found by the fault simulation (RAID-5 seed 1: re-add said it was not a member).
import { describe, expect, it } from 'vitest';
import { assembleDevices } from '../../src/engine/assemble.js';
import { failDisk, prepareReAdd, prepareRebuild, runRebuild } from '../../src/engine/maintenance.js';
import { MemoryDevice } from '../../src/device/memory-device.js';
import { fillRandom, makeMemoryMembers, openMemoryArray } from '../helpers/memory-array.js';

describe('members enrolled after assembly', () => {
  it('fail-disk and re-add find a replacement enrolled by a rebuild of the same session', async () => {
    const memberSizeBytes = 4 * 1024 * 1024 + 16 * 4096;
    const devices = await makeMemoryMembers({ level: 5, raidDevices: 4, chunkSizeBytes: 4096, memberSizeBytes });
    const first = await openMemoryArray(devices);
    const shadow = await fillRandom(first, 8);
    await first.close();
    const assembled = await assembleDevices(devices);
    const { array } = assembled;
    await failDisk(assembled, 'mem1', false);
    const [target] = await prepareRebuild(array, new MemoryDevice(memberSizeBytes, 'replacement'));
    await runRebuild(array, target!);
    expect(array.health()).toBe('clean');

    const failed = await failDisk(assembled, 'replacement', false);
    expect(failed).toMatchObject({ index: target, role: 1, arrayState: 'degraded' });
    const plan = await prepareReAdd(assembled, 'replacement');
    expect(plan.index).toBe(target);
    await runRebuild(array, plan.index);
    expect(array.health()).toBe('clean');
    expect((await array.read(0, array.sizeBytes)).equals(shadow)).toBe(true);
    await array.close();
  });
});
