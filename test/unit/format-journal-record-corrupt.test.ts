// Proves: every corrupt or unreadable journal record is rejected with its stated reason, while reserved bytes and the slot padding after a record are ignored.
import { describe, expect, it } from 'vitest';
import { crc32c } from '../../src/format/crc32c.js';
import { decodeJournalRecord, encodeJournalRecord, type JournalRecord } from '../../src/format/journal-record.js';

// Offsets from docs/FORMAT.md ("Record"), written out here so the test does not borrow the codec's own table.
const AT = { generation: 24, flags: 32, entryCount: 36, payloadBytes: 40, crc: 60 } as const;
// The base's payload: entry 0 at 64 (checks at 80 and 96), entry 1 at 112. Entry: volume u32 at +0,
// stripe u64 at +4, check count u16 at +12. Check: block index u32 at +0, kind u8 at +4, CRCs at +8, +12.
const ENTRY_0 = 64;
const CHECK_1 = 96;
const ENTRY_1 = 112;

const BASE: JournalRecord = {
  arrayUuid: Buffer.alloc(16, 0xaa), generation: 41, clean: false,
  entries: [
    { volumeId: 1, stripe: 9, checks: [{ blockIndex: 0, kind: 'old', newCrc: 1, checkCrc: 2 }, { blockIndex: 5, kind: 'first-sector', newCrc: 3, checkCrc: 4 }] },
    { volumeId: 1, stripe: 10, checks: [] },
  ],
};
const BASE_BYTES = encodeJournalRecord(BASE);
const SIZE = 128;

function fixCrc(bytes: Buffer): void {
  const body = Buffer.from(bytes.subarray(0, 64 + bytes.readUInt32LE(AT.payloadBytes)));
  body.writeUInt32LE(0, AT.crc);
  bytes.writeUInt32LE(crc32c(body), AT.crc);
}

/** The base record with `edit` applied and the CRC recomputed, so only the edit is wrong. */
function patched(edit: (bytes: Buffer) => void): Buffer {
  const bytes = Buffer.from(BASE_BYTES);
  edit(bytes);
  fixCrc(bytes);
  return bytes;
}

const u8 = (at: number, value: number) => (bytes: Buffer) => { bytes.writeUInt8(value, at); };
const u16 = (at: number, value: number) => (bytes: Buffer) => { bytes.writeUInt16LE(value, at); };
const u32 = (at: number, value: number) => (bytes: Buffer) => { bytes.writeUInt32LE(value, at); };
const u64 = (at: number, value: bigint) => (bytes: Buffer) => { bytes.writeBigUInt64LE(value, at); };

function expectRejected(bytes: Uint8Array, reason: string): void {
  expect(decodeJournalRecord(bytes)).toEqual({ ok: false, reason });
}

describe('journal record rejected by its magic, length or checksum', () => {
  it('starts from a base that decodes', () => {
    expect(BASE_BYTES.length).toBe(SIZE);
    expect(decodeJournalRecord(BASE_BYTES)).toEqual({ ok: true, value: BASE });
  });

  it('bad magic: another structure, an empty slot, too short to hold a magic', () => {
    expectRejected(patched((bytes) => { bytes.write('X', 0, 'ascii'); }), 'bad magic: no journal record here');
    expectRejected(patched((bytes) => { bytes.write('JRAIDJR2', 0, 'ascii'); }), 'bad magic: no journal record here');
    expectRejected(patched((bytes) => { bytes.write('JRAIDSB1', 0, 'ascii'); }), 'bad magic: no journal record here');
    expectRejected(Buffer.alloc(4096), 'bad magic: no journal record here');
    expectRejected(Buffer.alloc(0), 'bad magic: no journal record here');
    expectRejected(BASE_BYTES.subarray(0, 7), 'bad magic: no journal record here');
  });

  it('truncated: less than a header, or less than the header says the record is', () => {
    for (const length of [8, 40, 63]) expectRejected(BASE_BYTES.subarray(0, length), `truncated: ${length} bytes, a record header is 64`);
    for (const length of [64, 100, 127]) expectRejected(BASE_BYTES.subarray(0, length), `truncated: ${length} bytes, this record is 128`);
    const claimsMore = Buffer.from(BASE_BYTES);
    claimsMore.writeUInt32LE(0xffffffff, AT.payloadBytes);
    expectRejected(claimsMore, `truncated: 128 bytes, this record is ${64 + 0xffffffff}`);
  });

  it('bad checksum: one flipped bit in the header, an entry, a check or the CRC itself', () => {
    for (const at of [8, 24, 32, 44, 59, 60, 63, ENTRY_0 + 4, CHECK_1 + 8, ENTRY_1 + 14, SIZE - 1]) {
      const bytes = Buffer.from(BASE_BYTES);
      bytes[at]! ^= 0x01;
      expect(decodeJournalRecord(bytes)).toEqual({ ok: false, reason: expect.stringMatching(/^bad checksum: stored 0x[0-9a-f]{8}, computed 0x[0-9a-f]{8}$/) });
    }
    const bytes = Buffer.from(BASE_BYTES);
    bytes[ENTRY_1 + 4] = 0xff;
    const zeroed = Buffer.from(bytes);
    zeroed.writeUInt32LE(0, AT.crc);
    const hex = (value: number) => value.toString(16).padStart(8, '0');
    expectRejected(bytes, `bad checksum: stored 0x${hex(BASE_BYTES.readUInt32LE(AT.crc))}, computed 0x${hex(crc32c(zeroed))}`);
  });
});

