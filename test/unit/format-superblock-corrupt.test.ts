// Proves: every corrupt or unreadable superblock is rejected with its stated reason, and a minor-version bump is not one of them.
import { describe, expect, it } from 'vitest';
import { crc32c } from '../../src/format/crc32c.js';
import { buildMemberLayout } from '../../src/format/layout.js';
import { decodeSuperblock, encodeSuperblock, type Superblock } from '../../src/format/superblock.js';
import { KIB, MIB } from '../../src/units.js';

// Offsets from docs/FORMAT.md, written out here so the test does not borrow the codec's own table.
const AT = {
  versionMajor: 8, versionMinor: 10, superblockSize: 12, level: 104, layout: 105, policy: 106,
  raidDevices: 108, memberCount: 110, chunkSize: 112, memberSize: 120, dataSize: 128, arraySize: 136,
  resyncOffset: 152, scrubOffset: 160, thisIndex: 168, regionCount: 170, crc: 4092,
} as const;
const region = (index: number) => 176 + index * 24; // kind u16 at +0, offset u64 at +8, size u64 at +16
// uuid at +0, role u16 at +16, state u8 at +18, flags u8 at +19, recovery u64 at +24, read errors u32 at +32
const member = (index: number) => 560 + index * 40;
// buildMemberLayout's order: 0 superblock-primary, 1 superblock-secondary, 2 bad-blocks, 3 write-intent, 4 journal, 5 data.
const DATA_REGION = 5;

const memberUuid = (index: number) => Buffer.alloc(16, 0x10 * (index + 1));
// RAID-5, 4 raid devices + 1 spare, 64 MiB members, chunk 512 KiB, seen from member 0.
const BASE: Superblock = {
  versionMajor: 1, versionMinor: 0, arrayUuid: Buffer.alloc(16, 0xaa), memberUuid: memberUuid(0), name: 'corrupt',
  createdAtMs: 1_700_000_000_000, updatedAtMs: 1_700_000_000_000, events: 5,
  level: 5, layout: 'left-symmetric', policy: 'resync', raidDevices: 4, chunkSizeBytes: 512 * KIB, flags: 0,
  memberSizeBytes: 64 * MIB, dataSizeBytes: 60 * MIB, arraySizeBytes: 180 * MIB, writeIntentChunkBytes: MIB,
  resyncOffsetBytes: 60 * MIB, scrubOffsetBytes: 0, thisIndex: 0, regions: buildMemberLayout(64 * MIB),
  members: [0, 1, 2, 3, 4].map((index) => ({
    uuid: memberUuid(index), role: index < 4 ? index : null, state: index < 4 ? 'active' as const : 'spare' as const,
    recoveryOffsetBytes: 0, partialRebuild: false, readErrorsCorrected: 0,
  })),
};
const BASE_BYTES = encodeSuperblock(BASE);

/** The base superblock with `edit` applied and the CRC recomputed, so only the edit is wrong. */
function patched(edit: (bytes: Buffer) => void): Buffer {
  const bytes = Buffer.from(BASE_BYTES);
  edit(bytes);
  bytes.writeUInt32LE(crc32c(bytes.subarray(0, AT.crc)), AT.crc);
  return bytes;
}

const u8 = (at: number, value: number) => (bytes: Buffer) => { bytes.writeUInt8(value, at); };
const u16 = (at: number, value: number) => (bytes: Buffer) => { bytes.writeUInt16LE(value, at); };
const u32 = (at: number, value: number) => (bytes: Buffer) => { bytes.writeUInt32LE(value, at); };
const u64 = (at: number, value: number | bigint) => (bytes: Buffer) => { bytes.writeBigUInt64LE(BigInt(value), at); };

function expectRejected(bytes: Uint8Array, reason: string): void {
  expect(decodeSuperblock(bytes)).toEqual({ ok: false, reason });
}

