// Proves: decodeSuperblock never throws on mutated input, catches unfixed damage, and whatever it accepts re-encodes to the same value and the same meaningful bytes.
import { describe, expect, it } from 'vitest';
import { crc32c } from '../../src/format/crc32c.js';
import { buildMemberLayout, findRegion } from '../../src/format/layout.js';
import { decodeSuperblock, encodeSuperblock, NAME_SIZE_BYTES, type MemberEntry, type Superblock } from '../../src/format/superblock.js';
import { parityCount, type LayoutName, type Level } from '../../src/format/types.js';
import { Rng } from '../../src/rng.js';
import { KIB, MIB, alignDown } from '../../src/units.js';
import { fuzzSettings, rangesExcept, runCodecFuzz, type CodecFuzzTarget, type FuzzField } from '../helpers/codec-fuzz.js';

// Override to replay or explore: JRAID_FUZZ_SEED=1234 JRAID_FUZZ_ITERATIONS=200000 npx vitest run test/unit/format-superblock-fuzz.test.ts
const SETTINGS = fuzzSettings(0x5eed, 20_000);
const CRC_AT = 4092;

function makeSuperblock(level: Level, layout: LayoutName, raidDevices: number, spares: number): Superblock {
  const memberSizeBytes = 64 * MIB + 12 * KIB;
  const chunkSizeBytes = 64 * KIB;
  const regions = buildMemberLayout(memberSizeBytes, MIB); // the journal policy's data journal
  const dataSizeBytes = alignDown(findRegion(regions, 'data')!.sizeBytes, chunkSizeBytes);
  const members: MemberEntry[] = Array.from({ length: raidDevices + spares }, (_, index) => ({
    uuid: Buffer.alloc(16, index + 1),
    role: index < raidDevices ? index : null,
    state: index < raidDevices ? 'active' : 'spare',
    recoveryOffsetBytes: 0,
    partialRebuild: false,
    readErrorsCorrected: index,
  }));
  members[1] = { ...members[1]!, state: 'rebuilding', recoveryOffsetBytes: 5 * chunkSizeBytes, partialRebuild: true };
  return {
    versionMajor: 1, versionMinor: 0, arrayUuid: Buffer.alloc(16, 0xab), memberUuid: members[0]!.uuid, name: 'fuzz',
    createdAtMs: 1_700_000_000_000, updatedAtMs: 1_700_000_555_000, events: 99,
    level, layout, policy: 'journal', raidDevices, chunkSizeBytes, flags: 0, memberSizeBytes, dataSizeBytes,
    arraySizeBytes: dataSizeBytes * (raidDevices - parityCount(level)), writeIntentChunkBytes: MIB,
    resyncOffsetBytes: dataSizeBytes / 2, scrubOffsetBytes: 0, thisIndex: 0, regions, members,
  };
}

const BASES = [
  makeSuperblock(5, 'left-symmetric', 4, 1),
  makeSuperblock(4, 'parity-last', 3, 0),
  makeSuperblock(6, 'right-asymmetric', 64, 0),
].map(encodeSuperblock);

// Where the documented fields live (docs/FORMAT.md): mutations aimed here reach the validation
// rules far more often than bytes thrown at the mostly reserved 4 KiB.
const FIELDS: FuzzField[] = [
  { at: 8, width: 2 }, { at: 10, width: 2 }, { at: 12, width: 4 }, { at: 80, width: 8 }, { at: 88, width: 8 },
  { at: 96, width: 8 }, { at: 104, width: 1 }, { at: 105, width: 1 }, { at: 106, width: 1 }, { at: 108, width: 2 },
  { at: 110, width: 2 }, { at: 112, width: 4 }, { at: 116, width: 4 }, { at: 120, width: 8 }, { at: 128, width: 8 },
  { at: 136, width: 8 }, { at: 144, width: 8 }, { at: 152, width: 8 }, { at: 160, width: 8 }, { at: 168, width: 2 },
  { at: 170, width: 2 },
  ...Array.from({ length: 6 }, (_, index) => [
    { at: 176 + index * 24, width: 2 as const }, { at: 184 + index * 24, width: 8 as const }, { at: 192 + index * 24, width: 8 as const },
  ]).flat(),
  ...Array.from({ length: 5 }, (_, index) => [
    { at: 576 + index * 40, width: 2 as const }, { at: 578 + index * 40, width: 1 as const }, { at: 579 + index * 40, width: 1 as const },
    { at: 584 + index * 40, width: 8 as const }, { at: 592 + index * 40, width: 4 as const },
  ]).flat(),
];
const NAMES = ['', 'a', 'é'.repeat(16), 'x'.repeat(32), '配列-03', 'a\u0000b'];

