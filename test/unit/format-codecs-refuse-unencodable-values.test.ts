// Proves: the journal record, bad-block list and write-intent encoders refuse, as a broken invariant, a value its decoder would call corrupt, so jraid never writes what it cannot read back.
import { describe, expect, it } from 'vitest';
import { encodeBadBlocks, type BadBlockList } from '../../src/format/bad-blocks.js';
import { encodeJournalRecord, type JournalRecord } from '../../src/format/journal-record.js';
import { encodeWriteIntentHeader } from '../../src/format/write-intent.js';

const UUID = Buffer.alloc(16, 0x77);

describe('journal record encoder', () => {
  const base: JournalRecord = { arrayUuid: UUID, generation: 3, clean: false, entries: [{ volumeId: 1, stripe: 2, checks: [] }] };

  it('encodes the base', () => {
    expect(encodeJournalRecord(base).length).toBe(80);
  });

  it('refuses a generation or stripe of 2^53 or more, and a uuid of the wrong size', () => {
    expect(() => encodeJournalRecord({ ...base, generation: 2 ** 53 })).toThrow('assertion failed');
    expect(() => encodeJournalRecord({ ...base, entries: [{ volumeId: 1, stripe: 2 ** 53, checks: [] }] })).toThrow('assertion failed');
    expect(() => encodeJournalRecord({ ...base, arrayUuid: Buffer.alloc(15) })).toThrow('assertion failed: array uuid size');
  });

  it('refuses more block checks than a u16 count holds', () => {
    const checks = Array.from({ length: 0x10000 }, () => ({ blockIndex: 0, kind: 'old' as const, newCrc: 0, checkCrc: 0 }));
    expect(() => encodeJournalRecord({ ...base, entries: [{ volumeId: 1, stripe: 2, checks }] })).toThrow('assertion failed: stripe 2 has 65536 block checks');
  });
});

describe('bad-block list encoder', () => {
  const base: BadBlockList = { arrayUuid: UUID, sequence: 1, ranges: [{ firstBlock: 4, blockCount: 2, reason: 'torn' }, { firstBlock: 8, blockCount: 1, reason: 'lost' }] };

  it('encodes the base', () => {
    expect(encodeBadBlocks(base).length).toBe(96);
  });

  it('refuses ranges out of order, overlapping or empty', () => {
    const message = 'assertion failed: bad-block ranges are ascending, disjoint and not empty';
    expect(() => encodeBadBlocks({ ...base, ranges: [...base.ranges].reverse() })).toThrow(message);
    expect(() => encodeBadBlocks({ ...base, ranges: [base.ranges[0]!, { firstBlock: 5, blockCount: 1, reason: 'lost' }] })).toThrow(message);
    expect(() => encodeBadBlocks({ ...base, ranges: [{ firstBlock: 4, blockCount: 0, reason: 'torn' }] })).toThrow(message);
  });

  it('refuses a range past 2^53 bytes of array, and a sequence of 2^53', () => {
    expect(() => encodeBadBlocks({ ...base, ranges: [{ firstBlock: 2 ** 41, blockCount: 1, reason: 'torn' }] })).toThrow('assertion failed: bad-block range inside 2^53 bytes');
    expect(() => encodeBadBlocks({ ...base, sequence: 2 ** 53 })).toThrow('assertion failed');
  });
});

describe('write-intent header encoder', () => {
  it('encodes a valid header', () => {
    expect(encodeWriteIntentHeader({ arrayUuid: UUID, startEvents: 1, chunkBytes: 4096 }).length).toBe(4096);
  });

  it('refuses start events of 2^53, a chunk that is not a power of two of at least 4 KiB, and a uuid of the wrong size', () => {
    expect(() => encodeWriteIntentHeader({ arrayUuid: UUID, startEvents: 2 ** 53, chunkBytes: 4096 })).toThrow('assertion failed');
    expect(() => encodeWriteIntentHeader({ arrayUuid: UUID, startEvents: 1, chunkBytes: 3 * 4096 })).toThrow('assertion failed: write-intent chunk 12288');
    expect(() => encodeWriteIntentHeader({ arrayUuid: UUID, startEvents: 1, chunkBytes: 2048 })).toThrow('assertion failed: write-intent chunk 2048');
    expect(() => encodeWriteIntentHeader({ arrayUuid: Buffer.alloc(15), startEvents: 1, chunkBytes: 4096 })).toThrow('assertion failed: array uuid size');
  });
});