describe('superblock rejected by its magic, length or checksum', () => {
  it('bad magic', () => {
    expectRejected(patched((bytes) => { bytes.write('X', 0, 'ascii'); }), 'bad magic: no jraid superblock here');
    expectRejected(patched((bytes) => { bytes.write('JRAIDSB2', 0, 'ascii'); }), 'bad magic: no jraid superblock here');
    expectRejected(Buffer.alloc(4096), 'bad magic: no jraid superblock here');
    expectRejected(Buffer.alloc(0), 'bad magic: no jraid superblock here');
    expectRejected(BASE_BYTES.subarray(0, 7), 'bad magic: no jraid superblock here');
  });

  it('truncated: fewer than 4096 bytes', () => {
    for (const length of [8, 512, 4092, 4095]) {
      expectRejected(BASE_BYTES.subarray(0, length), `truncated: ${length} bytes, a superblock is 4096`);
    }
  });

  it('bad checksum: one flipped byte anywhere in 0..4095, reserved space and the CRC itself included', () => {
    for (const at of [8, 48, 104, 200, 600, 4000, 4091, 4092, 4095]) {
      const bytes = Buffer.from(BASE_BYTES);
      bytes[at]! ^= 0x01;
      expect(decodeSuperblock(bytes)).toEqual({ ok: false, reason: expect.stringMatching(/^bad checksum: stored 0x[0-9a-f]{8}, computed 0x[0-9a-f]{8}$/) });
    }
    const bytes = Buffer.from(BASE_BYTES);
    bytes[4000] = 0xff;
    const computed = crc32c(bytes.subarray(0, 4092)).toString(16).padStart(8, '0');
    expectRejected(bytes, `bad checksum: stored 0x${BASE_BYTES.readUInt32LE(4092).toString(16).padStart(8, '0')}, computed 0x${computed}`);
  });
});

describe('superblock versions', () => {
  it('a newer major version is refused', () => {
    expectRejected(patched(u16(AT.versionMajor, 2)), 'newer format version 2.0: this jraid reads version 1; upgrade jraid');
    expectRejected(patched((bytes) => { bytes.writeUInt16LE(3, AT.versionMajor); bytes.writeUInt16LE(7, AT.versionMinor); }),
      'newer format version 3.7: this jraid reads version 1; upgrade jraid');
  });

  it('major version 0 is unknown', () => {
    expectRejected(patched(u16(AT.versionMajor, 0)), 'unknown format version 0.0');
  });

  it('a newer minor version with data in reserved space is read as 1.0 plus ignored additions', () => {
    const bytes = patched((b) => {
      b.writeUInt16LE(4, AT.versionMinor);
      b.fill(0x5a, 172, 176); // reserved before the region table
      b.fill(0x5a, region(DATA_REGION) + 2, region(DATA_REGION) + 8); // reserved bytes of a region entry
      b.fill(0x5a, region(15), 560); // unused region entries past the count
      b.fill(0x5a, member(1) + 20, member(1) + 24); // reserved bytes of a member entry
      b.fill(0x5a, member(1) + 36, member(1) + 40);
      b.fill(0x5a, member(63), AT.crc); // unused member entries and the tail
      b.fill(0x5a, 48 + 'corrupt'.length + 1, 80); // name bytes after its NUL terminator
    });
    expect(decodeSuperblock(bytes)).toEqual({ ok: true, value: { ...BASE, versionMinor: 4 } });
  });

  it('the superblock size field must say 4096', () => {
    expectRejected(patched(u32(AT.superblockSize, 8192)), 'superblock size field is 8192, expected 4096');
    expectRejected(patched(u32(AT.superblockSize, 0)), 'superblock size field is 0, expected 4096');
  });
});

interface Case {
  what: string;
  edit: (bytes: Buffer) => void;
  reason: string;
}

