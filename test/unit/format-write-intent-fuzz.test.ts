// Proves: decodeWriteIntentHeader never throws on mutated input, catches unfixed damage, and whatever it accepts re-encodes to the same value and the same meaningful bytes.
import { describe, expect, it } from 'vitest';
import { crc32c } from '../../src/format/crc32c.js';
import { decodeWriteIntentHeader, encodeWriteIntentHeader, type WriteIntentHeader } from '../../src/format/write-intent.js';
import { fuzzSettings, runCodecFuzz, type CodecFuzzTarget } from '../helpers/codec-fuzz.js';

// Override to replay or explore: JRAID_FUZZ_SEED=1234 JRAID_FUZZ_ITERATIONS=200000 npx vitest run test/unit/format-write-intent-fuzz.test.ts
const SETTINGS = fuzzSettings(0x3115eed, 5_000);

// Offsets from docs/FORMAT.md ("Write-intent region"), written out so the test does not borrow the codec's table.
const HEADER_BYTES = 4096;
const CRC_AT = 4092;

const HEADERS: WriteIntentHeader[] = [
  { arrayUuid: Buffer.alloc(16, 0x61), startEvents: 0, chunkBytes: 1024 * 1024 },
  { arrayUuid: Buffer.alloc(16, 0x62), startEvents: 41, chunkBytes: 4096 },
  { arrayUuid: Buffer.alloc(16, 0x63), startEvents: 2 ** 53 - 1, chunkBytes: 2 ** 52 },
];

/** The header alone (as the engine reads it), and followed by some set bitmap bytes. */
const BASES = HEADERS.flatMap((header) => {
  const bytes = encodeWriteIntentHeader(header);
  return [bytes, Buffer.concat([bytes, Buffer.alloc(512, 0xa5)])];
});

const TARGET: CodecFuzzTarget<WriteIntentHeader> = {
  bases: BASES,
  fieldsOf: () => [{ at: 24, width: 8 }, { at: 32, width: 8 }],
  decode: decodeWriteIntentHeader,
  encode: encodeWriteIntentHeader,
  fixChecksum: (bytes) => {
    if (bytes.length >= HEADER_BYTES) bytes.writeUInt32LE(crc32c(bytes.subarray(0, CRC_AT)), CRC_AT);
  },
  checkedBytes: () => HEADER_BYTES,
  // Magic, array uuid, start events and chunk; the rest of the header is reserved, then the CRC.
  meaningfulRanges: () => [[0, 40]],
};

describe(`write-intent header decoder fuzz (seed ${SETTINGS.seed}, ${SETTINGS.iterations} iterations)`, () => {
  it('never throws; accepted input re-encodes to an equal value and the same meaningful bytes; unfixed damage is always caught', () => {
    const outcome = runCodecFuzz('write-intent header', TARGET, SETTINGS);
    expect(outcome.accepted).toBeGreaterThan(SETTINGS.iterations / 10);
    expect(outcome.rejected).toBeGreaterThan(SETTINGS.iterations / 3);
    const reasons = [...outcome.reasons.keys()];
    for (const expected of [/^bad checksum/, /^bad magic/, /^truncated/, /not a power of two/, /start events exceed N\^N/, /chunk exceeds N\^N/]) {
      expect(reasons.some((reason) => expected.test(reason)), `no rejection matched ${expected} in ${reasons.join('; ')}`).toBe(true);
    }
  });
});
