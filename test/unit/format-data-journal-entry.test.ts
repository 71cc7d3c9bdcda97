// Proves the data-journal entry codec: every step and side round-trips with numbers up to 2^53,
// a block without the magic is "no entry", and a flipped bit or an unknown step or side is
// rejected with a reason, never thrown.
import { describe, expect, it } from 'vitest';
import { DATA_JOURNAL_STEPS, decodeDataJournalEntry, encodeDataJournalEntry, type DataJournalEntry } from '../../src/format/data-journal-entry.js';

const BASE: DataJournalEntry = {
  arrayUuid: Buffer.alloc(16, 0x5a), appliedBelow: 2 ** 53 - 1, step: 'issued', side: 'data', seq: 2 ** 40 + 3, stripe: 2 ** 33,
  dataIndex: 62, rowFirst: 16368, rowCount: 16, payloadBlock: 2 ** 52 + 1, payloadCrc: 0xdeadbeef, epoch: 77,
};

describe('data-journal entry codec', () => {
  for (const { name: step } of DATA_JOURNAL_STEPS) {
    for (const side of ['data', 'p', 'q'] as const) {
      it(`${step} from the ${side} side round-trips`, () => {
        const entry = { ...BASE, step, side };
        const bytes = encodeDataJournalEntry(entry);
        expect(bytes.length).toBe(4096);
        expect(decodeDataJournalEntry(bytes)).toEqual({ ok: true, value: entry });
      });
    }
  }

  it('a block without the magic is no entry; damage is a reason', () => {
    expect(decodeDataJournalEntry(Buffer.alloc(4096))).toBeUndefined();
    const bytes = encodeDataJournalEntry(BASE);
    for (const at of [8, 30, 48, 100, 4000, 4095]) {
      const damaged = Buffer.from(bytes);
      damaged[at]! ^= 0x10;
      const decoded = decodeDataJournalEntry(damaged);
      expect(decoded && !decoded.ok && decoded.reason).toMatch(/bad checksum/);
    }
    expect(decodeDataJournalEntry(bytes.subarray(0, 100))).toMatchObject({ ok: false, reason: expect.stringMatching(/truncated/) });
  });
});
