// Proves: decodeBadBlocks never throws on mutated input, catches unfixed damage, and whatever it accepts re-encodes to the same value and the same meaningful bytes.
import { describe, expect, it } from 'vitest';
import { decodeBadBlocks, encodeBadBlocks, type BadBlockList, type BadBlockRange } from '../../src/format/bad-blocks.js';
import { crc32c } from '../../src/format/crc32c.js';
import { Rng } from '../../src/rng.js';
import { fuzzSettings, rangesExcept, runCodecFuzz, type CodecFuzzTarget, type FuzzField } from '../helpers/codec-fuzz.js';

// Override to replay or explore: JRAID_FUZZ_SEED=1234 JRAID_FUZZ_ITERATIONS=200000 npx vitest run test/unit/format-bad-blocks-fuzz.test.ts
const SETTINGS = fuzzSettings(0xbb5eed, 5_000);

// Offsets from docs/FORMAT.md ("Bad-block region"), written out so the test does not borrow the codec's tables.
const HEADER_BYTES = 64;
const CRC_AT = 60;
const COUNT_AT = 32;
const RANGE_BYTES = 16;
const REGION_BYTES = 64 * 1024;

function ranges(count: number, stepBlocks: number): BadBlockRange[] {
  return Array.from({ length: count }, (_, index) => ({
    firstBlock: index * stepBlocks + (index % 3), blockCount: 1 + (index % 5), reason: index % 2 === 0 ? 'torn' as const : 'lost' as const,
  }));
}

const LISTS: BadBlockList[] = [
  { arrayUuid: Buffer.alloc(16, 0x51), sequence: 0, ranges: [] },
  { arrayUuid: Buffer.alloc(16, 0x52), sequence: 1, ranges: [{ firstBlock: 7, blockCount: 1, reason: 'torn' }] },
  { arrayUuid: Buffer.alloc(16, 0x53), sequence: 2 ** 40, ranges: ranges(20, 16) },
  { arrayUuid: Buffer.alloc(16, 0x54), sequence: 9, ranges: [{ firstBlock: 2 ** 41 - 8, blockCount: 8, reason: 'lost' }] },
];

/** As the engine reads a list: the whole 64 KiB region, or just the list's 4 KiB blocks. */
const BASES = LISTS.flatMap((list, index) => {
  const bytes = encodeBadBlocks(list);
  const padded = Buffer.alloc(index === 2 ? REGION_BYTES : 4096);
  bytes.copy(padded);
  return [bytes, padded];
});

const count = (bytes: Buffer) => bytes.readUInt32LE(COUNT_AT);
const listSize = (bytes: Buffer) => HEADER_BYTES + count(bytes) * RANGE_BYTES;

function fieldsOf(base: Buffer): FuzzField[] {
  const fields: FuzzField[] = [{ at: 24, width: 8 }, { at: COUNT_AT, width: 4 }];
  for (let index = 0; index < count(base); index++) {
    const at = HEADER_BYTES + index * RANGE_BYTES;
    fields.push({ at, width: 8 }, { at: at + 8, width: 4 }, { at: at + 12, width: 1 });
  }
  return fields;
}

function fixChecksum(bytes: Buffer): void {
  if (bytes.length < HEADER_BYTES || listSize(bytes) > bytes.length) return;
  const body = Buffer.from(bytes.subarray(0, listSize(bytes)));
  body.writeUInt32LE(0, CRC_AT);
  bytes.writeUInt32LE(crc32c(body), CRC_AT);
}

function meaningfulRanges(bytes: Buffer): [number, number][] {
  const holes: [number, number][] = [[36, 64]]; // reserved, then the CRC
  for (let index = 0; index < count(bytes); index++) holes.push([HEADER_BYTES + index * RANGE_BYTES + 13, HEADER_BYTES + (index + 1) * RANGE_BYTES]);
  return rangesExcept(listSize(bytes), holes);
}

/** Inserts, deletes or swaps ranges and moves the count to match (or not). */
function splice(rng: Rng, bytes: Buffer): Buffer {
  if (bytes.length < HEADER_BYTES) return bytes;
  const units = Math.floor((Math.min(listSize(bytes), bytes.length) - HEADER_BYTES) / RANGE_BYTES);
  const unitAt = (index: number) => HEADER_BYTES + index * RANGE_BYTES;
  const choice = rng.int(3);
  if (choice === 2 && units >= 2) {
    const [a, b] = [rng.int(units), rng.int(units)];
    const out = Buffer.from(bytes);
    bytes.copy(out, unitAt(a), unitAt(b), unitAt(b) + RANGE_BYTES);
    bytes.copy(out, unitAt(b), unitAt(a), unitAt(a) + RANGE_BYTES);
    return out;
  }
  const at = unitAt(rng.int(units + 1));
  const growing = units === 0 || choice === 0;
  const from = unitAt(rng.int(units));
  const unit = units > 0 && rng.next() < 0.7 ? Buffer.from(bytes.subarray(from, from + RANGE_BYTES)) : rng.bytes(RANGE_BYTES);
  const out = growing
    ? Buffer.concat([bytes.subarray(0, at), unit, bytes.subarray(at)])
    : Buffer.concat([bytes.subarray(0, at), bytes.subarray(Math.min(at + RANGE_BYTES, bytes.length))]);
  if (rng.next() < 0.8) out.writeUInt32LE((count(out) + (growing ? 1 : -1)) >>> 0, COUNT_AT);
  return out;
}

const TARGET: CodecFuzzTarget<BadBlockList> = {
  bases: BASES,
  fieldsOf,
  decode: decodeBadBlocks,
  encode: encodeBadBlocks,
  fixChecksum,
  checkedBytes: listSize,
  meaningfulRanges,
  extraMutations: [splice],
};

describe(`bad-block list decoder fuzz (seed ${SETTINGS.seed}, ${SETTINGS.iterations} iterations)`, () => {
  it('never throws; accepted input re-encodes to an equal value and the same meaningful bytes; unfixed damage is always caught', () => {
    const outcome = runCodecFuzz('bad-block list', TARGET, SETTINGS);
    expect(outcome.accepted).toBeGreaterThan(SETTINGS.iterations / 10);
    expect(outcome.rejected).toBeGreaterThan(SETTINGS.iterations / 3);
    const reasons = [...outcome.reasons.keys()];
    for (const expected of [/^bad checksum/, /^bad magic/, /^truncated/, /unknown reason/, /is empty/, /ends past/, /before range/, /exceeds N\^N/]) {
      expect(reasons.some((reason) => expected.test(reason)), `no rejection matched ${expected} in ${reasons.join('; ')}`).toBe(true);
    }
  });
});
