// Proves: bad-block list writes happen one at a time, so two writes that each clear a bad block,
// whose list updates reach the members in the worst order (newest first), still leave the newest
// list everywhere: after a restart neither block reads EIO again. Found by the fault simulation
// (RAID-6 seed 331).
import { describe, expect, it } from 'vitest';
import { BLOCK_SIZE_BYTES } from '../../src/units.js';
import { assembleNow, driveUntil, scriptedArray, settle } from '../helpers/sim-script.js';

describe('concurrent bad-block list writes', () => {
  it('the newest list wins on every member, whatever order the writes complete in', async () => {
    const { world, devices } = await scriptedArray({ level: 5, raidDevices: 4, chunkSizeBytes: 4096, stripes: 8 });
    const { array } = await assembleNow(world, devices);
    world.instant = true;
    array.badBlocks.add([{ firstBlock: 2, blockCount: 1, reason: 'torn' }, { firstBlock: 11, blockCount: 1, reason: 'torn' }]);
    await array.persistBadBlocks();
    world.instant = false;
    const writes = Promise.all([2, 11].map((block) => array.write(block * BLOCK_SIZE_BYTES, Buffer.alloc(BLOCK_SIZE_BYTES, block))));
    let done = false;
    void writes.finally(() => { done = true; });
    // Everything but the list writes completes; then those complete newest first.
    const listWrite = (io: { kind: string; offsetBytes: number }) => io.kind === 'write' && io.offsetBytes === 64 * 1024;
    await driveUntil(world, () => done, (io) => !listWrite(io));
    while (!done) {
      await settle();
      if (!world.completeNewest()) break;
    }
    await writes;
    world.instant = true;
    await array.close();
    for (const device of devices) device.closed = false;
    const { array: again } = await assembleNow(world, devices);
    expect(again.badBlocks.ranges).toEqual([]);
    expect((await again.read(11 * BLOCK_SIZE_BYTES, BLOCK_SIZE_BYTES)).equals(Buffer.alloc(BLOCK_SIZE_BYTES, 11))).toBe(true);
  });
});
