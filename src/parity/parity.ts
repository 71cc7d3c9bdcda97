// Parity over equal-length buffers: XOR (P), the RAID-6 syndrome Q = sum g^e(i) * D_i, and
// reconstruction of lost chunks, run by the WebAssembly SIMD kernels (wasm-kernels.ts).
// reference.ts holds the same functions in plain TypeScript; tests hold these to it byte for
// byte. Operands that are buffers from the arena's pool (src/memory/) are computed in place;
// any other Buffer is correct too, through a copy.

import { assert } from '../units.js';
import { gfInv, gfMul, gfPow2 } from './gf256.js';
import * as reference from './reference.js';
import { defaultKernels, KERNEL_SOURCES_MAX, type SourceTable } from './wasm-kernels.js';

/** dst ^= src */
export function xorInto(dst: Uint8Array, src: Uint8Array): void {
  assert(dst.length === src.length, 'xor operands of equal length');
  if (dst.length === 0) return;
  defaultKernels().xor([dst, src], dst);
}

/** dst ^= c * src in GF(2^8). */
export function gfMulXorInto(dst: Uint8Array, src: Uint8Array, c: number): void {
  assert(dst.length === src.length, 'operands of equal length');
  if (c === 0 || dst.length === 0) return;
  if (c === 1) return xorInto(dst, src);
  defaultKernels().mulXor(dst, src, c);
}

export function computeP(data: readonly Uint8Array[], out?: Buffer): Buffer {
  assert(data.length > 0, 'at least one data block');
  if (data.length > KERNEL_SOURCES_MAX) return reference.computeP(data, out);
  const p = out ?? Buffer.allocUnsafe(data[0]!.length);
  if (p.length > 0) defaultKernels().xor(data, p);
  return p;
}

/**
 * Q = sum over i of g^e(i) * data[i], where e(i) = exponents[i] (default: i). Linux md numbers
 * RAID-6 data chunks for Q from the member after Q: the stripe map gives each layout's exponents.
 */
export function computeQ(data: readonly Uint8Array[], out?: Buffer, exponents?: readonly number[]): Buffer {
  assert(data.length > 0, 'at least one data block');
  const table = sourceTable(data, exponents);
  if (!table) return reference.computeQ(data, out, exponents);
  const q = out ?? Buffer.allocUnsafe(data[0]!.length);
  if (q.length > 0) defaultKernels().q(table, q);
  return q;
}

/** P and Q together in one pass over the data (cheaper than computeP then computeQ). */
export function computePQ(data: readonly Uint8Array[], p: Buffer, q: Buffer, exponents?: readonly number[]): void {
  assert(data.length > 0, 'at least one data block');
  const table = sourceTable(data, exponents);
  if (!table) {
    reference.computeP(data, p);
    reference.computeQ(data, q, exponents);
    return;
  }
  if (p.length > 0) defaultKernels().pq(table, p, q);
  else assert(q.length === 0, 'P and Q of equal length');
}

/**
 * Rebuilds data chunks x and y of a RAID-6 row into dx and dy, in one pass over the other data
 * chunks, P and Q (data[x] and data[y] are not read). Exponents as for computeQ.
 */
export function recoverDataPair(data: readonly (Uint8Array | null)[], p: Uint8Array, q: Uint8Array, x: number, y: number,
  dx: Uint8Array, dy: Uint8Array, exponents?: readonly number[]): void {
  if (x === y || x < 0 || y < 0 || x >= data.length || y >= data.length) assert(false, `two distinct lost data chunks (${x}, ${y})`);
  const survivors = data.map((block, i) => (i === x || i === y ? null : block));
  const table = sourceTable(survivors, exponents);
  const e = (index: number) => (exponents ? exponents[index]! : index);
  // D_x (g^x ^ g^y) = Qxy ^ g^y Pxy, so D_x = a Qxy ^ b Pxy with a = 1/(g^x ^ g^y), b = g^y a.
  const gy = gfPow2(e(y));
  const a = gfInv(gfPow2(e(x)) ^ gy);
  if (!table) {
    referencePair(survivors, p, q, x, y, dx, dy, exponents);
    return;
  }
  if (dx.length > 0) defaultKernels().recoverPair(table, p, q, dx, dy, a, gfMul(gy, a));
}

function referencePair(survivors: readonly (Uint8Array | null)[], p: Uint8Array, q: Uint8Array, x: number, y: number,
  dx: Uint8Array, dy: Uint8Array, exponents?: readonly number[]): void {
  const row = reference.reconstructRow({
    data: survivors.map((block) => (block ? Buffer.from(block) : null)),
    p: Buffer.from(p),
    q: Buffer.from(q),
  }, dx.length, exponents);
  dx.set(row.data[x]!);
  dy.set(row.data[y]!);
}

