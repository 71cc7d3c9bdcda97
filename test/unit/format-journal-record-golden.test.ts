// Proves: the journal record byte layout is pinned — fixed records encode to exactly these bytes (docs/FORMAT.md, "Record").
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { crc32c } from '../../src/format/crc32c.js';
import { decodeJournalRecord, encodeJournalRecord, type JournalRecord } from '../../src/format/journal-record.js';

const ARRAY_UUID = Buffer.from('a1a2a3a4b1b2c1c2d1d2e1e2e3e4e5e6', 'hex');

// A dirty record listing two stripes: the first (a stripe number past 32 bits) with one block
// check of each kind, the second with none.
const GOLDEN: JournalRecord = {
  arrayUuid: ARRAY_UUID,
  generation: 0x01_0203_0405,
  clean: false,
  entries: [
    {
      volumeId: 1,
      stripe: 0x1_2345_6789,
      checks: [
        { blockIndex: 3, kind: 'old', newCrc: 0xdeadbeef, checkCrc: 0x01234567 },
        { blockIndex: 130, kind: 'first-sector', newCrc: 0xcafef00d, checkCrc: 0x89abcdef },
      ],
    },
    { volumeId: 1, stripe: 7, checks: [] },
  ],
};

// Every 16-byte row, as "offset: hex". Generated once from the encoder, then checked field by
// field against docs/FORMAT.md.
const GOLDEN_ROWS = [
  '   0: 4a524149444a5231a1a2a3a4b1b2c1c2', // magic "JRAIDJR1"; array uuid
  '  16: d1d2e1e2e3e4e5e60504030201000000', // array uuid; generation 0x0102030405
  '  32: 00000000020000004000000000000000', // flags 0 (dirty), 2 entries, payload 64 bytes; reserved
  '  48: 000000000000000000000000615fad9f', // reserved; CRC32C 0x9fad5f61
  '  64: 01000000896745230100000002000000', // entry 0: volume 1, stripe 0x123456789, 2 checks, reserved
  '  80: 0300000001000000efbeadde67452301', // check: block 3, kind 1 (old), new CRC 0xdeadbeef, check CRC 0x01234567
  '  96: 82000000020000000df0fecaefcdab89', // check: block 130, kind 2 (first-sector), new CRC 0xcafef00d, check CRC 0x89abcdef
  ' 112: 01000000070000000000000000000000', // entry 1: volume 1, stripe 7, no checks, reserved
];
const GOLDEN_SHA256 = '9306220aace4a09d64af417f32dbfc01ae636d588f136f5060d7707c9f3a9de4';

const CLEAN: JournalRecord = { arrayUuid: ARRAY_UUID, generation: 0x01_0203_0406, clean: true, entries: [] };
const CLEAN_ROWS = [
  '   0: 4a524149444a5231a1a2a3a4b1b2c1c2', // magic; array uuid
  '  16: d1d2e1e2e3e4e5e60604030201000000', // array uuid; generation 0x0102030406
  '  32: 01000000000000000000000000000000', // flags CLEAN, no entries, payload 0; reserved
  '  48: 00000000000000000000000090bdd35e', // reserved; CRC32C 0x5ed3bd90
];
const CLEAN_SHA256 = '7d4cb7d5afcf41452937421b6ddf505d13f07e1e08284058266727403c1dc2dc';

function rows(bytes: Buffer): string[] {
  const out: string[] = [];
  for (let offset = 0; offset < bytes.length; offset += 16) out.push(`${String(offset).padStart(4)}: ${bytes.subarray(offset, offset + 16).toString('hex')}`);
  return out;
}

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

describe('journal record golden bytes', () => {
  const bytes = encodeJournalRecord(GOLDEN);

  it('encodes a dirty record with entries and checks to exactly the golden bytes', () => {
    expect(bytes.length).toBe(128);
    expect(rows(bytes)).toEqual(GOLDEN_ROWS);
    expect(sha256(bytes)).toBe(GOLDEN_SHA256);
  });

  it('encodes a clean record with no entries to exactly its 64-byte header', () => {
    const clean = encodeJournalRecord(CLEAN);
    expect(rows(clean)).toEqual(CLEAN_ROWS);
    expect(sha256(clean)).toBe(CLEAN_SHA256);
    expect(decodeJournalRecord(clean)).toEqual({ ok: true, value: CLEAN });
  });

  it('decodes the golden bytes back to the value, alone or padded to its 4 KiB block', () => {
    expect(decodeJournalRecord(bytes)).toEqual({ ok: true, value: GOLDEN });
    const padded = Buffer.alloc(4096, 0xee);
    bytes.copy(padded);
    expect(decodeJournalRecord(padded)).toEqual({ ok: true, value: GOLDEN });
  });

  it('puts each header field at its documented offset, little-endian', () => {
    expect(bytes.subarray(0, 8).toString('ascii')).toBe('JRAIDJR1');
    expect(bytes.subarray(8, 24).equals(ARRAY_UUID)).toBe(true);
    expect(bytes.readBigUInt64LE(24)).toBe(0x01_0203_0405n);
    expect(bytes.readUInt32LE(32)).toBe(0); // flags: not clean
    expect(bytes.readUInt32LE(36)).toBe(2); // entry count
    expect(bytes.readUInt32LE(40)).toBe(128 - 64); // payload bytes
    expect(bytes.subarray(44, 60).every((byte) => byte === 0)).toBe(true); // reserved
  });

  it('lays out a stripe entry as 16 bytes (volume u32, stripe u64, check count u16, 2 reserved), each followed by its 16-byte checks', () => {
    expect(bytes.readUInt32LE(64)).toBe(1);
    expect(bytes.readBigUInt64LE(68)).toBe(0x1_2345_6789n);
    expect(bytes.readUInt16LE(76)).toBe(2);
    expect(bytes.readUInt16LE(78)).toBe(0);
    // Checks: block index u32, kind u8, 3 reserved, new CRC u32, check CRC u32.
    expect([bytes.readUInt32LE(80), bytes[84], bytes.readUInt32LE(88), bytes.readUInt32LE(92)]).toEqual([3, 1, 0xdeadbeef, 0x01234567]);
    expect([bytes.readUInt32LE(96), bytes[100], bytes.readUInt32LE(104), bytes.readUInt32LE(108)]).toEqual([130, 2, 0xcafef00d, 0x89abcdef]);
    expect(bytes.subarray(85, 88).every((byte) => byte === 0) && bytes.subarray(101, 104).every((byte) => byte === 0)).toBe(true);
    expect(bytes.readUInt32LE(112)).toBe(1);
    expect(bytes.readBigUInt64LE(116)).toBe(7n);
    expect(bytes.readUInt16LE(124)).toBe(0);
  });

  it('stores at 60 the CRC32C of the whole record with those four bytes zero', () => {
    const zeroed = Buffer.from(bytes);
    zeroed.writeUInt32LE(0, 60);
    expect(bytes.readUInt32LE(60)).toBe(0x9fad5f61);
    expect(bytes.readUInt32LE(60)).toBe(crc32c(zeroed));
  });
});
