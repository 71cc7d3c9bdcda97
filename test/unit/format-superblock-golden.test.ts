// Proves: the superblock byte layout is pinned — a fixed value encodes to exactly these bytes (docs/FORMAT.md).
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { crc32c } from '../../src/format/crc32c.js';
import { buildMemberLayout } from '../../src/format/layout.js';
import { decodeSuperblock, encodeSuperblock, FLAG_DIRTY, type Superblock } from '../../src/format/superblock.js';
import { KIB, MIB } from '../../src/units.js';

function memberUuid(index: number): Buffer {
  return Buffer.alloc(16, 0x10 * (index + 1));
}

// RAID-5, 4 raid devices + 1 spare, 64 MiB members, seen from member 1. Member 2 is mid-rebuild
// (a partial rebuild after a re-add); member 3 has had read errors corrected.
const GOLDEN: Superblock = {
  versionMajor: 1,
  versionMinor: 0,
  arrayUuid: Buffer.from('a1a2a3a4b1b2c1c2d1d2e1e2e3e4e5e6', 'hex'),
  memberUuid: memberUuid(1),
  name: 'golden',
  createdAtMs: 1_700_000_000_000,
  updatedAtMs: 1_700_000_123_456,
  events: 42,
  level: 5,
  layout: 'left-symmetric',
  policy: 'dirty-log',
  raidDevices: 4,
  chunkSizeBytes: 512 * KIB,
  flags: FLAG_DIRTY,
  memberSizeBytes: 64 * MIB,
  dataSizeBytes: 60 * MIB,
  arraySizeBytes: 180 * MIB,
  writeIntentChunkBytes: MIB,
  resyncOffsetBytes: 16 * MIB,
  scrubOffsetBytes: 8 * MIB,
  thisIndex: 1,
  regions: buildMemberLayout(64 * MIB),
  members: [
    { uuid: memberUuid(0), role: 0, state: 'active', recoveryOffsetBytes: 0, partialRebuild: false, readErrorsCorrected: 0 },
    { uuid: memberUuid(1), role: 1, state: 'active', recoveryOffsetBytes: 0, partialRebuild: false, readErrorsCorrected: 0 },
    { uuid: memberUuid(2), role: 2, state: 'rebuilding', recoveryOffsetBytes: 2 * MIB, partialRebuild: true, readErrorsCorrected: 0 },
    { uuid: memberUuid(3), role: 3, state: 'active', recoveryOffsetBytes: 0, partialRebuild: false, readErrorsCorrected: 0x01020304 },
    { uuid: memberUuid(4), role: null, state: 'spare', recoveryOffsetBytes: 0, partialRebuild: false, readErrorsCorrected: 0 },
  ],
};

