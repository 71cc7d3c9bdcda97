// Proves: every corrupt or unreadable bad-block list is rejected with its stated reason, while reserved bytes and the region after the list are ignored.
import { describe, expect, it } from 'vitest';
import { decodeBadBlocks, encodeBadBlocks, type BadBlockList } from '../../src/format/bad-blocks.js';
import { crc32c } from '../../src/format/crc32c.js';

// Offsets from docs/FORMAT.md ("Bad-block region"), written out here so the test does not borrow the codec's own table.
const AT = { sequence: 24, count: 32, crc: 60 } as const;
// Range i at 64 + 16 i: first block u64 at +0, block count u32 at +8, reason u8 at +12.
const range = (index: number) => 64 + index * 16;

const BASE: BadBlockList = {
  arrayUuid: Buffer.alloc(16, 0xbb), sequence: 12,
  ranges: [
    { firstBlock: 16, blockCount: 4, reason: 'torn' },
    { firstBlock: 100, blockCount: 1, reason: 'lost' },
    { firstBlock: 2 ** 32, blockCount: 8, reason: 'torn' },
  ],
};
const BASE_BYTES = encodeBadBlocks(BASE);

function fixCrc(bytes: Buffer): void {
  const body = Buffer.from(bytes.subarray(0, 64 + 16 * bytes.readUInt32LE(AT.count)));
  body.writeUInt32LE(0, AT.crc);
  bytes.writeUInt32LE(crc32c(body), AT.crc);
}

/** The base list with `edit` applied and the CRC recomputed, so only the edit is wrong. */
function patched(edit: (bytes: Buffer) => void): Buffer {
  const bytes = Buffer.from(BASE_BYTES);
  edit(bytes);
  fixCrc(bytes);
  return bytes;
}

const u8 = (at: number, value: number) => (bytes: Buffer) => { bytes.writeUInt8(value, at); };
const u32 = (at: number, value: number) => (bytes: Buffer) => { bytes.writeUInt32LE(value, at); };
const u64 = (at: number, value: bigint) => (bytes: Buffer) => { bytes.writeBigUInt64LE(value, at); };

function expectRejected(bytes: Uint8Array, reason: string): void {
  expect(decodeBadBlocks(bytes)).toEqual({ ok: false, reason });
}

describe('bad-block list rejected by its magic, length or checksum', () => {
  it('starts from a base that decodes', () => {
    expect(decodeBadBlocks(BASE_BYTES)).toEqual({ ok: true, value: BASE });
  });

  it('bad magic: another structure, a blank region, too short to hold a magic', () => {
    expectRejected(patched((bytes) => { bytes.write('X', 0, 'ascii'); }), 'bad magic: no bad-block list here');
    expectRejected(patched((bytes) => { bytes.write('JRAIDBB2', 0, 'ascii'); }), 'bad magic: no bad-block list here');
    expectRejected(Buffer.alloc(64 * 1024), 'bad magic: no bad-block list here');
    expectRejected(Buffer.alloc(0), 'bad magic: no bad-block list here');
    expectRejected(BASE_BYTES.subarray(0, 7), 'bad magic: no bad-block list here');
  });

  it('truncated: less than a header, or less than the count of ranges needs', () => {
    for (const length of [8, 36, 63]) expectRejected(BASE_BYTES.subarray(0, length), `truncated: ${length} bytes, a bad-block list header is 64`);
    for (const length of [64, 100, 111]) expectRejected(BASE_BYTES.subarray(0, length), `truncated: ${length} bytes, a list of 3 ranges is 112`);
    const claimsMore = Buffer.from(BASE_BYTES);
    claimsMore.writeUInt32LE(0xffffffff, AT.count);
    expectRejected(claimsMore, `truncated: 112 bytes, a list of 4294967295 ranges is ${64 + 16 * 0xffffffff}`);
    // A count past what the 64 KiB region holds (4092 ranges) overruns it.
    const region = Buffer.alloc(64 * 1024);
    BASE_BYTES.copy(region);
    region.writeUInt32LE(4093, AT.count);
    expectRejected(region, `truncated: 65536 bytes, a list of 4093 ranges is ${64 + 16 * 4093}`);
  });

  it('bad checksum: one flipped bit in the header, a range or the CRC itself', () => {
    for (const at of [8, 24, 32, 40, 59, 60, 63, range(0), range(1) + 8, range(2) + 12, range(2) + 15]) {
      const bytes = Buffer.from(BASE_BYTES);
      bytes[at]! ^= 0x01;
      expect(decodeBadBlocks(bytes)).toEqual({ ok: false, reason: expect.stringMatching(/^bad checksum: stored 0x[0-9a-f]{8}, computed 0x[0-9a-f]{8}$/) });
    }
    const bytes = Buffer.from(BASE_BYTES);
    bytes[range(1)] = 0xff;
    const zeroed = Buffer.from(bytes);
    zeroed.writeUInt32LE(0, AT.crc);
    const hex = (value: number) => value.toString(16).padStart(8, '0');
    expectRejected(bytes, `bad checksum: stored 0x${hex(BASE_BYTES.readUInt32LE(AT.crc))}, computed 0x${hex(crc32c(zeroed))}`);
  });
});

