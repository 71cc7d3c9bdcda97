// Proves: a kernel output that is also one of its inputs (the same bytes) or overlaps one in part gives the result of reading every input first, in the arena and in ordinary Buffers; outputs that overlap each other are refused.
import { afterEach, describe, expect, it } from 'vitest';
import { defaultArena } from '../../src/memory/arena.js';
import { computeP, computePQ, gfMulXorInto, recoverDataPair, xorInto } from '../../src/parity/parity.js';
import * as reference from '../../src/parity/reference.js';
import { Rng } from '../../src/rng.js';
import { KIB } from '../../src/units.js';

const lent: Buffer[] = [];
afterEach(() => { for (const buffer of lent.splice(0)) defaultArena().pool.release(buffer); });

/** One backing buffer of `lengthBytes`, in the arena or not, holding random bytes. */
function backing(inArena: boolean, lengthBytes: number, rng: Rng): Buffer {
  const buffer = inArena ? defaultArena().pool.acquire(lengthBytes) : Buffer.alloc(lengthBytes);
  if (inArena) lent.push(buffer);
  buffer.set(rng.bytes(lengthBytes));
  return buffer;
}

describe('outputs that are inputs', () => {
  for (const inArena of [true, false]) {
    const where = inArena ? 'arena' : 'Buffer';
    it(`${where}: P into its own first block, x ^= x, x ^= c*x`, () => {
      const rng = new Rng(inArena ? 1 : 2);
      const lengthBytes = 40 * KIB + 64 + 3; // three kernel blocks and a tail
      const data = Array.from({ length: 6 }, () => backing(inArena, lengthBytes, rng));
      const copies = data.map((block) => Buffer.from(block));
      const wantP = reference.computeP(copies);
      computeP(data, data[0]);
      expect(data[0]!.equals(wantP)).toBe(true);

      xorInto(data[1]!, data[1]!);
      expect(data[1]!.equals(Buffer.alloc(lengthBytes))).toBe(true);

      const want = Buffer.from(data[2]!);
      reference.gfMulXorInto(want, Buffer.from(data[2]!), 0x53);
      gfMulXorInto(data[2]!, data[2]!, 0x53);
      expect(data[2]!.equals(want)).toBe(true);
    });

    it(`${where}: P and Q into two of their own data blocks (k = 9, across groups of four)`, () => {
      const rng = new Rng(inArena ? 3 : 4);
      const lengthBytes = 33 * KIB;
      const data = Array.from({ length: 9 }, () => backing(inArena, lengthBytes, rng));
      const copies = data.map((block) => Buffer.from(block));
      computePQ(data, data[8]!, data[0]!);
      expect(data[8]!.equals(reference.computeP(copies)), 'P').toBe(true);
      expect(data[0]!.equals(reference.computeQ(copies)), 'Q').toBe(true);
    });

    it(`${where}: an output overlapping an input in part`, () => {
      const rng = new Rng(inArena ? 5 : 6);
      const lengthBytes = 20 * KIB + 17;
      const whole = backing(inArena, 2 * lengthBytes, rng);
      const src = whole.subarray(0, lengthBytes);
      for (const shift of [1, 64, 4096, lengthBytes - 1]) {
        const dst = whole.subarray(shift, shift + lengthBytes);
        const want = Buffer.from(dst);
        reference.xorInto(want, Buffer.from(src));
        xorInto(dst, src);
        expect(dst.equals(want), `xor, output ${shift} bytes after the input`).toBe(true);
      }
    });
  }

  it('refuses outputs that overlap each other', () => {
    const rng = new Rng(7);
    const lengthBytes = 4 * KIB;
    const data = Array.from({ length: 4 }, () => backing(true, lengthBytes, rng));
    const out = backing(true, 2 * lengthBytes, rng);
    expect(() => computePQ(data, out.subarray(0, lengthBytes), out.subarray(64, 64 + lengthBytes))).toThrow(/do not overlap/);
    const p = computeP(data);
    expect(() => recoverDataPair([null, null, data[2]!, data[3]!], p, p, 0, 1, out.subarray(0, lengthBytes), out.subarray(0, lengthBytes))).toThrow(/do not overlap/);
  });
});