// Every 16-byte row of the 4096 bytes that is not all zero, as "offset: hex". Generated once
// from the encoder, then checked field by field against docs/FORMAT.md.
const GOLDEN_ROWS = [
  '   0: 4a524149445342310100000000100000', // magic "JRAIDSB1", version 1.0, superblock size 4096
  '  16: a1a2a3a4b1b2c1c2d1d2e1e2e3e4e5e6', // array uuid
  '  32: 20202020202020202020202020202020', // this member's uuid (member 1)
  '  48: 676f6c64656e00000000000000000000', // name "golden", NUL-padded to 32 bytes
  '  80: 0068e5cf8b010000404ae7cf8b010000', // created at, updated at (ms)
  '  96: 2a000000000000000502020004000500', // events 42; level 5, layout 2, policy 2; 4 raid devices, 5 members
  ' 112: 00000800010000000000000400000000', // chunk 512 KiB, flags DIRTY, member size 64 MiB
  ' 128: 0000c003000000000000400b00000000', // data size 60 MiB, array size 180 MiB
  ' 144: 00001000000000000000000100000000', // write-intent chunk 1 MiB, resync offset 16 MiB
  ' 160: 00008000000000000100060000000000', // scrub offset 8 MiB, this index 1, 6 regions
  ' 176: 01000000000000000000000000000000', // region 0: superblock-primary at 0
  ' 192: 00100000000000000200000000000000', // region 0 size 4 KiB; region 1: superblock-secondary
  ' 208: 00100000000000000010000000000000', // region 1 at 4 KiB, size 4 KiB
  ' 224: 03000000000000000000010000000000', // region 2: bad-blocks at 64 KiB
  ' 240: 00000100000000000400000000000000', // region 2 size 64 KiB; region 3: write-intent
  ' 256: 00000200000000000000020000000000', // region 3 at 128 KiB, size 128 KiB
  ' 272: 05000000000000000000040000000000', // region 4: journal at 256 KiB
  ' 288: 00003c00000000000600000000000000', // region 4 size 3.75 MiB; region 5: data
  ' 304: 00004000000000000000c00300000000', // region 5 at 4 MiB, size 60 MiB
  ' 560: 10101010101010101010101010101010', // member 0: uuid
  ' 576: 00000100000000000000000000000000', // member 0: role 0, active, recovery 0
  ' 592: 00000000000000002020202020202020', // member 1: uuid (starts at 600)
  ' 608: 20202020202020200100010000000000', // member 1: role 1, active
  ' 640: 30303030303030303030303030303030', // member 2: uuid
  ' 656: 02000401000000000000200000000000', // member 2: role 2, rebuilding, flags PARTIAL_REBUILD, recovery 2 MiB
  ' 672: 00000000000000004040404040404040', // member 3: uuid (starts at 680)
  ' 688: 40404040404040400300010000000000', // member 3: role 3, active
  ' 704: 00000000000000000403020100000000', // member 3: read errors corrected 0x01020304
  ' 720: 50505050505050505050505050505050', // member 4: uuid
  ' 736: ffff0300000000000000000000000000', // member 4: no role (0xffff), spare
  '4080: 00000000000000000000000057856b5c', // CRC32C of bytes 0..4091 = 0x5c6b8557
];
const GOLDEN_SHA256 = '4f0d94832c0b7b1277de5dcfbf2b29da15057f03356546ef5199843e5f9ebff9';

function nonZeroRows(bytes: Buffer): string[] {
  const rows: string[] = [];
  for (let offset = 0; offset < bytes.length; offset += 16) {
    const row = bytes.subarray(offset, offset + 16);
    if (row.some((byte) => byte !== 0)) rows.push(`${String(offset).padStart(4)}: ${row.toString('hex')}`);
  }
  return rows;
}

