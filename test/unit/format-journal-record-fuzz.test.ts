// Proves: decodeJournalRecord never throws on mutated input, catches unfixed damage, and whatever it accepts re-encodes to the same value and the same meaningful bytes.
import { describe, expect, it } from 'vitest';
import { crc32c } from '../../src/format/crc32c.js';
import { decodeJournalRecord, encodeJournalRecord, type JournalRecord, type StripeEntry } from '../../src/format/journal-record.js';
import { Rng } from '../../src/rng.js';
import { fuzzSettings, rangesExcept, runCodecFuzz, type CodecFuzzTarget, type FuzzField } from '../helpers/codec-fuzz.js';

// Override to replay or explore: JRAID_FUZZ_SEED=1234 JRAID_FUZZ_ITERATIONS=200000 npx vitest run test/unit/format-journal-record-fuzz.test.ts
const SETTINGS = fuzzSettings(0x10c5eed, 5_000);

// Offsets from docs/FORMAT.md ("Record"), written out so the test does not borrow the codec's tables.
const HEADER_BYTES = 64;
const CRC_AT = 60;
const PAYLOAD_AT = 40;
const ENTRY_COUNT_AT = 36;
const UNIT_BYTES = 16; // a stripe entry and a block check are both 16 bytes

function entry(stripe: number, checkCount: number): StripeEntry {
  return {
    volumeId: 1,
    stripe,
    checks: Array.from({ length: checkCount }, (_, index) => ({
      blockIndex: index * 3, kind: index % 2 === 0 ? 'old' as const : 'first-sector' as const,
      newCrc: (0x9e3779b1 * (stripe + index + 1)) >>> 0, checkCrc: (0x85ebca6b * (stripe + index + 7)) >>> 0,
    })),
  };
}

const RECORDS: JournalRecord[] = [
  { arrayUuid: Buffer.alloc(16, 0x11), generation: 1, clean: true, entries: [] },
  { arrayUuid: Buffer.alloc(16, 0x22), generation: 77, clean: false, entries: [entry(0, 0), entry(5, 0), entry(2 ** 40, 0)] },
  { arrayUuid: Buffer.alloc(16, 0x33), generation: 2 ** 52, clean: false, entries: [entry(3, 2), entry(9, 0), entry(12, 5)] },
  { arrayUuid: Buffer.alloc(16, 0x44), generation: 1234, clean: false, entries: Array.from({ length: 12 }, (_, index) => entry(index * 17, index % 4)) },
];

/** As the journal store reads a record: padded to its 4 KiB block, or exactly its bytes. */
const BASES = RECORDS.flatMap((record) => {
  const bytes = encodeJournalRecord(record);
  const padded = Buffer.alloc(4096);
  bytes.copy(padded);
  return [bytes, padded];
});

const recordSize = (bytes: Buffer) => HEADER_BYTES + bytes.readUInt32LE(PAYLOAD_AT);

/** Walks the entries of a well-formed record: each entry's offset and check count. */
function walk(bytes: Buffer): { at: number; checkCount: number }[] {
  const entries: { at: number; checkCount: number }[] = [];
  let at = HEADER_BYTES;
  const size = recordSize(bytes);
  for (let index = 0; index < bytes.readUInt32LE(ENTRY_COUNT_AT) && at + UNIT_BYTES <= size; index++) {
    const checkCount = bytes.readUInt16LE(at + 12);
    entries.push({ at, checkCount });
    at += UNIT_BYTES * (1 + checkCount);
  }
  return entries;
}

function fieldsOf(base: Buffer): FuzzField[] {
  const fields: FuzzField[] = [{ at: 24, width: 8 }, { at: 32, width: 4 }, { at: ENTRY_COUNT_AT, width: 4 }, { at: PAYLOAD_AT, width: 4 }];
  for (const { at, checkCount } of walk(base)) {
    fields.push({ at, width: 4 }, { at: at + 4, width: 8 }, { at: at + 12, width: 2 });
    for (let c = 1; c <= checkCount; c++) {
      const checkAt = at + c * UNIT_BYTES;
      fields.push({ at: checkAt, width: 4 }, { at: checkAt + 4, width: 1 }, { at: checkAt + 8, width: 4 }, { at: checkAt + 12, width: 4 });
    }
  }
  return fields;
}

