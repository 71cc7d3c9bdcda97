// Proves: after members fail and are rebuilt one after another, the newest journal record still
// has its full set of copies on in-sync members (it is rewritten on each change), so a dirty
// older record can never win.
import { describe, expect, it } from 'vitest';
import { assembleDevices } from '../../src/engine/assemble.js';
import { readJournal, journalLayout } from '../../src/journal/store.js';
import { failDisk, prepareRebuild, runRebuild } from '../../src/engine/maintenance.js';
import { makeMemoryMembers } from '../helpers/memory-array.js';

describe('journal copies across member changes', () => {
  it('every member failed and rebuilt in turn: the newest record stays on copies in-sync members', async () => {
    const devices = await makeMemoryMembers({ level: 5, raidDevices: 4, spares: 4, chunkSizeBytes: 4096 });
    const assembled = await assembleDevices(devices);
    const { array } = assembled;
    await array.write(0, Buffer.alloc(100_000, 3));
    await array.flush();
    for (let role = 0; role < 4; role++) {
      const holder = array.disks.get(array.memberIndexForRole(role))!;
      await failDisk(assembled, holder.path, false);
      const [target] = await prepareRebuild(array, undefined);
      await runRebuild(array, target!);
      const inSync = [...array.disks].filter(([index]) => array.sb.members[index]!.state === 'active').map(([, disk]) => disk);
      const newest = await readJournal(inSync, array.sb.arrayUuid, journalLayout(array));
      const generation = array.journal!.currentGeneration;
      expect(newest.record!.generation).toBe(generation);
      expect(newest.copies.filter((copy) => copy.generation === generation)).toHaveLength(2);
    }
    await array.close();
  });
});
