// Proves: a codec's byte map is checked once where it is declared (no overlap, no gap, exactly the structure's size, integers as wide as their type), and field access takes its width and kind from the map.
import { describe, expect, it } from 'vitest';
import {
  checksumProblem, crcWithFieldZeroed, declareFields, entryOffsetBytes, readBytes, readUint, writeBytes, writeUint,
} from '../../src/format/codec.js';
import { crc32c } from '../../src/format/crc32c.js';

describe('declareFields', () => {
  it('accepts fields that tile the structure, in any order of declaration', () => {
    const map = declareFields('entry', 16, { tail: [8, 8, 'u64'], head: [0, 4, 'u32'], middle: [4, 4, 'u32'] });
    expect(map.sizeBytes).toBe(16);
    expect(map.field.tail).toEqual({ offsetBytes: 8, sizeBytes: 8, type: 'u64' });
  });

  it('refuses overlapping fields', () => {
    expect(() => declareFields('entry', 16, { a: [0, 8, 'u64'], b: [6, 10, 'bytes'] })).toThrow('assertion failed: entry: field b at 6 overlaps the field before it (ends 8)');
  });

  it('refuses a gap between fields (reserved space must be declared)', () => {
    expect(() => declareFields('entry', 16, { a: [0, 4, 'u32'], b: [8, 8, 'u64'] })).toThrow('assertion failed: entry: gap of 4 bytes before field b');
  });

  it('refuses fields that stop short of, or run past, the structure size', () => {
    expect(() => declareFields('entry', 16, { a: [0, 8, 'u64'], b: [8, 4, 'u32'] })).toThrow('assertion failed: entry: fields end at 12, the structure is 16 bytes');
    expect(() => declareFields('entry', 16, { a: [0, 8, 'u64'], b: [8, 12, 'bytes'] })).toThrow('assertion failed: entry: fields end at 20, the structure is 16 bytes');
  });

  it('refuses an integer field whose width is not its type', () => {
    expect(() => declareFields('entry', 8, { a: [0, 4, 'u64'], b: [4, 4, 'u32'] })).toThrow('assertion failed: entry: field a is 4 bytes, a u64 is 8');
  });

  it('refuses an empty field', () => {
    expect(() => declareFields('entry', 8, { a: [0, 8, 'u64'], b: [8, 0, 'bytes'] })).toThrow('assertion failed: entry: field b is empty');
  });
});

describe('entry tables', () => {
  const entry = declareFields('thing', 24, { kind: [0, 2, 'u16'], reserved: [2, 6, 'reserved'], offset: [8, 8, 'u64'], size: [16, 8, 'u64'] });
  const table = { offsetBytes: 176, sizeBytes: 16 * 24, type: 'table' } as const;

  it('place entry i at the table offset plus i entries', () => {
    expect(entryOffsetBytes(table, entry, 0)).toBe(176);
    expect(entryOffsetBytes(table, entry, 15)).toBe(176 + 15 * 24);
  });

  it('refuse an index outside the table, and a table that is not whole entries', () => {
    expect(() => entryOffsetBytes(table, entry, 16)).toThrow('assertion failed: thing 16 is outside its table');
    expect(() => entryOffsetBytes(table, entry, -1)).toThrow('assertion failed: thing -1 is outside its table');
    expect(() => entryOffsetBytes({ offsetBytes: 0, sizeBytes: 100, type: 'table' }, entry, 0)).toThrow('is not whole entries');
  });
});