const GEOMETRY_CASES: Case[] = [
  { what: 'level 7', edit: u8(AT.level, 7), reason: 'impossible geometry: level 7' },
  { what: 'level 0', edit: u8(AT.level, 0), reason: 'impossible geometry: level 0' },
  { what: 'level 1 (mirror is not a jraid level)', edit: u8(AT.level, 1), reason: 'impossible geometry: level 1' },
  { what: 'layout parity-last on RAID-5', edit: u8(AT.layout, 1), reason: 'impossible geometry: layout id 1 for level 5' },
  { what: 'left-symmetric on RAID-4', edit: u8(AT.level, 4), reason: 'impossible geometry: layout id 2 for level 4' },
  { what: 'layout id 0', edit: u8(AT.layout, 0), reason: 'impossible geometry: layout id 0 for level 5' },
  { what: 'layout id 6', edit: u8(AT.layout, 6), reason: 'impossible geometry: layout id 6 for level 5' },
  { what: 'RAID-5 with 2 raid devices', edit: u16(AT.raidDevices, 2), reason: 'impossible geometry: 2 raid devices for level 5' },
  {
    what: 'RAID-6 with 3 raid devices',
    edit: (bytes) => { bytes[AT.level] = 6; bytes.writeUInt16LE(3, AT.raidDevices); },
    reason: 'impossible geometry: 3 raid devices for level 6',
  },
  { what: '65 raid devices', edit: u16(AT.raidDevices, 65), reason: 'impossible geometry: 65 raid devices for level 5' },
  { what: 'member table shorter than the raid devices', edit: u16(AT.memberCount, 3), reason: 'impossible geometry: member table of 3 for 4 raid devices' },
  { what: 'member table of 65', edit: u16(AT.memberCount, 65), reason: 'impossible geometry: member table of 65 for 4 raid devices' },
  { what: 'chunk not a power of two', edit: u32(AT.chunkSize, 12 * KIB), reason: 'impossible geometry: chunk size 12288' },
  { what: 'chunk below 4 KiB', edit: u32(AT.chunkSize, 2 * KIB), reason: 'impossible geometry: chunk size 2048' },
  { what: 'chunk above 64 MiB', edit: u32(AT.chunkSize, 128 * MIB), reason: 'impossible geometry: chunk size 134217728' },
  { what: 'chunk 0', edit: u32(AT.chunkSize, 0), reason: 'impossible geometry: chunk size 0' },
  { what: 'member size past 2^53', edit: u64(AT.memberSize, 2n ** 53n), reason: 'impossible geometry: a size field exceeds 2^53 bytes' },
  { what: 'data size past 2^53', edit: u64(AT.dataSize, 2n ** 63n), reason: 'impossible geometry: a size field exceeds 2^53 bytes' },
  { what: 'array size past 2^53', edit: u64(AT.arraySize, 2n ** 64n - 1n), reason: 'impossible geometry: a size field exceeds 2^53 bytes' },
  {
    what: 'data size not a multiple of the chunk',
    edit: u64(AT.dataSize, 60 * MIB + 4 * KIB),
    reason: 'impossible geometry: data size 62918656 is not a positive multiple of the chunk',
  },
  { what: 'data size 0', edit: u64(AT.dataSize, 0), reason: 'impossible geometry: data size 0 is not a positive multiple of the chunk' },
  {
    what: 'array size not (raid devices - parity) x data size',
    edit: u64(AT.arraySize, 240 * MIB),
    reason: 'impossible geometry: array size 251658240 does not match 4 members of 62914560 data bytes',
  },
  { what: "this member's index past the table", edit: u16(AT.thisIndex, 5), reason: "this member's index 5 is outside the member table" },
  { what: 'unknown consistency policy id 0', edit: u8(AT.policy, 0), reason: 'unknown consistency policy id 0' },
  { what: 'unknown consistency policy id 4', edit: u8(AT.policy, 4), reason: 'unknown consistency policy id 4' },
];