describe('superblock golden bytes', () => {
  const bytes = encodeSuperblock(GOLDEN);

  it('encodes to exactly the golden bytes', () => {
    expect(bytes.length).toBe(4096);
    expect(nonZeroRows(bytes)).toEqual(GOLDEN_ROWS);
    expect(createHash('sha256').update(bytes).digest('hex')).toBe(GOLDEN_SHA256);
  });

  it('decodes the golden bytes back to the value', () => {
    expect(decodeSuperblock(bytes)).toEqual({ ok: true, value: GOLDEN });
  });

  it('puts each header field at its documented offset, little-endian', () => {
    expect(bytes.subarray(0, 8).toString('ascii')).toBe('JRAIDSB1');
    expect(bytes.readUInt16LE(8)).toBe(1); // version major
    expect(bytes.readUInt16LE(10)).toBe(0); // version minor
    expect(bytes.readUInt32LE(12)).toBe(4096); // superblock size
    expect(bytes.subarray(16, 32).toString('hex')).toBe('a1a2a3a4b1b2c1c2d1d2e1e2e3e4e5e6');
    expect(bytes.subarray(32, 48).equals(memberUuid(1))).toBe(true);
    expect(bytes.subarray(48, 80).toString('hex')).toBe(Buffer.from('golden').toString('hex') + '00'.repeat(26));
    expect(bytes.readBigUInt64LE(80)).toBe(1_700_000_000_000n);
    expect(bytes.readBigUInt64LE(88)).toBe(1_700_000_123_456n);
    expect(bytes.readBigUInt64LE(96)).toBe(42n);
    expect(bytes[104]).toBe(5); // level
    expect(bytes[105]).toBe(2); // layout: left-symmetric
    expect(bytes[106]).toBe(2); // policy: dirty-log
    expect(bytes[107]).toBe(0); // reserved
    expect(bytes.readUInt16LE(108)).toBe(4); // raid devices
    expect(bytes.readUInt16LE(110)).toBe(5); // member table entries
    expect(bytes.readUInt32LE(112)).toBe(512 * KIB);
    expect(bytes.readUInt32LE(116)).toBe(FLAG_DIRTY);
    expect(bytes.readBigUInt64LE(120)).toBe(BigInt(64 * MIB));
    expect(bytes.readBigUInt64LE(128)).toBe(BigInt(60 * MIB));
    expect(bytes.readBigUInt64LE(136)).toBe(BigInt(180 * MIB));
    expect(bytes.readBigUInt64LE(144)).toBe(BigInt(MIB));
    expect(bytes.readBigUInt64LE(152)).toBe(BigInt(16 * MIB));
    expect(bytes.readBigUInt64LE(160)).toBe(BigInt(8 * MIB));
    expect(bytes.readUInt16LE(168)).toBe(1); // this index
    expect(bytes.readUInt16LE(170)).toBe(6); // region count
  });

  it('lays out region entries as 24 bytes from offset 176: kind u16, 6 reserved, offset u64, size u64', () => {
    const expected: [kind: number, offsetBytes: number, sizeBytes: number][] = [
      [1, 0, 4 * KIB], [2, 4 * KIB, 4 * KIB], [3, 64 * KIB, 64 * KIB],
      [4, 128 * KIB, 128 * KIB], [5, 256 * KIB, 4 * MIB - 256 * KIB], [6, 4 * MIB, 60 * MIB],
    ];
    expected.forEach(([kind, offsetBytes, sizeBytes], index) => {
      const at = 176 + index * 24;
      expect(bytes.readUInt16LE(at)).toBe(kind);
      expect(bytes.subarray(at + 2, at + 8).every((byte) => byte === 0)).toBe(true);
      expect(bytes.readBigUInt64LE(at + 8)).toBe(BigInt(offsetBytes));
      expect(bytes.readBigUInt64LE(at + 16)).toBe(BigInt(sizeBytes));
    });
    // Unused entries up to the 16-entry table's end stay zero.
    expect(bytes.subarray(176 + 6 * 24, 560).every((byte) => byte === 0)).toBe(true);
  });

  it('lays out member entries as 40 bytes from offset 560: uuid, role u16, state u8, flags u8, recovery u64, read errors u32', () => {
    const expected: [role: number, state: number, flags: number, recoveryOffsetBytes: number, readErrorsCorrected: number][] = [
      [0, 1, 0, 0, 0], [1, 1, 0, 0, 0], [2, 4, 1, 2 * MIB, 0], [3, 1, 0, 0, 0x01020304], [0xffff, 3, 0, 0, 0],
    ];
    expected.forEach(([role, state, flags, recoveryOffsetBytes, readErrorsCorrected], index) => {
      const at = 560 + index * 40;
      expect(bytes.subarray(at, at + 16).equals(memberUuid(index))).toBe(true);
      expect(bytes.readUInt16LE(at + 16)).toBe(role);
      expect(bytes[at + 18]).toBe(state);
      expect(bytes[at + 19]).toBe(flags);
      expect(bytes.subarray(at + 20, at + 24).every((byte) => byte === 0)).toBe(true);
      expect(bytes.readBigUInt64LE(at + 24)).toBe(BigInt(recoveryOffsetBytes));
      expect(bytes.readUInt32LE(at + 32)).toBe(readErrorsCorrected);
      expect(bytes.subarray(at + 36, at + 40).every((byte) => byte === 0)).toBe(true);
    });
    expect(bytes.subarray(560 + 5 * 40, 4092).every((byte) => byte === 0)).toBe(true);
  });

  it('stores CRC32C of bytes 0..4091 at 4092', () => {
    expect(bytes.readUInt32LE(4092)).toBe(0x5c6b8557);
    expect(bytes.readUInt32LE(4092)).toBe(crc32c(bytes.subarray(0, 4092)));
  });

  it('uses the Castagnoli CRC (standard check value of "123456789" is 0xe3069283)', () => {
    expect(crc32c(Buffer.from('123456789', 'ascii'))).toBe(0xe3069283);
  });
});
