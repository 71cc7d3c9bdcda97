// Proves: the bad-block list byte layout is pinned — a fixed list encodes to exactly these bytes (docs/FORMAT.md, "Bad-block region").
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { decodeBadBlocks, encodeBadBlocks, type BadBlockList } from '../../src/format/bad-blocks.js';
import { crc32c } from '../../src/format/crc32c.js';

const ARRAY_UUID = Buffer.from('a1a2a3a4b1b2c1c2d1d2e1e2e3e4e5e6', 'hex');

// Two ranges: four torn blocks from block 16, and one block lost with a member, past 32 bits.
const GOLDEN: BadBlockList = {
  arrayUuid: ARRAY_UUID,
  sequence: 5,
  ranges: [
    { firstBlock: 16, blockCount: 4, reason: 'torn' },
    { firstBlock: 0x1_0000_0001, blockCount: 1, reason: 'lost' },
  ],
};

// Every 16-byte row, as "offset: hex". Generated once from the encoder, then checked field by
// field against docs/FORMAT.md.
const GOLDEN_ROWS = [
  '   0: 4a52414944424231a1a2a3a4b1b2c1c2', // magic "JRAIDBB1"; array uuid
  '  16: d1d2e1e2e3e4e5e60500000000000000', // array uuid; sequence 5
  '  32: 02000000000000000000000000000000', // 2 ranges; reserved
  '  48: 000000000000000000000000cdb24c87', // reserved; CRC32C 0x874cb2cd
  '  64: 10000000000000000400000001000000', // range 0: first block 16, 4 blocks, reason 1 (torn), reserved
  '  80: 01000000010000000100000002000000', // range 1: first block 0x100000001, 1 block, reason 2 (lost), reserved
];
const GOLDEN_SHA256 = 'e10c1c2e85930dc158ed7b1093d7c979f67c12b98c5b908ab1b9a5bbfee8cff4';

function rows(bytes: Buffer): string[] {
  const out: string[] = [];
  for (let offset = 0; offset < bytes.length; offset += 16) out.push(`${String(offset).padStart(4)}: ${bytes.subarray(offset, offset + 16).toString('hex')}`);
  return out;
}

describe('bad-block list golden bytes', () => {
  const bytes = encodeBadBlocks(GOLDEN);

  it('encodes to exactly the golden bytes', () => {
    expect(bytes.length).toBe(96);
    expect(rows(bytes)).toEqual(GOLDEN_ROWS);
    expect(createHash('sha256').update(bytes).digest('hex')).toBe(GOLDEN_SHA256);
  });

  it('decodes the golden bytes back to the value, alone or as the whole 64 KiB region', () => {
    expect(decodeBadBlocks(bytes)).toEqual({ ok: true, value: GOLDEN });
    const region = Buffer.alloc(64 * 1024, 0xee);
    bytes.copy(region);
    expect(decodeBadBlocks(region)).toEqual({ ok: true, value: GOLDEN });
  });

  it('puts each field at its documented offset, little-endian', () => {
    expect(bytes.subarray(0, 8).toString('ascii')).toBe('JRAIDBB1');
    expect(bytes.subarray(8, 24).equals(ARRAY_UUID)).toBe(true);
    expect(bytes.readBigUInt64LE(24)).toBe(5n);
    expect(bytes.readUInt32LE(32)).toBe(2);
    expect(bytes.subarray(36, 60).every((byte) => byte === 0)).toBe(true);
    // Ranges of 16 bytes from 64: first block u64, block count u32, reason u8, 3 reserved.
    expect([bytes.readBigUInt64LE(64), bytes.readUInt32LE(72), bytes[76]]).toEqual([16n, 4, 1]);
    expect([bytes.readBigUInt64LE(80), bytes.readUInt32LE(88), bytes[92]]).toEqual([0x1_0000_0001n, 1, 2]);
    expect(bytes.subarray(77, 80).every((byte) => byte === 0) && bytes.subarray(93, 96).every((byte) => byte === 0)).toBe(true);
  });

  it('stores at 60 the CRC32C of the header and ranges with those four bytes zero', () => {
    const zeroed = Buffer.from(bytes);
    zeroed.writeUInt32LE(0, 60);
    expect(bytes.readUInt32LE(60)).toBe(0x874cb2cd);
    expect(bytes.readUInt32LE(60)).toBe(crc32c(zeroed));
  });

  it('an empty list is its 64-byte header', () => {
    const empty = encodeBadBlocks({ arrayUuid: ARRAY_UUID, sequence: 1, ranges: [] });
    expect(empty.length).toBe(64);
    expect(empty.readUInt32LE(32)).toBe(0);
  });
});