describe('bad-block list with a correct checksum but impossible contents', () => {
  const cases: { what: string; edit: (bytes: Buffer) => void; reason: string }[] = [
    { what: 'sequence 2^53', edit: u64(AT.sequence, 2n ** 53n), reason: 'sequence exceeds 2^53' },
    { what: 'sequence 2^64 - 1', edit: u64(AT.sequence, 2n ** 64n - 1n), reason: 'sequence exceeds 2^53' },
    { what: 'reason 0', edit: u8(range(1) + 12, 0), reason: 'range 1 has unknown reason 0' },
    { what: 'reason 3', edit: u8(range(2) + 12, 3), reason: 'range 2 has unknown reason 3' },
    { what: 'a range of no blocks', edit: u32(range(0) + 8, 0), reason: 'range 0 is empty' },
    { what: 'a first block of 2^64 - 1', edit: u64(range(2), 2n ** 64n - 1n), reason: 'range 2 ends past 2^53 bytes of array' },
    { what: 'a first block of 2^53', edit: u64(range(2), 2n ** 53n), reason: 'range 2 ends past 2^53 bytes of array' },
    {
      what: 'a range that starts below 2^53 bytes of array and ends past it',
      edit: u64(range(2), 2n ** 41n - 4n), // 8 blocks from 4 below the 2^41st block
      reason: 'range 2 ends past 2^53 bytes of array',
    },
    { what: 'ranges out of order', edit: u64(range(1), 8n), reason: 'range 1 starts at block 8, before range 0 ends (20)' },
    { what: 'overlapping ranges', edit: u64(range(1), 19n), reason: 'range 1 starts at block 19, before range 0 ends (20)' },
    { what: 'the same range twice', edit: u64(range(2), 100n), reason: 'range 2 starts at block 100, before range 1 ends (101)' },
  ];
  for (const { what, edit, reason } of cases) {
    it(what, () => {
      expectRejected(patched(edit), reason);
    });
  }
});

describe('bad-block list bytes the decoder ignores', () => {
  it('reserved bytes of the header and ranges, and the rest of the region after the list', () => {
    const bytes = patched((b) => {
      b.fill(0x5a, 36, 60); // reserved header bytes
      b.fill(0x5a, range(1) + 13, range(1) + 16); // reserved bytes of a range
    });
    const region = Buffer.alloc(64 * 1024, 0xee);
    bytes.copy(region);
    expect(decodeBadBlocks(region)).toEqual({ ok: true, value: BASE });
  });

  it('a range ending exactly at 2^53 bytes of array is accepted', () => {
    const bytes = patched(u64(range(2), 2n ** 41n - 8n));
    expect(decodeBadBlocks(bytes)).toMatchObject({ ok: true, value: { ranges: [{}, {}, { firstBlock: 2 ** 41 - 8, blockCount: 8 }] } });
  });
});