describe('journal record with a correct checksum but impossible contents', () => {
  const cases: { what: string; edit: (bytes: Buffer) => void; reason: string }[] = [
    { what: 'generation 2^53', edit: u64(AT.generation, 2n ** 53n), reason: 'generation exceeds 2^53' },
    { what: 'generation 2^64 - 1', edit: u64(AT.generation, 2n ** 64n - 1n), reason: 'generation exceeds 2^53' },
    { what: 'unknown flag bit 1', edit: u32(AT.flags, 0x2), reason: 'unknown record flags 0x2' },
    { what: 'unknown flag bit 31 beside CLEAN', edit: u32(AT.flags, 0x80000001), reason: 'unknown record flags 0x80000001' },
    { what: 'one entry more than the payload holds', edit: u32(AT.entryCount, 3), reason: 'entry 2 of 3 overruns the 128-byte record' },
    { what: 'an entry count of 2^32 - 1', edit: u32(AT.entryCount, 0xffffffff), reason: 'entry 2 of 4294967295 overruns the 128-byte record' },
    { what: 'a stripe number of 2^53', edit: u64(ENTRY_0 + 4, 2n ** 53n), reason: 'entry 0 stripe number exceeds 2^53' },
    { what: 'a stripe number of 2^64 - 1', edit: u64(ENTRY_1 + 4, 2n ** 64n - 1n), reason: 'entry 1 stripe number exceeds 2^53' },
    { what: 'block checks past the payload', edit: u16(ENTRY_1 + 12, 1), reason: "entry 1's 1 block checks overrun the 128-byte record" },
    { what: 'a check count of 65535', edit: u16(ENTRY_0 + 12, 0xffff), reason: "entry 0's 65535 block checks overrun the 128-byte record" },
    { what: 'block check kind 0', edit: u8(CHECK_1 + 4, 0), reason: 'entry 0 block check 1 has unknown kind 0' },
    { what: 'block check kind 3', edit: u8(ENTRY_0 + 16 + 4, 3), reason: 'entry 0 block check 0 has unknown kind 3' },
    { what: 'fewer entries than the payload holds', edit: u32(AT.entryCount, 1), reason: 'the entries fill 48 of the 64 payload bytes' },
    { what: 'no entries but a payload', edit: u32(AT.entryCount, 0), reason: 'the entries fill 0 of the 64 payload bytes' },
    {
      what: 'a payload that ends inside a block check',
      edit: (bytes) => { bytes.writeUInt32LE(16 + 24, AT.payloadBytes); bytes.writeUInt32LE(1, AT.entryCount); },
      reason: "entry 0's 2 block checks overrun the 104-byte record",
    },
  ];
  for (const { what, edit, reason } of cases) {
    it(what, () => {
      expectRejected(patched(edit), reason);
    });
  }
});

describe('journal record bytes the decoder ignores', () => {
  it('reserved bytes of the header, entries and checks, and whatever follows the record in its slot', () => {
    const bytes = patched((b) => {
      b.fill(0x5a, 44, 60); // reserved header bytes
      b.fill(0x5a, ENTRY_0 + 14, ENTRY_0 + 16); // reserved bytes of an entry
      b.fill(0x5a, CHECK_1 + 5, CHECK_1 + 8); // reserved bytes of a check
    });
    const slot = Buffer.alloc(4096, 0xee);
    bytes.copy(slot);
    expect(decodeJournalRecord(slot)).toEqual({ ok: true, value: BASE });
  });
});
