// Proves: encodeBadBlocks then decodeBadBlocks returns an equal value for seeded random lists and for every field at its extremes, up to a full region.
import { describe, expect, it } from 'vitest';
import { badBlockCapacity, decodeBadBlocks, encodeBadBlocks, type BadBlockList, type BadBlockRange } from '../../src/format/bad-blocks.js';
import { Rng } from '../../src/rng.js';

const SEED = Number(process.env.JRAID_FUZZ_SEED ?? 0xbb71);
const LISTS = 300;
const REGION_BYTES = 64 * 1024;
/** Array blocks below 2^53 bytes. */
const BLOCKS_MAX = 2 ** 53 / 4096;

/** Ascending, disjoint, non-empty ranges, as the engine keeps them. */
function randomRanges(rng: Rng, count: number): BadBlockRange[] {
  const ranges: BadBlockRange[] = [];
  let next = rng.int(1000);
  for (let i = 0; i < count; i++) {
    const blockCount = 1 + (rng.next() < 0.1 ? rng.int(2 ** 32 - 1) : rng.int(64));
    const firstBlock = next + rng.int(rng.next() < 0.1 ? 2 ** 30 : 100);
    if (firstBlock + blockCount > BLOCKS_MAX) break;
    ranges.push({ firstBlock, blockCount, reason: rng.pick(['torn', 'lost'] as const) });
    next = firstBlock + blockCount;
  }
  return ranges;
}

function expectRoundTrip(list: BadBlockList): void {
  const bytes = encodeBadBlocks(list);
  expect(bytes.length).toBe(64 + 16 * list.ranges.length);
  const decoded = decodeBadBlocks(bytes);
  expect(decoded).toEqual({ ok: true, value: list });
  if (decoded.ok) expect(encodeBadBlocks(decoded.value).equals(bytes)).toBe(true);
  // As the engine reads it back: the whole region, the list at its start.
  const region = Buffer.alloc(REGION_BYTES);
  bytes.copy(region);
  expect(decodeBadBlocks(region)).toEqual({ ok: true, value: list });
}

describe('bad-block list round trip', () => {
  it(`${LISTS} seeded random lists (seed ${SEED})`, () => {
    const rng = new Rng(SEED);
    for (let i = 0; i < LISTS; i++) {
      expectRoundTrip({ arrayUuid: rng.bytes(16), sequence: rng.int(2 ** 32), ranges: randomRanges(rng, rng.int(60)) });
    }
  });

  it('an empty list', () => {
    expectRoundTrip({ arrayUuid: Buffer.alloc(16, 1), sequence: 0, ranges: [] });
  });

  it(`a full region: ${badBlockCapacity(REGION_BYTES)} ranges`, () => {
    const rng = new Rng(SEED + 1);
    const ranges = randomRanges(rng, badBlockCapacity(REGION_BYTES));
    expect(ranges.length).toBe(4092);
    expectRoundTrip({ arrayUuid: Buffer.alloc(16, 2), sequence: 3, ranges });
  });

  it('sequence 2^53 - 1, a range of 2^32 - 1 blocks, and a range ending exactly at 2^53 bytes', () => {
    expectRoundTrip({
      arrayUuid: Buffer.alloc(16, 0xff), sequence: Number.MAX_SAFE_INTEGER,
      ranges: [
        { firstBlock: 0, blockCount: 0xffffffff, reason: 'torn' },
        { firstBlock: BLOCKS_MAX - 1, blockCount: 1, reason: 'lost' },
      ],
    });
  });

  it('adjacent ranges (of different reasons, as the engine keeps them) stay apart', () => {
    expectRoundTrip({
      arrayUuid: Buffer.alloc(16, 3), sequence: 2,
      ranges: [{ firstBlock: 10, blockCount: 2, reason: 'torn' }, { firstBlock: 12, blockCount: 3, reason: 'lost' }],
    });
  });
});
