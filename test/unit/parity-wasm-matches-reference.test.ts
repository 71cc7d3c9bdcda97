// Proves: P, Q, P+Q, dst ^= c*src and xorInto from the WebAssembly kernels equal the reference TypeScript kernels byte for byte (4 KiB..1 MiB, odd lengths and byteOffsets, arena and ordinary Buffer operands, k = 2..14, shuffled Q exponents).
import { afterEach, describe, expect, it } from 'vitest';
import { computeP, computePQ, computeQ, gfMulXorInto, xorInto } from '../../src/parity/parity.js';
import * as reference from '../../src/parity/reference.js';
import { Rng } from '../../src/rng.js';
import { KIB, MIB } from '../../src/units.js';
import { Operands, PLACEMENTS, shuffledExponents, type Placement } from '../helpers/parity-operands.js';
import { configureDefaultArena } from '../../src/memory/arena.js';

// k = 14 at 1 MiB holds 16 MiB of operands in the arena at once, the whole default pool
// (STRIPE_BUFFER_POOL_BYTES): this process's arena is larger.
configureDefaultArena({ poolBytes: 64 * MIB });

// Every multiple of 4 KiB the engine uses, the kernels' 64-byte step and 16 KiB block edges,
// and lengths that leave a tail.
const LENGTHS_BYTES = [1, 13, 63, 64, 65, 4 * KIB - 1, 4 * KIB, 4 * KIB + 1, 16 * KIB, 16 * KIB + 64 + 13, 48 * KIB, 64 * KIB, 256 * KIB + 4 * KIB];

const operands = new Operands();
afterEach(() => operands.releaseAll());

/** P, Q and P+Q of one row, from the kernels and from the reference, compared byte for byte. */
function checkRow(rng: Rng, dataCount: number, lengthBytes: number, placeOf: (i: number) => Placement): void {
  const original = Array.from({ length: dataCount }, () => rng.bytes(lengthBytes));
  const data = original.map((bytes, i) => operands.place(bytes, placeOf(i)));
  const exponents = shuffledExponents(dataCount, () => rng.next());
  const label = `k=${dataCount} ${lengthBytes} bytes, exponents ${exponents.join(',')}`;

  const p = operands.blank(lengthBytes, placeOf(dataCount));
  const q = operands.blank(lengthBytes, placeOf(dataCount + 1));
  const wantP = reference.computeP(original);
  const wantQ = reference.computeQ(original, undefined, exponents);
  expect(computeP(data, p).equals(wantP), `P ${label}`).toBe(true);
  expect(computeQ(data, q, exponents).equals(wantQ), `Q ${label}`).toBe(true);
  expect(computeQ(data).equals(reference.computeQ(original)), `Q identity order ${label}`).toBe(true);
  p.fill(0xa5);
  q.fill(0xa5);
  computePQ(data, p, q, exponents);
  expect(p.equals(wantP), `P of P+Q ${label}`).toBe(true);
  expect(q.equals(wantQ), `Q of P+Q ${label}`).toBe(true);
  data.forEach((block, i) => expect(block.equals(original[i]!), `input ${i} untouched, ${label}`).toBe(true));
}

describe('P, Q and P+Q against the reference', () => {
  for (let dataCount = 2; dataCount <= 14; dataCount++) {
    for (const placement of PLACEMENTS) {
      it(`k=${dataCount}, ${placement} operands, 4 KiB and 84 KiB + 17`, () => {
        const rng = new Rng(dataCount * 100 + PLACEMENTS.indexOf(placement));
        for (const lengthBytes of [4 * KIB, 84 * KIB + 17]) checkRow(rng, dataCount, lengthBytes, () => placement);
      });
    }
  }

  for (const dataCount of [2, 5, 8]) {
    for (const placement of PLACEMENTS) {
      it(`k=${dataCount}, ${placement} operands, every edge length`, () => {
        const rng = new Rng(7000 + dataCount * 10 + PLACEMENTS.indexOf(placement));
        for (const lengthBytes of LENGTHS_BYTES) checkRow(rng, dataCount, lengthBytes, () => placement);
      });
    }
  }

  for (const dataCount of [4, 14]) {
    for (const placement of ['arena', 'buffer-odd'] as const) {
      it(`k=${dataCount}, ${placement} operands, 1 MiB`, () => {
        checkRow(new Rng(9000 + dataCount), dataCount, 1 * MIB, () => placement);
      });
    }
  }

  it('operands of every placement mixed in one row, k = 2..14', () => {
    const rng = new Rng(31);
    for (let dataCount = 2; dataCount <= 14; dataCount++) {
      const placements = Array.from({ length: dataCount + 2 }, () => PLACEMENTS[rng.int(PLACEMENTS.length)]!);
      checkRow(rng, dataCount, 72 * KIB + 5, (i) => placements[i]!);
    }
  });

  it('more sources than RAID-6 allows for P: 40 blocks', () => {
    const rng = new Rng(40);
    const original = Array.from({ length: 40 }, () => rng.bytes(4 * KIB + 3));
    const data = original.map((bytes, i) => operands.place(bytes, i % 2 ? 'arena' : 'buffer'));
    expect(computeP(data).equals(reference.computeP(original))).toBe(true);
  });
});

describe('dst ^= c * src and xorInto against the reference', () => {
  for (const placement of PLACEMENTS) {
    it(`every constant c, ${placement} operands`, () => {
      const rng = new Rng(500 + PLACEMENTS.indexOf(placement));
      for (let c = 0; c < 256; c++) {
        const lengthBytes = c % 2 ? 4 * KIB : 4 * KIB + 64 + 33;
        const src = rng.bytes(lengthBytes);
        const dst = rng.bytes(lengthBytes);
        const want = Buffer.from(dst);
        reference.gfMulXorInto(want, src, c);
        const got = operands.place(dst, placement);
        gfMulXorInto(got, operands.place(src, placement), c);
        expect(got.equals(want), `c=${c}`).toBe(true);
      }
      operands.releaseAll();
    });

    it(`xorInto and gfMulXorInto at every edge length, ${placement} operands`, () => {
      const rng = new Rng(600 + PLACEMENTS.indexOf(placement));
      for (const lengthBytes of [...LENGTHS_BYTES, 1 * MIB]) {
        const src = rng.bytes(lengthBytes);
        const dst = rng.bytes(lengthBytes);
        const c = 2 + rng.int(254);
        const wantXor = Buffer.from(dst);
        reference.xorInto(wantXor, src);
        const wantMul = Buffer.from(dst);
        reference.gfMulXorInto(wantMul, src, c);
        const gotXor = operands.place(dst, placement);
        xorInto(gotXor, operands.place(src, placement));
        const gotMul = operands.place(dst, placement);
        gfMulXorInto(gotMul, operands.place(src, placement), c);
        expect(gotXor.equals(wantXor), `xor ${lengthBytes}`).toBe(true);
        expect(gotMul.equals(wantMul), `mul c=${c} ${lengthBytes}`).toBe(true);
        operands.releaseAll();
      }
    });
  }

  it('refuses operands of different lengths, as the reference does', () => {
    expect(() => xorInto(Buffer.alloc(64), Buffer.alloc(65))).toThrow(/equal length/);
    expect(() => gfMulXorInto(Buffer.alloc(64), Buffer.alloc(65), 3)).toThrow(/equal length/);
    expect(() => computeP([Buffer.alloc(64), Buffer.alloc(65)])).toThrow(/equal length/);
  });
});
