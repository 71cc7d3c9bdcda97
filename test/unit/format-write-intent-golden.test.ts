// Proves: the write-intent header byte layout is pinned — a fixed header encodes to exactly these bytes (docs/FORMAT.md, "Write-intent region").
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { crc32c } from '../../src/format/crc32c.js';
import { decodeWriteIntentHeader, encodeWriteIntentHeader, type WriteIntentHeader } from '../../src/format/write-intent.js';

const ARRAY_UUID = Buffer.from('a1a2a3a4b1b2c1c2d1d2e1e2e3e4e5e6', 'hex');
const GOLDEN: WriteIntentHeader = { arrayUuid: ARRAY_UUID, startEvents: 43, chunkBytes: 1024 * 1024 };

// Every 16-byte row of the 4096 bytes that is not all zero, as "offset: hex". Generated once
// from the encoder, then checked field by field against docs/FORMAT.md.
const GOLDEN_ROWS = [
  '   0: 4a52414944574931a1a2a3a4b1b2c1c2', // magic "JRAIDWI1"; array uuid
  '  16: d1d2e1e2e3e4e5e62b00000000000000', // array uuid; start events 43
  '  32: 00001000000000000000000000000000', // chunk 1 MiB; reserved
  '4080: 000000000000000000000000a22af106', // reserved; CRC32C of bytes 0..4091 = 0x06f12aa2
];
const GOLDEN_SHA256 = '000f0060c90e1fd089caf517a8140535c504bc1eb103bbcf1dcda6a6a6ac06f2';

function nonZeroRows(bytes: Buffer): string[] {
  const out: string[] = [];
  for (let offset = 0; offset < bytes.length; offset += 16) {
    const row = bytes.subarray(offset, offset + 16);
    if (row.some((byte) => byte !== 0)) out.push(`${String(offset).padStart(4)}: ${row.toString('hex')}`);
  }
  return out;
}

describe('write-intent header golden bytes', () => {
  const bytes = encodeWriteIntentHeader(GOLDEN);

  it('encodes to exactly the golden bytes', () => {
    expect(bytes.length).toBe(4096);
    expect(nonZeroRows(bytes)).toEqual(GOLDEN_ROWS);
    expect(createHash('sha256').update(bytes).digest('hex')).toBe(GOLDEN_SHA256);
  });

  it('decodes the golden bytes back to the value, with or without the bitmap after them', () => {
    expect(decodeWriteIntentHeader(bytes)).toEqual({ ok: true, value: GOLDEN });
    expect(decodeWriteIntentHeader(Buffer.concat([bytes, Buffer.alloc(4096, 0xff)]))).toEqual({ ok: true, value: GOLDEN });
  });

  it('puts each field at its documented offset, little-endian', () => {
    expect(bytes.subarray(0, 8).toString('ascii')).toBe('JRAIDWI1');
    expect(bytes.subarray(8, 24).equals(ARRAY_UUID)).toBe(true);
    expect(bytes.readBigUInt64LE(24)).toBe(43n);
    expect(bytes.readBigUInt64LE(32)).toBe(1024n * 1024n);
    expect(bytes.subarray(40, 4092).every((byte) => byte === 0)).toBe(true);
  });

  it('stores CRC32C of bytes 0..4091 at 4092', () => {
    expect(bytes.readUInt32LE(4092)).toBe(0x06f12aa2);
    expect(bytes.readUInt32LE(4092)).toBe(crc32c(bytes.subarray(0, 4092)));
  });
});