const REGION_CASES: Case[] = [
  { what: 'region table of 17 entries', edit: u16(AT.regionCount, 17), reason: 'region table of 17 entries (max 16)' },
  { what: 'unknown region kind 8', edit: u16(region(2), 8), reason: 'region 2 has unknown kind 8' },
  { what: 'policy journal without the data-journal region', edit: u8(AT.policy, 3), reason: 'policy journal requires the data-journal region, and the region table has none' },
  { what: 'region kind 0', edit: u16(region(0), 0), reason: 'region 0 has unknown kind 0' },
  {
    what: 'overlapping regions (write-intent moved into bad-blocks)',
    edit: u64(region(3) + 8, 96 * KIB),
    reason: 'impossible geometry: region write-intent overlaps the region before it',
  },
  {
    what: 'overlapping regions (journal starting inside the data region)',
    edit: u64(region(4) + 8, 8 * MIB),
    reason: 'impossible geometry: region journal overlaps the region before it',
  },
  {
    what: 'region offset not 4 KiB aligned',
    edit: u64(region(2) + 8, 64 * KIB + 512),
    reason: 'impossible geometry: region bad-blocks is not aligned to 4096 bytes',
  },
  {
    what: 'region size not 4 KiB aligned',
    edit: u64(region(4) + 16, 4 * MIB - 256 * KIB - 512),
    reason: 'impossible geometry: region journal is not aligned to 4096 bytes',
  },
  { what: 'empty region', edit: u64(region(4) + 16, 0), reason: 'impossible geometry: region journal is empty' },
  {
    what: 'data region ending past the member',
    edit: u64(region(DATA_REGION) + 16, 61 * MIB),
    reason: 'impossible geometry: region data ends past the member (68157440 > 67108864)',
  },
  {
    what: 'member size smaller than the region table',
    edit: u64(AT.memberSize, 32 * MIB),
    reason: 'impossible geometry: region data ends past the member (67108864 > 33554432)',
  },
  { what: 'no data region', edit: u16(AT.regionCount, 5), reason: 'impossible geometry: region table has no data region' },
  { what: 'no primary superblock region', edit: u16(region(0), 5), reason: 'impossible geometry: region table has no superblock-primary region' },
  { what: 'a kind listed twice', edit: u16(region(4), 3), reason: 'impossible geometry: region table lists a kind twice' },
  {
    what: 'data size larger than the data region',
    edit: u64(region(DATA_REGION) + 16, 32 * MIB),
    reason: 'impossible geometry: data size 62914560 exceeds the data region (33554432)',
  },
];

const MEMBER_CASES: Case[] = [
  { what: 'unknown member state 0', edit: u8(member(2) + 18, 0), reason: 'member 2 has unknown state 0' },
  { what: 'unknown member state 5', edit: u8(member(2) + 18, 5), reason: 'member 2 has unknown state 5' },
  { what: 'unknown member flag bit 1', edit: u8(member(1) + 19, 0x02), reason: 'member 1 has unknown flags 0x2' },
  { what: 'unknown member flag bit 7 beside partial rebuild', edit: u8(member(3) + 19, 0x81), reason: 'member 3 has unknown flags 0x81' },
  { what: 'role past the raid devices', edit: u16(member(4) + 16, 4), reason: 'member 4 has role 4 of 4' },
  { what: 'duplicate role', edit: u16(member(1) + 16, 0), reason: 'role 0 is held by two members' },
  { what: 'duplicate role held by a spare', edit: u16(member(4) + 16, 3), reason: 'role 3 is held by two members' },
  { what: 'recovery offset past the data size', edit: u64(member(2) + 24, 60 * MIB + 4 * KIB), reason: 'member 2 recovery offset out of range' },
  { what: 'recovery offset past 2^53', edit: u64(member(2) + 24, 2n ** 60n), reason: 'member 2 recovery offset out of range' },
  { what: 'resync offset past the data size', edit: u64(AT.resyncOffset, 61 * MIB), reason: 'resync or scrub offset past the data size' },
  { what: 'scrub offset past 2^53', edit: u64(AT.scrubOffset, 2n ** 60n), reason: 'resync or scrub offset past the data size' },
  {
    what: "this member's table entry with another uuid",
    edit: (bytes) => { bytes[member(0)] = 0x99; },
    reason: "member table entry for this member does not carry this member's uuid",
  },
];

for (const [title, cases] of [['geometry', GEOMETRY_CASES], ['region table', REGION_CASES], ['member table', MEMBER_CASES]] as const) {
  describe(`superblock with a correct checksum but impossible ${title}`, () => {
    it('starts from a base that decodes', () => {
      expect(decodeSuperblock(BASE_BYTES)).toEqual({ ok: true, value: BASE });
    });
    for (const { what, edit, reason } of cases) {
      it(what, () => {
        expectRejected(patched(edit), reason);
      });
    }
  });
}
