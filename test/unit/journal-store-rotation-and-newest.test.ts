// Proves: journal records rotate over the members (never on the previous record's member and
// slot), restart picks the newest valid generation, a torn newest record falls back to the one
// before it, and the journal stays readable after losing any member (any two on RAID-6).
import { describe, expect, it } from 'vitest';
import { assembleDevices } from '../../src/engine/assemble.js';
import { MemberJournalStore, readJournal } from '../../src/journal/store.js';
import { encodeJournalRecord } from '../../src/format/journal-record.js';
import { cloneDevices, makeMemoryMembers } from '../helpers/memory-array.js';
import { MIB } from '../../src/units.js';

const JOURNAL_OFFSET = 256 * 1024;

describe('journal store', () => {
  it('rotates records over members and slots; consecutive records never share a member and slot', async () => {
    const devices = await makeMemoryMembers({ level: 5, raidDevices: 4 });
    const { array } = await assembleDevices(devices);
    const store = new MemberJournalStore(array);
    expect(store.layout).toMatchObject({ copies: 2, slotsPerMember: 3 });
    let previous: string[] = [];
    for (let generation = 1; generation <= 12; generation++) {
      const targets = store.targets(generation).map(({ role }) => `${role}:${generation % store.layout.slotsPerMember}`);
      expect(targets).toHaveLength(2);
      expect(new Set(targets).size).toBe(2);
      expect(targets.some((t) => previous.includes(t))).toBe(false);
      expect(store.targets(generation)[0]!.role).not.toBe(store.targets(generation - 1)[0]!.role);
      previous = targets;
    }
    await array.close();
  });

  it('restart uses the newest valid generation; a torn newest record falls back; any one member may be lost', async () => {
    const devices = await makeMemoryMembers({ level: 5, raidDevices: 4 });
    const { array } = await assembleDevices(devices);
    const store = new MemberJournalStore(array);
    const uuid = array.sb.arrayUuid;
    for (let generation = 20; generation <= 25; generation++) {
      await store.writeRecord(generation, encodeJournalRecord({ arrayUuid: uuid, generation, clean: false, entries: [{ volumeId: 1, stripe: generation, checks: [] }] }));
    }
    await array.abandon();
    const disksOf = async (members: typeof devices) => {
      const { array: again } = await assembleDevices(members, { readOnly: true });
      return { again, disks: [...again.disks.values()] };
    };
    const { again, disks } = await disksOf(devices);
    const newest = await readJournal(disks, uuid, store.layout);
    expect(newest.record!.generation).toBe(25);
    expect(newest.record!.entries[0]!.stripe).toBe(25);
    await again.abandon();
    // Tear both copies of generation 25 (flip a byte in each): generation 24 wins.
    const torn = cloneDevices(devices);
    for (const { role } of store.targets(25)) {
      const at = JOURNAL_OFFSET + (25 % store.layout.slotsPerMember) * store.layout.slotBytes + 70; // inside the stripe entry
      torn[role]!.bytes[at]! ^= 0xff;
    }
    const t = await disksOf(torn);
    const fallback = await readJournal(t.disks, uuid, store.layout);
    expect(fallback.record!.generation).toBe(24);
    expect(fallback.copies.filter((copy) => copy.problem !== null)).toHaveLength(2);
    await t.again.abandon();
    // Lose any one member: generation 25 is still found.
    for (let lost = 0; lost < 4; lost++) {
      const survivors = cloneDevices(devices).filter((_, i) => i !== lost);
      const s = await disksOf(survivors);
      expect((await readJournal(s.disks, uuid, store.layout)).record!.generation).toBe(25);
      await s.again.abandon();
    }
  });

  it('RAID-6 keeps three copies: any two members may be lost', async () => {
    const devices = await makeMemoryMembers({ level: 6, raidDevices: 5, memberSizeBytes: 8 * MIB });
    const { array } = await assembleDevices(devices);
    const store = new MemberJournalStore(array);
    expect(store.layout.copies).toBe(3);
    await store.writeRecord(7, encodeJournalRecord({ arrayUuid: array.sb.arrayUuid, generation: 7, clean: false, entries: [] }));
    await array.abandon();
    for (let a = 0; a < 5; a++) {
      for (let b = a + 1; b < 5; b++) {
        const survivors = cloneDevices(devices).filter((_, i) => i !== a && i !== b);
        const { array: again } = await assembleDevices(survivors, { readOnly: true });
        expect((await readJournal([...again.disks.values()], array.sb.arrayUuid, store.layout)).record!.generation).toBe(7);
        await again.abandon();
      }
    }
  });
});
