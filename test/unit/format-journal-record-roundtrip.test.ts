// Proves: encodeJournalRecord then decodeJournalRecord returns an equal value for seeded random records and for every field at its extremes.
import { describe, expect, it } from 'vitest';
import { decodeJournalRecord, encodeJournalRecord, recordSizeBytes, type BlockCheck, type JournalRecord } from '../../src/format/journal-record.js';
import { Rng } from '../../src/rng.js';

const SEED = Number(process.env.JRAID_FUZZ_SEED ?? 0x7271);
const RECORDS = 300;

function randomCheck(rng: Rng): BlockCheck {
  return { blockIndex: rng.int(2 ** 32), kind: rng.pick(['old', 'first-sector'] as const), newCrc: rng.int(2 ** 32), checkCrc: rng.int(2 ** 32) };
}

function randomRecord(rng: Rng): JournalRecord {
  const wide = rng.next() < 0.3;
  return {
    arrayUuid: rng.bytes(16),
    generation: wide ? rng.int(2 ** 21) * 2 ** 32 + rng.int(2 ** 32) : rng.int(1000),
    clean: rng.next() < 0.2,
    entries: Array.from({ length: rng.int(40) }, () => ({
      volumeId: rng.next() < 0.9 ? 1 : rng.int(2 ** 32),
      stripe: wide ? rng.int(2 ** 21) * 2 ** 32 + rng.int(2 ** 32) : rng.int(100_000),
      checks: Array.from({ length: rng.int(9) }, () => randomCheck(rng)),
    })),
  };
}

function expectRoundTrip(record: JournalRecord): void {
  const bytes = encodeJournalRecord(record);
  expect(bytes.length).toBe(recordSizeBytes(record.entries));
  const decoded = decodeJournalRecord(bytes);
  expect(decoded).toEqual({ ok: true, value: record });
  // And the encoding is stable: what was decoded encodes to the same bytes.
  if (decoded.ok) expect(encodeJournalRecord(decoded.value).equals(bytes)).toBe(true);
}

describe('journal record round trip', () => {
  it(`${RECORDS} seeded random records (seed ${SEED})`, () => {
    const rng = new Rng(SEED);
    for (let i = 0; i < RECORDS; i++) expectRoundTrip(randomRecord(rng));
  });

  it('a clean record with no entries, and a dirty one with no entries', () => {
    expectRoundTrip({ arrayUuid: Buffer.alloc(16, 1), generation: 0, clean: true, entries: [] });
    expectRoundTrip({ arrayUuid: Buffer.alloc(16, 2), generation: 1, clean: false, entries: [] });
  });

  it('generation and stripe numbers up to 2^53 - 1, ids and CRCs up to 2^32 - 1', () => {
    const top = Number.MAX_SAFE_INTEGER;
    const u32 = 0xffffffff;
    expectRoundTrip({
      arrayUuid: Buffer.alloc(16, 0xff), generation: top, clean: false,
      entries: [{ volumeId: u32, stripe: top, checks: [{ blockIndex: u32, kind: 'first-sector', newCrc: u32, checkCrc: u32 }] }],
    });
  });

  it('an entry with the most block checks a u16 count holds (65535)', () => {
    const rng = new Rng(SEED + 1);
    const checks = Array.from({ length: 0xffff }, () => randomCheck(rng));
    expectRoundTrip({ arrayUuid: Buffer.alloc(16, 3), generation: 9, clean: false, entries: [{ volumeId: 1, stripe: 4, checks }] });
  });

  it('the same stripe listed twice is kept as written', () => {
    const entry = { volumeId: 1, stripe: 12, checks: [] };
    expectRoundTrip({ arrayUuid: Buffer.alloc(16, 4), generation: 5, clean: false, entries: [entry, { ...entry }] });
  });
});
