// Proves: decodeSuperblock never throws on mutated input, and whatever it accepts re-encodes to bytes that decode to the same value.
import { isDeepStrictEqual } from 'node:util';
import { describe, expect, it } from 'vitest';
import { crc32c } from '../../src/format/crc32c.js';
import { buildMemberLayout, findRegion } from '../../src/format/layout.js';
import { decodeSuperblock, encodeSuperblock, NAME_SIZE_BYTES, type MemberEntry, type Superblock } from '../../src/format/superblock.js';
import { parityCount, type LayoutName, type Level } from '../../src/format/types.js';
import { Rng } from '../../src/rng.js';
import { KIB, MIB, alignDown } from '../../src/units.js';

const ITERATIONS = 20_000;
// Override to replay or explore: JRAID_FUZZ_SEED=1234 npx vitest run test/unit/format-superblock-fuzz.test.ts
const SEED = Number(process.env.JRAID_FUZZ_SEED ?? 0x5eed);
const CRC_AT = 4092;

function makeSuperblock(level: Level, layout: LayoutName, raidDevices: number, spares: number): Superblock {
  const memberSizeBytes = 64 * MIB + 12 * KIB;
  const chunkSizeBytes = 64 * KIB;
  const regions = buildMemberLayout(memberSizeBytes);
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
const FIELDS: { at: number; width: 1 | 2 | 4 | 8 }[] = [
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
const INTERESTING = [0n, 1n, 2n, 3n, 4n, 6n, 7n, 64n, 65n, 0xffn, 0xffffn, 4096n, 65536n, 2n ** 32n - 1n, 2n ** 53n - 1n, 2n ** 53n, 2n ** 64n - 1n];

function writeField(bytes: Buffer, at: number, width: 1 | 2 | 4 | 8, value: bigint): void {
  const masked = value & ((1n << BigInt(width * 8)) - 1n);
  for (let i = 0; i < width; i++) bytes[at + i] = Number((masked >> BigInt(8 * i)) & 0xffn);
}

function mutate(rng: Rng, original: Buffer): Buffer {
  let bytes = Buffer.from(original);
  const mutations = 1 + rng.int(6);
  for (let m = 0; m < mutations; m++) {
    switch (rng.int(7)) {
      case 0:
        bytes[rng.int(bytes.length)] = rng.int(256);
        break;
      case 1:
        bytes[rng.int(bytes.length)]! ^= 1 << rng.int(8);
        break;
      case 2:
        bytes[rng.int(Math.min(800, bytes.length))] = rng.int(256); // header and the front of both tables
        break;
      case 3: {
        const field = rng.pick(FIELDS);
        const value = rng.next() < 0.7 ? rng.pick(INTERESTING) : BigInt(rng.int(2 ** 32)) << BigInt(rng.int(33));
        if (field.at + field.width <= bytes.length) writeField(bytes, field.at, field.width, value);
        break;
      }
      case 4: {
        const at = rng.int(bytes.length);
        bytes.fill(rng.pick([0, 0xff]), at, Math.min(bytes.length, at + 1 + rng.int(64)));
        break;
      }
      case 5: {
        // The name field: usually valid UTF-8, sometimes 32 arbitrary bytes.
        const name = rng.next() < 0.2 ? rng.bytes(NAME_SIZE_BYTES) : Buffer.from(rng.pick(NAMES), 'utf8');
        if (bytes.length >= 48 + NAME_SIZE_BYTES) {
          bytes.fill(0, 48, 48 + NAME_SIZE_BYTES);
          name.copy(bytes, 48);
        }
        break;
      }
      default:
        if (rng.next() < 0.1) bytes = bytes.subarray(0, rng.int(bytes.length));
    }
  }
  return bytes;
}

/** Each iteration has its own generator, so one failing iteration replays alone; seeds far apart share none. */
function iterationSeed(iteration: number): number {
  return (Math.imul(SEED, 0x9e3779b1) + iteration) >>> 0;
}

function fixCrc(bytes: Buffer): void {
  if (bytes.length >= CRC_AT + 4) bytes.writeUInt32LE(crc32c(bytes.subarray(0, CRC_AT)), CRC_AT);
}

describe(`superblock decoder fuzz (seed ${SEED}, ${ITERATIONS} iterations)`, () => {
  it('never throws; accepted input re-encodes to an equal value; unfixed damage is always caught', () => {
    const outcomes = { accepted: 0, rejected: 0 };
    for (let iteration = 0; iteration < ITERATIONS; iteration++) {
      const rng = new Rng(iterationSeed(iteration));
      const original = rng.pick(BASES);
      const bytes = mutate(rng, original);
      const crcFixed = rng.next() < 0.5;
      if (crcFixed) fixCrc(bytes);
      const replay = `seed ${SEED} iteration ${iteration} (crc ${crcFixed ? 'fixed' : 'as mutated'})`;

      let result: ReturnType<typeof decodeSuperblock>;
      try {
        result = decodeSuperblock(bytes);
      } catch (error) {
        throw new Error(`decodeSuperblock threw at ${replay}: ${(error as Error).message}`);
      }
      if (!result.ok) {
        outcomes.rejected++;
        continue;
      }
      outcomes.accepted++;
      if (!crcFixed) {
        expect(bytes.subarray(0, 4096).equals(original), `damage passed the checksum at ${replay}`).toBe(true);
      }
      let reencoded: Buffer;
      try {
        reencoded = encodeSuperblock(result.value);
      } catch (error) {
        throw new Error(`accepted superblock does not re-encode at ${replay}: ${(error as Error).message}`);
      }
      const redecoded = decodeSuperblock(reencoded);
      // isDeepStrictEqual first: expect().toEqual on every accepted case would dominate the run time.
      if (!isDeepStrictEqual(redecoded, result)) {
        expect(redecoded, `re-decode at ${replay}`).toEqual(result);
      }
    }
    // The mutations must exercise both sides of the decoder, or the test proves little.
    expect(outcomes.accepted).toBeGreaterThan(ITERATIONS / 10);
    expect(outcomes.rejected).toBeGreaterThan(ITERATIONS / 2);
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