function fixChecksum(bytes: Buffer): void {
  if (bytes.length < HEADER_BYTES) return;
  const size = recordSize(bytes);
  if (size > bytes.length) return;
  const body = Buffer.from(bytes.subarray(0, size));
  body.writeUInt32LE(0, CRC_AT);
  bytes.writeUInt32LE(crc32c(body), CRC_AT);
}

function meaningfulRanges(bytes: Buffer): [number, number][] {
  const holes: [number, number][] = [[44, 64]]; // reserved, then the CRC
  for (const { at, checkCount } of walk(bytes)) {
    holes.push([at + 14, at + 16]);
    for (let c = 1; c <= checkCount; c++) holes.push([at + c * UNIT_BYTES + 5, at + c * UNIT_BYTES + 8]);
  }
  return rangesExcept(recordSize(bytes), holes);
}

/** Inserts or deletes one 16-byte unit in the payload and moves the counts to match (or not). */
function splice(rng: Rng, bytes: Buffer): Buffer {
  if (bytes.length < HEADER_BYTES) return bytes;
  const size = Math.min(recordSize(bytes), bytes.length);
  const units = Math.floor((size - HEADER_BYTES) / UNIT_BYTES);
  const at = HEADER_BYTES + UNIT_BYTES * rng.int(units + 1);
  const growing = units === 0 || rng.next() < 0.5;
  let unit = rng.bytes(UNIT_BYTES);
  if (units > 0 && rng.next() < 0.7) {
    const from = HEADER_BYTES + UNIT_BYTES * rng.int(units);
    unit = Buffer.from(bytes.subarray(from, from + UNIT_BYTES));
  }
  const out = growing
    ? Buffer.concat([bytes.subarray(0, at), unit, bytes.subarray(at)])
    : Buffer.concat([bytes.subarray(0, at), bytes.subarray(Math.min(at + UNIT_BYTES, bytes.length))]);
  const delta = growing ? UNIT_BYTES : -UNIT_BYTES;
  out.writeUInt32LE((out.readUInt32LE(PAYLOAD_AT) + delta) >>> 0, PAYLOAD_AT);
  if (rng.next() < 0.5) out.writeUInt32LE((out.readUInt32LE(ENTRY_COUNT_AT) + Math.sign(delta)) >>> 0, ENTRY_COUNT_AT);
  return out;
}

const TARGET: CodecFuzzTarget<JournalRecord> = {
  bases: BASES,
  fieldsOf,
  decode: decodeJournalRecord,
  encode: encodeJournalRecord,
  fixChecksum,
  checkedBytes: recordSize,
  meaningfulRanges,
  extraMutations: [splice],
};

describe(`journal record decoder fuzz (seed ${SETTINGS.seed}, ${SETTINGS.iterations} iterations)`, () => {
  it('never throws; accepted input re-encodes to an equal value and the same meaningful bytes; unfixed damage is always caught', () => {
    const outcome = runCodecFuzz('journal record', TARGET, SETTINGS);
    expect(outcome.accepted).toBeGreaterThan(SETTINGS.iterations / 10);
    expect(outcome.rejected).toBeGreaterThan(SETTINGS.iterations / 3);
    // The mutations reach the structural checks behind the checksum, not just the checksum.
    const reasons = [...outcome.reasons.keys()];
    for (const expected of [/^bad checksum/, /^bad magic/, /^truncated/, /overrun/, /unknown kind/, /unknown record flags/, /exceeds N\^N/, /^the entries fill/]) {
      expect(reasons.some((reason) => expected.test(reason)), `no rejection matched ${expected} in ${reasons.join('; ')}`).toBe(true);
    }
  });
});