/** The name field: usually valid UTF-8, sometimes 32 arbitrary bytes. */
function mutateName(rng: Rng, bytes: Buffer): Buffer {
  const name = rng.next() < 0.2 ? rng.bytes(NAME_SIZE_BYTES) : Buffer.from(rng.pick(NAMES), 'utf8');
  if (bytes.length >= 48 + NAME_SIZE_BYTES) {
    bytes.fill(0, 48, 48 + NAME_SIZE_BYTES);
    name.copy(bytes, 48);
  }
  return bytes;
}

function fixCrc(bytes: Buffer): void {
  if (bytes.length >= CRC_AT + 4) bytes.writeUInt32LE(crc32c(bytes.subarray(0, CRC_AT)), CRC_AT);
}

/** Everything but the reserved bytes, the unused table entries, the name after its NUL and the CRC. */
function meaningfulRanges(bytes: Buffer): [number, number][] {
  const regionCount = bytes.readUInt16LE(170);
  const memberCount = bytes.readUInt16LE(110);
  const nameEnd = bytes.subarray(48, 80).indexOf(0);
  const holes: [number, number][] = [[107, 108], [172, 176], [176 + regionCount * 24, 560], [560 + memberCount * 40, 4096]];
  if (nameEnd !== -1) holes.push([48 + nameEnd + 1, 80]);
  for (let index = 0; index < regionCount; index++) holes.push([176 + index * 24 + 2, 176 + index * 24 + 8]);
  for (let index = 0; index < memberCount; index++) {
    holes.push([560 + index * 40 + 20, 560 + index * 40 + 24], [560 + index * 40 + 36, 560 + index * 40 + 40]);
  }
  return rangesExcept(4096, holes);
}

const TARGET: CodecFuzzTarget<Superblock> = {
  bases: BASES,
  fieldsOf: () => FIELDS,
  decode: decodeSuperblock,
  encode: encodeSuperblock,
  fixChecksum: fixCrc,
  checkedBytes: () => 4096,
  meaningfulRanges,
  extraMutations: [mutateName],
};

describe(`superblock decoder fuzz (seed ${SETTINGS.seed}, ${SETTINGS.iterations} iterations)`, () => {
  it('never throws; accepted input re-encodes to an equal value and the same meaningful bytes; unfixed damage is always caught', () => {
    const outcome = runCodecFuzz('superblock', TARGET, SETTINGS);
    // The mutations must exercise both sides of the decoder, or the test proves little.
    expect(outcome.accepted).toBeGreaterThan(SETTINGS.iterations / 10);
    expect(outcome.rejected).toBeGreaterThan(SETTINGS.iterations / 2);
  });
});

describe('decoder gaps found by the fuzz, now closed', () => {
  const base = BASES[0]!;
  function patched(edit: (bytes: Buffer) => void): Buffer {
    const bytes = Buffer.from(base);
    edit(bytes);
    fixCrc(bytes);
    return bytes;
  }
  function expectRejectedOrReencodable(bytes: Buffer): void {
    const result = decodeSuperblock(bytes);
    if (!result.ok) return;
    expect(decodeSuperblock(encodeSuperblock(result.value))).toEqual({ ok: true, value: result.value });
  }

  const u64Fields = { createdAtMs: 80, updatedAtMs: 88, events: 96, writeIntentChunkBytes: 144 } as const;
  for (const [field, at] of Object.entries(u64Fields)) {
    it(`${field} past 2^53 is rejected`, () => {
      const bytes = patched((b) => { b.writeBigUInt64LE(2n ** 60n, at); });
      expect(decodeSuperblock(bytes)).toMatchObject({ ok: false, reason: expect.stringMatching(/exceeds 2\^53/) });
      expectRejectedOrReencodable(bytes);
    });
  }

  it('a name that is not UTF-8 is rejected', () => {
    const bytes = patched((b) => { b.fill(0xff, 48, 48 + NAME_SIZE_BYTES); });
    expect(decodeSuperblock(bytes)).toEqual({ ok: false, reason: 'array name is not valid UTF-8' });
  });
});
