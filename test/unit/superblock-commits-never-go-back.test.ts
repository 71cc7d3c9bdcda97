// Proves: superblock commits happen one at a time, each on the state the one before left: however
// the members complete their writes (here newest first), every member ends with the newest state,
// and a member failure committed alongside another change is never lost.
import { describe, expect, it } from 'vitest';
import { readSuperblocks } from '../../src/engine/superblock-io.js';
import { assembleNow, scriptedArray, settle } from '../helpers/sim-script.js';

describe('concurrent superblock commits', () => {
  it('end with the newest state on every member, whatever order the writes complete in', async () => {
    const { world, devices } = await scriptedArray({ level: 6, raidDevices: 5, chunkSizeBytes: 4096, stripes: 4 });
    const { array } = await assembleNow(world, devices);
    world.instant = false;
    const commits = Promise.all([
      array.failMember(1, 'failed by the test'),
      array.commitSuperblocks((sb) => { sb.scrubOffsetBytes = 4096; }),
      array.failMember(2, 'failed by the test'),
    ]);
    let done = false;
    void commits.finally(() => { done = true; });
    while (!done) {
      await settle();
      if (!world.completeNewest()) break;
    }
    await commits;
    world.instant = true;
    expect(array.sb.members.map((m) => m.state)).toEqual(['active', 'faulty', 'faulty', 'active', 'active']);
    for (const index of [0, 3, 4]) {
      const own = (await readSuperblocks(devices[index]!)).superblock!;
      expect(own.events, `member ${index}`).toBe(array.sb.events);
      expect(own.scrubOffsetBytes).toBe(4096);
      expect(own.members.map((m) => m.state), `member ${index}`).toEqual(['active', 'faulty', 'faulty', 'active', 'active']);
    }
  });
});
