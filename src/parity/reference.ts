// The reference parity kernels in plain TypeScript: XOR (P), the RAID-6 syndrome
// Q = sum g^i * D_i, and reconstruction. Pure functions; the hot loops work on 32-bit words when
// the buffers allow it. src/parity/parity.ts serves the same API from WebAssembly SIMD kernels
// and is tested byte for byte against this file, which stays simple on purpose.

import { assert } from '../units.js';
import { gfInv, gfMulTable, gfPow2 } from './gf256.js';

function words(buf: Uint8Array): Int32Array | undefined {
  if (buf.byteOffset % 4 !== 0 || buf.byteLength % 4 !== 0) return undefined;
  return new Int32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
}

/** dst ^= src */
export function xorInto(dst: Uint8Array, src: Uint8Array): void {
  assert(dst.length === src.length, 'xor operands of equal length');
  const dw = words(dst);
  const sw = words(src);
  if (dw && sw) {
    for (let i = 0; i < dw.length; i++) dw[i]! ^= sw[i]!;
    return;
  }
  for (let i = 0; i < dst.length; i++) dst[i]! ^= src[i]!;
}

/** dst = dst * g in GF(2^8), byte-wise (four bytes at a time where aligned). */
function mul2InPlace(dst: Uint8Array): void {
  const dw = words(dst);
  if (dw) {
    for (let i = 0; i < dw.length; i++) {
      const x = dw[i]!;
      const high = x & 0x80808080;
      dw[i] = ((x & 0x7f7f7f7f) << 1) ^ Math.imul(high >>> 7, 0x1d);
    }
    return;
  }
  for (let i = 0; i < dst.length; i++) {
    const x = dst[i]!;
    dst[i] = ((x << 1) & 0xff) ^ (x & 0x80 ? 0x1d : 0);
  }
}

/** dst ^= c * src in GF(2^8). */
export function gfMulXorInto(dst: Uint8Array, src: Uint8Array, c: number): void {
  assert(dst.length === src.length, 'operands of equal length');
  if (c === 0) return;
  if (c === 1) return xorInto(dst, src);
  const table = gfMulTable(c);
  for (let i = 0; i < dst.length; i++) dst[i]! ^= table[src[i]!]!;
}

export function computeP(data: readonly Uint8Array[], out?: Buffer): Buffer {
  assert(data.length > 0, 'at least one data block');
  const p = out ?? Buffer.allocUnsafe(data[0]!.length);
  p.set(data[0]!);
  for (let i = 1; i < data.length; i++) xorInto(p, data[i]!);
  return p;
}

/**
 * Q = sum over i of g^e(i) * data[i], where e(i) = exponents[i] (default: i), evaluated by
 * Horner's rule from the highest exponent. Linux md numbers RAID-6 data chunks for Q from the
 * member after Q: the stripe map gives each layout's exponents.
 */
export function computeQ(data: readonly Uint8Array[], out?: Buffer, exponents?: readonly number[]): Buffer {
  assert(data.length > 0, 'at least one data block');
  if (exponents && !isIdentity(exponents)) {
    const ordered: Uint8Array[] = new Array(data.length);
    data.forEach((block, i) => { ordered[exponents[i]!] = block; });
    return computeQ(ordered, out);
  }
  const q = out ?? Buffer.allocUnsafe(data[0]!.length);
  q.set(data[data.length - 1]!);
  for (let i = data.length - 2; i >= 0; i--) {
    mul2InPlace(q);
    xorInto(q, data[i]!);
  }
  return q;
}

function isIdentity(exponents: readonly number[]): boolean {
  return exponents.every((exponent, i) => exponent === i);
}

export interface RowBlocks {
  /** Data blocks in stripe order; null where the member is lost. */
  data: (Buffer | null)[];
  p: Buffer | null;
  /** Undefined when the level has no Q; null when Q is lost. */
  q?: Buffer | null;
}

/**
 * Fills in every null block of a row from the others, in place. At most one block may be
 * missing without Q, two with Q. Returns the row with every block present.
 */
export function reconstructRow(row: RowBlocks, blockSizeBytes: number, exponents?: readonly number[]): { data: Buffer[]; p: Buffer; q: Buffer | undefined } {
  const e = (index: number) => (exponents ? exponents[index]! : index);
  const hasQ = row.q !== undefined;
  const missingData: number[] = [];
  row.data.forEach((block, index) => { if (block === null) missingData.push(index); });
  const missingCount = missingData.length + (row.p === null ? 1 : 0) + (hasQ && row.q === null ? 1 : 0);
  assert(missingCount <= (hasQ ? 2 : 1), `too many lost blocks in a row (${missingCount})`);
  const data = row.data;

  if (missingData.length === 1 && row.p !== null) {
    const x = missingData[0]!;
    const dx = Buffer.from(row.p);
    data.forEach((block, index) => { if (index !== x) xorInto(dx, block!); });
    data[x] = dx;
  } else if (missingData.length === 1) {
    // P is lost too: solve from Q. Q ^ sum_{i != x} g^i D_i = g^x D_x.
    const x = missingData[0]!;
    assert(hasQ && row.q, 'Q present when P and one data block are lost');
    const qx = Buffer.from(row.q);
    data.forEach((block, index) => { if (index !== x) gfMulXorInto(qx, block!, gfPow2(e(index))); });
    const dx = Buffer.alloc(blockSizeBytes);
    gfMulXorInto(dx, qx, gfPow2(-e(x)));
    data[x] = dx;
  } else if (missingData.length === 2) {
    assert(hasQ && row.q && row.p, 'P and Q present when two data blocks are lost');
    const [x, y] = missingData as [number, number];
    const pxy = Buffer.from(row.p); // becomes D_x ^ D_y
    const qxy = Buffer.from(row.q); // becomes g^x D_x ^ g^y D_y
    data.forEach((block, index) => {
      if (index === x || index === y) return;
      xorInto(pxy, block!);
      gfMulXorInto(qxy, block!, gfPow2(e(index)));
    });
    // D_x (g^x ^ g^y) = Qxy ^ g^y Pxy
    const gx = gfPow2(e(x));
    const gy = gfPow2(e(y));
    const numerator = Buffer.from(qxy);
    gfMulXorInto(numerator, pxy, gy);
    const dx = Buffer.alloc(blockSizeBytes);
    gfMulXorInto(dx, numerator, gfInv(gx ^ gy));
    const dy = pxy;
    xorInto(dy, dx);
    data[x] = dx;
    data[y] = dy;
  }
  const full = data as Buffer[];
  const p = row.p ?? computeP(full);
  const q = hasQ ? row.q ?? computeQ(full, undefined, exponents) : undefined;
  return { data: full, p, q };
}