/**
 * The kernels' source table for `data` with Q exponents `exponents`: entry e holds the chunk
 * whose coefficient is g^e, null where no chunk has e (or the chunk is lost). Undefined when
 * the kernels cannot take it (an exponent out of 0..254 or repeated): the reference then runs.
 */
function sourceTable(data: readonly (Uint8Array | null)[], exponents?: readonly number[]): SourceTable | undefined {
  if (!exponents) return data.length <= KERNEL_SOURCES_MAX ? data : undefined;
  if (exponents.length !== data.length) assert(false, `one exponent per data chunk (${exponents.length} for ${data.length})`);
  let entries = 0;
  for (const exponent of exponents) {
    if (!Number.isInteger(exponent) || exponent < 0 || exponent >= KERNEL_SOURCES_MAX) return undefined;
    entries = Math.max(entries, exponent + 1);
  }
  const table = new Array<Uint8Array | null>(entries).fill(null);
  const seen = new Uint8Array(entries);
  for (let i = 0; i < data.length; i++) {
    const exponent = exponents[i]!;
    if (seen[exponent]) return undefined;
    seen[exponent] = 1;
    table[exponent] = data[i]!;
  }
  return table;
}

export interface RowBlocks {
  /** Data blocks in stripe order; null where the member is lost. */
  data: (Buffer | null)[];
  p: Buffer | null;
  /** Undefined when the level has no Q; null when Q is lost. */
  q?: Buffer | null;
}

/**
 * Fills in every null block of a row from the others, in place (new Buffers for the lost data
 * blocks). At most one block may be missing without Q, two with Q. Returns the row with every
 * block present.
 */
export function reconstructRow(row: RowBlocks, blockSizeBytes: number, exponents?: readonly number[]): { data: Buffer[]; p: Buffer; q: Buffer | undefined } {
  const e = (index: number) => (exponents ? exponents[index]! : index);
  const hasQ = row.q !== undefined;
  const missingData: number[] = [];
  row.data.forEach((block, index) => {
    if (block === null) missingData.push(index);
    else if (block.length !== blockSizeBytes) assert(false, `row block of ${blockSizeBytes} bytes (${block.length})`);
  });
  const missingCount = missingData.length + (row.p === null ? 1 : 0) + (hasQ && row.q === null ? 1 : 0);
  if (missingCount > (hasQ ? 2 : 1)) assert(false, `too many lost blocks in a row (${missingCount})`);
  const data = row.data;

  if (missingData.length === 1 && row.p !== null) {
    const x = missingData[0]!;
    const dx = Buffer.allocUnsafe(blockSizeBytes);
    computeP([row.p, ...data.filter((block, index) => index !== x) as Buffer[]], dx);
    data[x] = dx;
  } else if (missingData.length === 1) {
    // P is lost too: solve from Q. Q ^ sum_{i != x} g^i D_i = g^x D_x.
    const x = missingData[0]!;
    assert(hasQ && row.q, 'Q present when P and one data block are lost');
    const table = sourceTable(data, exponents);
    const dx = Buffer.allocUnsafe(blockSizeBytes);
    if (table && blockSizeBytes > 0) defaultKernels().recoverFromQ(table, row.q, dx, gfPow2(-e(x)));
    else if (!table) dx.set(reference.reconstructRow({ data: [...data], p: null, q: row.q }, blockSizeBytes, exponents).data[x]!);
    data[x] = dx;
  } else if (missingData.length === 2) {
    assert(hasQ && row.q && row.p, 'P and Q present when two data blocks are lost');
    const [x, y] = missingData as [number, number];
    const dx = Buffer.allocUnsafe(blockSizeBytes);
    const dy = Buffer.allocUnsafe(blockSizeBytes);
    recoverDataPair(data, row.p, row.q, x, y, dx, dy, exponents);
    data[x] = dx;
    data[y] = dy;
  }
  const full = data as Buffer[];
  if (row.p === null && hasQ && row.q === null) {
    const p = Buffer.allocUnsafe(blockSizeBytes);
    const q = Buffer.allocUnsafe(blockSizeBytes);
    computePQ(full, p, q, exponents);
    return { data: full, p, q };
  }
  const p = row.p ?? computeP(full);
  const q = hasQ ? row.q ?? computeQ(full, undefined, exponents) : undefined;
  return { data: full, p, q };
}
