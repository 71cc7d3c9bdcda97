// Proves: a write that planned around a member marked faulty in memory is acknowledged only once
// that mark is durable: otherwise a crash could bring the member back in, its chunk of the
// acknowledged write missing.
import { describe, expect, it } from 'vitest';
import { assembleNow, driveUntil, scriptedArray } from '../helpers/sim-script.js';

describe('acknowledgement and superblock state', () => {
  it('a degraded write waits for the commit that failed the member it planned around', async () => {
    const { world, devices, content } = await scriptedArray({ level: 5, raidDevices: 4, chunkSizeBytes: 4096, stripes: 8 });
    const { array } = await assembleNow(world, devices);
    world.instant = false;
    // A state change during which member 3's superblock write fails: member 3 is faulty in
    // memory at once, and the commit goes on writing the others.
    devices[3]!.armed.push({ kind: 'write', region: 'superblock-primary', label: 'test' });
    let committed = false;
    void array.commitSuperblocks(() => {}).then(() => { committed = true; });
    expect(await driveUntil(world, () => array.sb.members[3]!.state === 'faulty')).toBe(true);
    expect(committed).toBe(false);

    // A write to stripe 1, whose data chunks include member 3's, plans around it.
    const stripe = 1;
    const g = array.geometry;
    const offset = stripe * g.stripeDataBytes;
    const data = Buffer.alloc(g.stripeDataBytes, 0x77);
    let acknowledged = false;
    const write = array.write(offset, data).then(() => { acknowledged = true; });
    const superblockWrite = (io: { kind: string; offsetBytes: number }) => io.kind === 'write' && io.offsetBytes < 8192;
    await driveUntil(world, () => acknowledged, (io) => !superblockWrite(io));
    expect(acknowledged).toBe(false); // every I/O but the commit's is done: still not acknowledged

    await driveUntil(world, () => acknowledged && committed);
    await write;
    world.instant = true;
    const expected = Buffer.from(content);
    data.copy(expected, offset);
    expect((await array.read(0, array.sizeBytes)).equals(expected)).toBe(true);
  });
});
