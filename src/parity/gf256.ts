// GF(2^8) with polynomial x^8+x^4+x^3+x^2+1 (0x11d) and generator 2: the field Linux md's
// RAID-6 uses, so Q here equals md's Q for the same data order.

import { assert } from '../units.js';

export const GF_POLYNOMIAL = 0x11d;

export const GF_EXP = new Uint8Array(512);
export const GF_LOG = new Uint8Array(256);
{
  let value = 1;
  for (let power = 0; power < 255; power++) {
    GF_EXP[power] = value;
    GF_LOG[value] = power;
    value <<= 1;
    if (value & 0x100) value ^= GF_POLYNOMIAL;
  }
  for (let power = 255; power < 512; power++) GF_EXP[power] = GF_EXP[power - 255]!;
}

export function gfMul(a: number, b: number): number {
  if (a === 0 || b === 0) return 0;
  return GF_EXP[GF_LOG[a]! + GF_LOG[b]!]!;
}

export function gfInv(a: number): number {
  assert(a !== 0, 'inverse of a non-zero element of GF(2^8)');
  return GF_EXP[255 - GF_LOG[a]!]!;
}

/** g^power for any integer power (negative powers are inverses). */
export function gfPow2(power: number): number {
  return GF_EXP[((power % 255) + 255) % 255]!;
}

const mulTables = new Map<number, Uint8Array>();

/** A 256-entry table of c*x, cached: reconstruction multiplies whole buffers by one constant. */
export function gfMulTable(c: number): Uint8Array {
  let table = mulTables.get(c);
  if (!table) {
    table = new Uint8Array(256);
    for (let x = 0; x < 256; x++) table[x] = gfMul(c, x);
    mulTables.set(c, table);
  }
  return table;
}
