// Proves: a member that missed the last superblock update (a crash between members during a state
// change) is brought up to date at assembly, so that losing the members that had the update
// later cannot bring the older state back (here: a failed member counted active again). Found by
// the fault simulation (RAID-5 seed 9).
import { describe, expect, it } from 'vitest';
import { assembleDevices } from '../../src/engine/assemble.js';
import { failDisk } from '../../src/engine/maintenance.js';
import { readSuperblocks } from '../../src/engine/superblock-io.js';
import { makeMemoryMembers } from '../helpers/memory-array.js';

describe('assembly and members behind on events', () => {
  it('rewrites the superblocks of members that missed the last update', async () => {
    const devices = await makeMemoryMembers({ level: 6, raidDevices: 5, chunkSizeBytes: 4096 });
    const before = Buffer.from(devices[0]!.bytes.subarray(0, 8192));
    const first = await assembleDevices(devices);
    await failDisk(first, 'mem4', false);
    await first.array.close();
    // Member 0 never got the update that marked member 4 faulty.
    before.copy(devices[0]!.bytes, 0);
    const behind = (await readSuperblocks(devices[0]!)).superblock!;
    expect(behind.members[4]!.state).toBe('active');

    const { array } = await assembleDevices(devices.slice(0, 4));
    for (const device of devices.slice(0, 4)) {
      const own = (await readSuperblocks(device)).superblock!;
      expect(own.events, device.path).toBe(array.sb.events);
      expect(own.members[4]!.state, device.path).toBe('faulty');
    }
    await array.close();
  });
});
