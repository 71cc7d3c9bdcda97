// Proves: computeP/computeQ and the GF(2^8) tables agree with a plain byte-loop reference, aligned and unaligned.
import { describe, expect, it } from 'vitest';
import { Rng } from '../../src/rng.js';
import { computeP, computeQ } from '../../src/parity/parity.js';
import { gfInv, gfMul, gfPow2 } from '../../src/parity/gf256.js';

// Carry-less shift-and-add multiply, reduced by x^8+x^4+x^3+x^2+1 (0x11d): no tables to share a bug with.
function refMul(a: number, b: number): number {
  let product = 0;
  for (let bit = 0; bit < 8; bit++) {
    if (b & (1 << bit)) product ^= a;
    a <<= 1;
    if (a & 0x100) a ^= 0x11d;
  }
  return product;
}

function refPow2(power: number): number {
  let value = 1;
  for (let i = 0; i < power; i++) value = refMul(value, 2);
  return value;
}

function refP(data: readonly Uint8Array[]): Buffer {
  const p = Buffer.alloc(data[0]!.length);
  for (const block of data) for (let j = 0; j < p.length; j++) p[j]! ^= block[j]!;
  return p;
}

function refQ(data: readonly Uint8Array[]): Buffer {
  const q = Buffer.alloc(data[0]!.length);
  data.forEach((block, i) => {
    const coefficient = refPow2(i);
    for (let j = 0; j < q.length; j++) q[j]! ^= refMul(coefficient, block[j]!);
  });
  return q;
}

/** A view of `lengthBytes` bytes at an odd byteOffset, so only the byte-at-a-time path can run. */
function oddOffsetView(bytes: Buffer): Buffer {
  const backing = Buffer.alloc(bytes.length + 1);
  bytes.copy(backing, 1);
  return backing.subarray(1);
}

describe('GF(2^8) tables against shift-and-add', () => {
  it('gfMul matches for all 256x256 pairs', () => {
    const mismatches: string[] = [];
    for (let a = 0; a < 256; a++) {
      for (let b = 0; b < 256; b++) {
        if (gfMul(a, b) !== refMul(a, b)) mismatches.push(`${a}*${b}`);
      }
    }
    expect(mismatches).toEqual([]);
  });

  it('gfInv(a) * a == 1 for every non-zero a', () => {
    for (let a = 1; a < 256; a++) expect(refMul(gfInv(a), a), `a=${a}`).toBe(1);
    expect(() => gfInv(0)).toThrow();
  });

  it('gfPow2 is g^power, periodic in 255, with negative powers as inverses', () => {
    let value = 1;
    for (let power = 0; power < 600; power++) {
      expect(gfPow2(power), `power=${power}`).toBe(value);
      value = refMul(value, 2);
    }
    for (let power = 1; power < 600; power++) {
      expect(refMul(gfPow2(-power), gfPow2(power)), `power=-${power}`).toBe(1);
    }
  });
});

describe('computeP/computeQ against byte loops', () => {
  const lengthsBytes = [4096, 16, 1];
  for (let dataCount = 2; dataCount <= 16; dataCount++) {
    for (const lengthBytes of lengthsBytes) {
      for (const aligned of [true, false]) {
        it(`${dataCount} data blocks of ${lengthBytes} bytes, ${aligned ? 'aligned' : 'odd byteOffset'}`, () => {
          const rng = new Rng(dataCount * 10_000 + lengthBytes * 2 + (aligned ? 0 : 1));
          const place = (bytes: Buffer): Buffer => (aligned ? bytes : oddOffsetView(bytes));
          const data = Array.from({ length: dataCount }, () => place(rng.bytes(lengthBytes)));
          for (const block of data) expect(block.byteOffset % 4 === 0).toBe(aligned);
          const before = data.map((block) => Buffer.from(block));

          // The output buffer is placed like the inputs: Q's multiply-by-g runs in place on it.
          expect(computeP(data, place(Buffer.alloc(lengthBytes))).equals(refP(data))).toBe(true);
          expect(computeQ(data, place(Buffer.alloc(lengthBytes))).equals(refQ(data))).toBe(true);
          expect(computeP(data).equals(refP(data))).toBe(true);
          expect(computeQ(data).equals(refQ(data))).toBe(true);
          // Inputs are left untouched.
          data.forEach((block, i) => expect(block.equals(before[i]!)).toBe(true));
        });
      }
    }
  }

  it('mixes aligned and unaligned inputs in one row', () => {
    const rng = new Rng(7);
    const data = Array.from({ length: 6 }, (_, i) => (i % 2 ? oddOffsetView(rng.bytes(64)) : rng.bytes(64)));
    expect(computeP(data).equals(refP(data))).toBe(true);
    expect(computeQ(data).equals(refQ(data))).toBe(true);
  });
});
