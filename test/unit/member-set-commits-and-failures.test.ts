// Proves, on the member set alone: a commit raises the events by one and gives every open member
// in the array its own superblock; a member whose superblock write fails is made faulty in that
// same commit and the state written again to the rest, its loss handled once after the commit;
// failing a member twice waits for the first; and the changes other modules ask for (enrol,
// attach, remove, rebuild progress, commits on a read-only set) refuse a state they would break.
import { describe, expect, it } from 'vitest';
import { FaultDevice } from '../../src/device/fault-device.js';
import { MemberDisk } from '../../src/engine/member-disk.js';
import { MemberSet, type MemberSetHooks } from '../../src/engine/member-set.js';
import { readSuperblocks } from '../../src/engine/superblock-io.js';
import { freeSlot } from '../../src/format/superblock.js';
import { makeMemoryMembers } from '../helpers/memory-array.js';

async function memberSet(options: { readOnly?: boolean } = {}) {
  const memories = await makeMemoryMembers({ level: 5, raidDevices: 4, spares: 1 });
  const devices = memories.map((memory) => new FaultDevice(memory));
  const disks = new Map<number, MemberDisk>();
  for (const [index, device] of devices.entries()) disks.set(index, new MemberDisk(device, (await readSuperblocks(device)).superblock!));
  const calls: string[] = [];
  const hooks: MemberSetHooks = {
    markStripes: async (stripes) => { calls.push(`mark ${stripes}`); },
    memberFailing: async () => {},
    memberLost: async (index, role, reason) => { calls.push(`lost ${index} role ${role}: ${reason}`); },
  };
  const sb = disks.get(0)!.sb;
  const members = new MemberSet({ ...sb, members: sb.members.map((m) => ({ ...m })) }, disks, { readOnly: options.readOnly ?? false, chunkSizeBytes: sb.chunkSizeBytes, hooks });
  return { members, devices, calls };
}

describe('member set', () => {
  it('commits: events + 1, each member its own superblock', async () => {
    const { members, devices } = await memberSet();
    const before = members.sb.events;
    await members.commit((sb) => { sb.scrubOffsetBytes = 65536; });
    expect(members.sb.events).toBe(before + 1);
    for (const [index, device] of devices.entries()) {
      const own = (await readSuperblocks(device)).superblock!;
      expect([own.events, own.thisIndex, own.scrubOffsetBytes]).toEqual([before + 1, index, 65536]);
      expect(own.memberUuid.equals(members.sb.members[index]!.uuid)).toBe(true);
    }
  });

  it('fails a member whose superblock write fails, writes the rest again, and handles the loss once', async () => {
    const { members, devices, calls } = await memberSet();
    const before = members.sb.events;
    devices[2]!.dead = true;
    await members.commit(() => {});
    expect(members.sb.members[2]!.state).toBe('faulty');
    expect(members.sb.events).toBe(before + 2); // the first try, then again without member 2
    expect(members.lostRoles()).toEqual([2]);
    await members.failuresSettled(async () => {});
    expect(members.isFailing(2)).toBe(false);
    expect(calls).toEqual(['lost 2 role 2: superblock write failed']);
    for (const index of [0, 1, 3, 4]) expect((await readSuperblocks(devices[index]!)).superblock!.members[2]!.state).toBe('faulty');
  });

  it('fails a member once: a second caller waits for the first', async () => {
    const { members, calls } = await memberSet();
    const first = members.failMember(1, 'first');
    const second = members.failMember(1, 'second');
    expect(members.isFailing(1)).toBe(true);
    await Promise.all([first, second]);
    expect(members.sb.members[1]!.state).toBe('faulty');
    expect(calls).toEqual(['lost 1 role 1: first']);
    await members.failMember(1, 'third'); // faulty already: waits for commits, no second loss
    expect(calls).toHaveLength(1);
  });

  it('refuses changes that would break its state', async () => {
    const { members } = await memberSet();
    const disk0 = members.disks.get(0)!;
    await expect(members.enrol(0, disk0, { ...freeSlot() })).rejects.toThrow(/slot 0 has no open member/);
    expect(() => members.attach(0, disk0)).toThrow(/attached afresh is not in use \(active\)/);
    await expect(members.remove([0], freeSlot)).rejects.toThrow(/removed is faulty or spare \(active\)/);
    expect(() => members.setRebuildProgress(0, 65536)).toThrow(/member 0 is rebuilding/);
    const readOnly = (await memberSet({ readOnly: true })).members;
    await expect(readOnly.commit(() => {})).rejects.toThrow(/superblock update on a read-only array/);
  });

  it('removes a spare: it leaves the open members and its entry becomes a free slot', async () => {
    const { members, devices } = await memberSet();
    const closed = await members.remove([4], freeSlot);
    expect(closed).toEqual([devices[4]]);
    expect(members.disks.has(4)).toBe(false);
    expect(members.sb.members).toHaveLength(4); // a trailing free slot leaves the table
  });
});
