// Proves: a free member-table slot (a removed member) is encoded as docs/FORMAT.md says (zero
// uuid, no role, state faulty, all else zero), round-trips, is told apart from a real faulty
// member, and can never be a superblock's own entry.
import { describe, expect, it } from 'vitest';
import { buildMemberLayout, findRegion } from '../../src/format/layout.js';
import { decodeSuperblock, encodeSuperblock, freeSlot, isFreeSlot, type MemberEntry, type Superblock } from '../../src/format/superblock.js';
import { newUuid } from '../../src/format/uuid.js';
import { MIB, alignDown } from '../../src/units.js';

const MEMBER_TABLE_AT = 560;
const MEMBER_ENTRY_BYTES = 40;

function superblockWith(members: MemberEntry[], thisIndex: number): Superblock {
  const regions = buildMemberLayout(16 * MIB);
  const dataSizeBytes = alignDown(findRegion(regions, 'data')!.sizeBytes, 64 * 1024);
  return {
    versionMajor: 1, versionMinor: 0, arrayUuid: newUuid(), memberUuid: members[thisIndex]!.uuid, name: 'free',
    createdAtMs: 1, updatedAtMs: 2, events: 3, level: 5, layout: 'left-symmetric', policy: 'dirty-log',
    raidDevices: 3, chunkSizeBytes: 64 * 1024, flags: 0, memberSizeBytes: 16 * MIB, dataSizeBytes,
    arraySizeBytes: dataSizeBytes * 2, writeIntentChunkBytes: MIB, resyncOffsetBytes: dataSizeBytes, scrubOffsetBytes: 0,
    thisIndex, regions, members,
  };
}

const active = (role: number): MemberEntry => ({ uuid: newUuid(), role, state: 'active', recoveryOffsetBytes: 0, partialRebuild: false, readErrorsCorrected: 0 });

describe('free member-table slot', () => {
  it('is a zero uuid, role 0xffff, state 2 (faulty), and zero elsewhere; it round-trips', () => {
    const sb = superblockWith([active(0), freeSlot(), active(1), active(2)], 0);
    const bytes = encodeSuperblock(sb);
    const entry = bytes.subarray(MEMBER_TABLE_AT + MEMBER_ENTRY_BYTES, MEMBER_TABLE_AT + 2 * MEMBER_ENTRY_BYTES);
    const expected = Buffer.alloc(MEMBER_ENTRY_BYTES);
    expected.writeUInt16LE(0xffff, 16);
    expected.writeUInt8(2, 18);
    expect(entry.toString('hex')).toBe(expected.toString('hex'));
    const decoded = decodeSuperblock(bytes);
    expect(decoded).toEqual({ ok: true, value: sb });
    if (!decoded.ok) return;
    expect(decoded.value.members.map(isFreeSlot)).toEqual([false, true, false, false]);
  });

  it('is not a faulty member that still has a uuid or a role', () => {
    expect(isFreeSlot({ ...freeSlot(), uuid: newUuid() })).toBe(false);
    expect(isFreeSlot({ ...freeSlot(), role: 1 })).toBe(false);
    expect(isFreeSlot({ ...freeSlot(), state: 'spare' })).toBe(false);
    expect(isFreeSlot(freeSlot())).toBe(true);
  });

  it('can never be the superblock\'s own entry', () => {
    const sb = superblockWith([active(0), freeSlot(), active(1), active(2)], 1);
    expect(decodeSuperblock(encodeSuperblock(sb))).toEqual({ ok: false, reason: "this member's uuid is all zero bytes, which marks a free member-table slot" });
  });
});