describe('field access by width', () => {
  const map = declareFields('widths', 16, { a: [0, 1, 'u8'], b: [1, 2, 'u16'], c: [3, 4, 'u32'], reserved: [7, 1, 'reserved'], d: [8, 8, 'u64'] });
  const f = map.field;

  it('writes and reads each width little-endian at base + offset', () => {
    const bytes = Buffer.alloc(32);
    writeUint(bytes, f.a, 0xab, 16);
    writeUint(bytes, f.b, 0xbeef, 16);
    writeUint(bytes, f.c, 0xdeadbeef, 16);
    writeUint(bytes, f.d, Number.MAX_SAFE_INTEGER, 16);
    expect(bytes.subarray(16).toString('hex')).toBe('abefbeefbeadde00ffffffffffff1f00');
    expect([readUint(bytes, f.a, 16), readUint(bytes, f.b, 16), readUint(bytes, f.c, 16), readUint(bytes, f.d, 16)])
      .toEqual([0xab, 0xbeef, 0xdeadbeef, Number.MAX_SAFE_INTEGER]);
  });

  it('reads a u64 of 2^53 or more as NaN, which every range check rejects', () => {
    const bytes = Buffer.alloc(16);
    for (const value of [2n ** 53n, 2n ** 53n + 1n, 2n ** 64n - 1n]) {
      bytes.writeBigUInt64LE(value, 8);
      expect(readUint(bytes, f.d)).toBeNaN();
    }
  });

  it('refuses a value that does not fit the field, or is not a safe unsigned integer', () => {
    const bytes = Buffer.alloc(16);
    expect(() => writeUint(bytes, f.a, 256)).toThrow('assertion failed: field value 256 does not fit 1 bytes');
    expect(() => writeUint(bytes, f.b, 0x10000)).toThrow('assertion failed: field value 65536 does not fit 2 bytes');
    expect(() => writeUint(bytes, f.c, 2 ** 32)).toThrow('assertion failed: field value 4294967296 does not fit 4 bytes');
    expect(() => writeUint(bytes, f.d, 2 ** 53)).toThrow('assertion failed');
    expect(() => writeUint(bytes, f.c, -1)).toThrow('assertion failed');
    expect(() => writeUint(bytes, f.c, 1.5)).toThrow('assertion failed');
    expect(() => writeUint(bytes, f.reserved, Number.NaN)).toThrow('assertion failed');
  });
});

describe('field access by kind', () => {
  const map = declareFields('kinds', 16, { magic: [0, 4, 'bytes'], count: [4, 4, 'u32'], reserved: [8, 8, 'reserved'] });
  const f = map.field;

  it('reads and writes bytes only through a bytes field, and integers only through an integer field', () => {
    const bytes = Buffer.alloc(16);
    expect(() => writeUint(bytes, f.magic, 1)).toThrow('assertion failed: a bytes field of 4 bytes is not an integer');
    expect(() => readUint(bytes, f.reserved)).toThrow('assertion failed: a reserved field of 8 bytes is not an integer');
    expect(() => writeBytes(bytes, f.count, Buffer.from('abcd'))).toThrow('assertion failed: a u32 field is not written as bytes');
    expect(() => readBytes(bytes, f.reserved)).toThrow('assertion failed: a reserved field is not read as bytes');
    writeBytes(bytes, f.magic, Buffer.from('abcd'));
    expect(readBytes(bytes, f.magic).toString('ascii')).toBe('abcd');
  });

  it('finds entries only in a table field', () => {
    expect(() => entryOffsetBytes(f.reserved, map, 0)).toThrow('assertion failed: kinds: the field holding the entries is a table');
  });
});

describe('checksums', () => {
  const map = declareFields('record', 16, { body: [0, 8, 'u64'], crc: [8, 4, 'u32'], tail: [12, 4, 'u32'] });

  it('a checksum field counted as zero equals the CRC of a copy with the field zeroed, wherever the covered bytes end', () => {
    const stored = Buffer.from('0123456789abcdefXYZW', 'ascii');
    const zero = Buffer.from(stored);
    zero.fill(0, 8, 12); // as an encoder has it, before the checksum is written
    for (const bytes of [stored, zero]) {
      for (const end of [12, 16, 20]) {
        const copy = Buffer.from(bytes.subarray(0, end));
        copy.fill(0, 8, 12);
        expect(crcWithFieldZeroed(bytes, map.field.crc, end)).toBe(crc32c(copy));
      }
    }
  });

  it('names both values when they differ', () => {
    const bytes = Buffer.alloc(16);
    bytes.writeUInt32LE(0x12345678, 8);
    expect(checksumProblem(bytes, map.field.crc, 0x12345678)).toBeUndefined();
    expect(checksumProblem(bytes, map.field.crc, 0xabc)).toBe('bad checksum: stored 0x12345678, computed 0x00000abc');
  });
});
