// Proves: the bad-block list reaches every member that joins (rebuilt onto a replacement, or
// re-added with an older list), so after every original member has been replaced the blocks
// recorded bad still read EIO, and none cleared since comes back.
import { describe, expect, it } from 'vitest';
import { assembleDevices } from '../../src/engine/assemble.js';
import { failDisk, prepareReAdd, prepareRebuild, runRebuild } from '../../src/engine/maintenance.js';
import { MemoryDevice } from '../../src/device/memory-device.js';
import { makeMemoryMembers } from '../helpers/memory-array.js';
import { BLOCK_SIZE_BYTES } from '../../src/units.js';

describe('the bad-block list and member changes', () => {
  it('survives the replacement of every member, and a re-added member brings no stale list back', async () => {
    const memberSizeBytes = 4 * 1024 * 1024 + 16 * 4096;
    const devices: MemoryDevice[] = await makeMemoryMembers({ level: 5, raidDevices: 4, chunkSizeBytes: 4096, memberSizeBytes });
    const assembled = await assembleDevices(devices);
    const { array } = assembled;
    array.badBlocks.add([{ firstBlock: 3, blockCount: 2, reason: 'torn' }, { firstBlock: 9, blockCount: 1, reason: 'lost' }]);
    await array.persistBadBlocks();
    // Member 0 leaves with that list; block 9 is then rewritten (cleared) while it is away.
    await failDisk(assembled, 'mem0', false);
    await array.write(9 * BLOCK_SIZE_BYTES, Buffer.alloc(BLOCK_SIZE_BYTES, 1));
    const plan = await prepareReAdd(assembled, 'mem0');
    await runRebuild(array, plan.index);
    // Every other original member is replaced in turn.
    for (const old of ['mem1', 'mem2', 'mem3']) {
      await failDisk(assembled, old, false);
      const replacement = new MemoryDevice(memberSizeBytes, `new-${old}`);
      devices.push(replacement);
      const [target] = await prepareRebuild(array, replacement);
      await runRebuild(array, target!);
    }
    await array.close();
    const inUse = devices.filter((device) => ['mem0', 'new-mem1', 'new-mem2', 'new-mem3'].includes(device.path));
    const { array: again } = await assembleDevices(inUse);
    expect(again.badBlocks.ranges).toEqual([{ firstBlock: 3, blockCount: 2, reason: 'torn' }]);
    await expect(again.read(3 * BLOCK_SIZE_BYTES, 10)).rejects.toMatchObject({ code: 'E_BAD_BLOCK' });
    expect((await again.read(9 * BLOCK_SIZE_BYTES, BLOCK_SIZE_BYTES)).equals(Buffer.alloc(BLOCK_SIZE_BYTES, 1))).toBe(true);
    await again.close();
  });
});
