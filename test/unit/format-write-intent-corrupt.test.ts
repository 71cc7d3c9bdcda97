// Proves: every corrupt or unreadable write-intent header is rejected with its stated reason, while its reserved bytes and the bitmap after it are ignored.
import { describe, expect, it } from 'vitest';
import { crc32c } from '../../src/format/crc32c.js';
import { decodeWriteIntentHeader, encodeWriteIntentHeader, type WriteIntentHeader } from '../../src/format/write-intent.js';

// Offsets from docs/FORMAT.md ("Write-intent region"), written out here so the test does not borrow the codec's own table.
const AT = { startEvents: 24, chunk: 32, crc: 4092 } as const;

const BASE: WriteIntentHeader = { arrayUuid: Buffer.alloc(16, 0xcc), startEvents: 17, chunkBytes: 2 * 1024 * 1024 };
const BASE_BYTES = encodeWriteIntentHeader(BASE);

/** The base header with `edit` applied and the CRC recomputed, so only the edit is wrong. */
function patched(edit: (bytes: Buffer) => void): Buffer {
  const bytes = Buffer.from(BASE_BYTES);
  edit(bytes);
  bytes.writeUInt32LE(crc32c(bytes.subarray(0, AT.crc)), AT.crc);
  return bytes;
}

const u64 = (at: number, value: bigint) => (bytes: Buffer) => { bytes.writeBigUInt64LE(value, at); };

function expectRejected(bytes: Uint8Array, reason: string): void {
  expect(decodeWriteIntentHeader(bytes)).toEqual({ ok: false, reason });
}

describe('write-intent header rejected by its magic, length or checksum', () => {
  it('starts from a base that decodes', () => {
    expect(decodeWriteIntentHeader(BASE_BYTES)).toEqual({ ok: true, value: BASE });
  });

  it('bad magic: another structure, a blank region, too short to hold a magic', () => {
    expectRejected(patched((bytes) => { bytes.write('X', 0, 'ascii'); }), 'bad magic: no write-intent header here');
    expectRejected(patched((bytes) => { bytes.write('JRAIDWI2', 0, 'ascii'); }), 'bad magic: no write-intent header here');
    expectRejected(Buffer.alloc(4096), 'bad magic: no write-intent header here');
    expectRejected(Buffer.alloc(0), 'bad magic: no write-intent header here');
    expectRejected(BASE_BYTES.subarray(0, 7), 'bad magic: no write-intent header here');
  });

  it('truncated: fewer than 4096 bytes', () => {
    for (const length of [8, 40, 4092, 4095]) expectRejected(BASE_BYTES.subarray(0, length), `truncated: ${length} bytes, a write-intent header is 4096`);
  });

  it('bad checksum: one flipped bit anywhere in 0..4095, reserved space and the CRC itself included', () => {
    for (const at of [8, 24, 32, 39, 40, 2000, 4091, 4092, 4095]) {
      const bytes = Buffer.from(BASE_BYTES);
      bytes[at]! ^= 0x01;
      expect(decodeWriteIntentHeader(bytes)).toEqual({ ok: false, reason: expect.stringMatching(/^bad checksum: stored 0x[0-9a-f]{8}, computed 0x[0-9a-f]{8}$/) });
    }
    const bytes = Buffer.from(BASE_BYTES);
    bytes[AT.startEvents] = 0xff;
    const hex = (value: number) => value.toString(16).padStart(8, '0');
    expectRejected(bytes, `bad checksum: stored 0x${hex(BASE_BYTES.readUInt32LE(AT.crc))}, computed 0x${hex(crc32c(bytes.subarray(0, AT.crc)))}`);
  });
});

describe('write-intent header with a correct checksum but impossible contents', () => {
  const cases: { what: string; edit: (bytes: Buffer) => void; reason: string }[] = [
    { what: 'start events 2^53', edit: u64(AT.startEvents, 2n ** 53n), reason: 'start events exceed 2^53' },
    { what: 'start events 2^64 - 1', edit: u64(AT.startEvents, 2n ** 64n - 1n), reason: 'start events exceed 2^53' },
    { what: 'chunk 2^53', edit: u64(AT.chunk, 2n ** 53n), reason: 'write-intent chunk exceeds 2^53' },
    { what: 'chunk 2^64 - 1', edit: u64(AT.chunk, 2n ** 64n - 1n), reason: 'write-intent chunk exceeds 2^53' },
    { what: 'chunk 0', edit: u64(AT.chunk, 0n), reason: 'write-intent chunk 0 is not a power of two of at least 4 KiB' },
    { what: 'chunk 2 KiB', edit: u64(AT.chunk, 2048n), reason: 'write-intent chunk 2048 is not a power of two of at least 4 KiB' },
    { what: 'chunk 3 MiB', edit: u64(AT.chunk, 3n * 1024n * 1024n), reason: 'write-intent chunk 3145728 is not a power of two of at least 4 KiB' },
  ];
  for (const { what, edit, reason } of cases) {
    it(what, () => {
      expectRejected(patched(edit), reason);
    });
  }
});

describe('write-intent header bytes the decoder ignores', () => {
  it('the reserved bytes, and the bitmap that follows the header', () => {
    const bytes = patched((b) => { b.fill(0x5a, 40, AT.crc); });
    expect(decodeWriteIntentHeader(Buffer.concat([bytes, Buffer.alloc(4096, 0xff)]))).toEqual({ ok: true, value: BASE });
  });
});
