// Proves: a member that fails inside the journal's own record write or barrier (write error,
// flush error, its superblock failing too) is marked faulty and the record is written to the
// next in-sync members within the same flush: the write completes degraded, nothing hangs, and
// the newest record keeps its full copy count on in-sync members. Likewise for the idle-clean
// record, sync and close. One failure beyond the level's redundancy ends in E_ARRAY_FAILED.
import { describe, expect, it } from 'vitest';
import { assembleDevices } from '../../src/engine/assemble.js';
import { journalLayout, readJournal } from '../../src/journal/store.js';
import type { RaidArray } from '../../src/engine/raid-array.js';
import { FaultDevice } from '../../src/device/fault-device.js';
import { makeMemoryMembers } from '../helpers/memory-array.js';

async function faultyArray(level: 5 | 6, journal: Parameters<typeof assembleDevices>[1] extends infer O ? O extends { journal?: infer J } ? J : never : never = {}) {
  const raidDevices = level === 6 ? 5 : 3;
  const devices = await makeMemoryMembers({ level, raidDevices, chunkSizeBytes: 4096 });
  const wrapped = devices.map((device) => new FaultDevice(device));
  const failed: string[] = [];
  const assembled = await assembleDevices(wrapped, { journal: { idleCleanMs: 0, ...journal }, onEvent: (event) => { if (event.kind === 'member-failed') failed.push(event.path); } });
  return { array: assembled.array, wrapped, failed };
}

async function newestCopies(array: RaidArray): Promise<{ generation: number; copies: number }> {
  const inSync = [...array.disks].filter(([index]) => array.sb.members[index]!.state === 'active').map(([, disk]) => disk);
  const newest = await readJournal(inSync, array.sb.arrayUuid, journalLayout(array));
  const generation = newest.record!.generation;
  return { generation, copies: newest.copies.filter((copy) => copy.generation === generation).length };
}

describe('journal record write errors', () => {
  for (const level of [5, 6] as const) {
    const raidDevices = level === 6 ? 5 : 3;
    const copiesWanted = level === 6 ? 3 : 2;
    for (let role = 0; role < raidDevices; role++) {
      it(`RAID-${level}: member ${role} fails its writes, the first one the journal record's`, async () => {
        const { array, wrapped, failed } = await faultyArray(level);
        wrapped[role]!.plan.writeErrorRate = 1;
        const data = Buffer.alloc(3 * array.geometry.stripeDataBytes + 100, 0x3c);
        await array.write(1000, data);
        await array.flush();
        expect(failed).toEqual([wrapped[role]!.path]);
        expect(array.health()).toBe('degraded');
        expect((await array.read(1000, data.length)).equals(data)).toBe(true);
        const newest = await newestCopies(array);
        expect(newest.generation).toBe(array.journal!.currentGeneration);
        expect(newest.copies).toBe(copiesWanted);
        await array.close();
        expect(array.journal!.clean).toBe(true);
      });
    }

    it(`RAID-${level}: a flush error in the record barrier, and the failed member's neighbour's superblock failing too`, async () => {
      const { array, wrapped, failed } = await faultyArray(level);
      // The first record goes to roles 1.. (generation 1): role 1's flush fails, and while it is
      // failed, role 2's superblock write fails (RAID-6 survives both; RAID-5 only the first).
      wrapped[1]!.dead = false;
      const flush = wrapped[1]!.flush.bind(wrapped[1]);
      wrapped[1]!.flush = async () => { wrapped[1]!.dead = true; return flush(); };
      if (level === 6) wrapped[2]!.plan.failWritesAfter = wrapped[2]!.writesDone + 1;
      const data = Buffer.alloc(5000, 7);
      await array.write(0, data);
      await array.flush();
      expect(failed).toContain(wrapped[1]!.path);
      if (level === 6) expect(failed).toContain(wrapped[2]!.path);
      expect((await array.read(0, data.length)).equals(data)).toBe(true);
      const newest = await newestCopies(array);
      expect(newest.copies).toBe(Math.min(copiesWanted, array.sb.raidDevices - failed.length));
      await array.close();
    });

    it(`RAID-${level}: the idle clean record retargets too`, async () => {
      let fire: (() => void) | undefined;
      const { array, wrapped, failed } = await faultyArray(level, { idleCleanMs: 3000, scheduleTimer: (f: () => void) => { fire = f; return () => { fire = undefined; }; } });
      await array.write(0, Buffer.alloc(4096, 1));
      wrapped[level === 6 ? 3 : 0]!.plan.writeErrorRate = 1;
      expect(fire).toBeDefined();
      fire!();
      await array.journal!.idle();
      expect(array.journal!.clean).toBe(true);
      expect(failed.length).toBeLessThanOrEqual(1);
      expect((await newestCopies(array)).copies).toBe(copiesWanted);
      await array.close();
    });

    it(`RAID-${level}: one member more than the level survives: writers get E_ARRAY_FAILED, never a hang`, async () => {
      const { array, wrapped } = await faultyArray(level);
      await array.write(0, Buffer.alloc(8192, 2));
      await array.flush();
      for (let i = 0; i <= (level === 6 ? 2 : 1); i++) wrapped[i]!.dead = true;
      await expect(array.write(0, Buffer.alloc(array.geometry.stripeDataBytes * 2, 3))).rejects.toMatchObject({ code: 'E_ARRAY_FAILED' });
      await expect(array.write(50_000, Buffer.alloc(10, 3))).rejects.toMatchObject({ code: 'E_ARRAY_FAILED' });
      await expect(array.read(0, 8192)).rejects.toMatchObject({ code: 'E_ARRAY_FAILED' });
      await array.abandon();
    });
  }
});
