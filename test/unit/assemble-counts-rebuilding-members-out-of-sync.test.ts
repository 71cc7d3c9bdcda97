// Proves: assembly counts a member still being rebuilt as out of sync: with a role missing
// beside it, more roles than RAID-5 survives are out of sync, so the array is refused (not run
// with nothing in sync to read its journal and bad-block list from); --force takes the stale
// member back and it runs. Found by the fault simulation (RAID-4 seed 3020 at 400 operations).
import { describe, expect, it } from 'vitest';
import { assembleDevices } from '../../src/engine/assemble.js';
import { failDisk, prepareRebuild } from '../../src/engine/maintenance.js';
import { makeMemoryMembers } from '../helpers/memory-array.js';

describe('assembly with a member being rebuilt', () => {
  it('refuses when a role is missing beside it, and runs with the stale member forced back', async () => {
    const devices = await makeMemoryMembers({ level: 5, raidDevices: 4, spares: 1, chunkSizeBytes: 4096 });
    const first = await assembleDevices(devices);
    await failDisk(first, 'mem1', false);
    await prepareRebuild(first.array, undefined); // the spare takes role 1; its rebuild never runs
    await failDisk(first, 'mem2', true);
    await first.array.close();

    await expect(assembleDevices(devices)).rejects.toMatchObject({
      code: 'E_ARRAY_FAILED', message: expect.stringMatching(/roles 2 missing and roles 1 still being rebuilt/),
    });
    const forced = await assembleDevices(devices, { force: true });
    expect(forced.report.forced).toEqual(['mem2']);
    expect(forced.array.degradedRoles()).toEqual([1]);
    await forced.array.close();
  });
});
