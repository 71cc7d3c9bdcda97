// Proves: RAID-6 Q coefficients follow Linux md for every layout: data chunks are numbered for
// Q from the member after Q (wrapping, skipping P), so Q equals md's Q for the same placement;
// and reconstruction with those coefficients gives exact bytes for every single and pair loss.
import { describe, expect, it } from 'vitest';
import { Geometry } from '../../src/geometry/geometry.js';
import { gfMul } from '../../src/parity/gf256.js';
import { computeP, computeQ, reconstructRow } from '../../src/parity/parity.js';
import { Rng } from '../../src/rng.js';
import type { LayoutName } from '../../src/format/types.js';

/** md's raid6_idx_to_slot for the four classic layouts: slots counted from d0 = the disk after Q. */
function mdSlots(n: number, pd: number, qd: number): Map<number, number> {
  const d0 = qd === n - 1 ? 0 : qd + 1;
  const slots = new Map<number, number>();
  let count = 0;
  for (let i = d0, seen = 0; seen < n; i = (i + 1) % n, seen++) {
    if (i === pd || i === qd) continue;
    slots.set(i, count++);
  }
  return slots;
}

/** Q by its definition, byte by byte: sum of g^slot * D over data disks (md's syndrome). */
function referenceQ(blocks: Map<number, Buffer>, slots: Map<number, number>, length: number): Buffer {
  const q = Buffer.alloc(length);
  for (const [disk, block] of blocks) {
    let coefficient = 1;
    for (let s = 0; s < slots.get(disk)!; s++) coefficient = gfMul(coefficient, 2);
    for (let i = 0; i < length; i++) q[i]! ^= gfMul(coefficient, block[i]!);
  }
  return q;
}

const layouts: LayoutName[] = ['left-symmetric', 'right-symmetric', 'left-asymmetric', 'right-asymmetric'];

describe('RAID-6 Q order', () => {
  for (const layout of layouts) {
    it(`${layout}: exponents are md's slots and Q equals md's Q`, () => {
      const rng = new Rng(layout.length);
      for (let n = 4; n <= 8; n++) {
        const g = new Geometry({ level: 6, layout, raidDevices: n, chunkSizeBytes: 4096, dataSizeBytes: 4096 * 3 * n });
        for (let stripe = 0; stripe < 3 * n; stripe++) {
          const map = g.stripeMap(stripe);
          const slots = mdSlots(n, map.pRole, map.qRole);
          expect(map.qExponents).toEqual(map.dataRoles.map((role) => slots.get(role)));
          if (layout.endsWith('-symmetric')) expect(map.qExponents).toEqual(map.dataRoles.map((_, i) => i));
          const data = map.dataRoles.map(() => rng.bytes(64));
          const byDisk = new Map(map.dataRoles.map((role, i) => [role, data[i]!]));
          expect(computeQ(data, undefined, map.qExponents).equals(referenceQ(byDisk, slots, 64))).toBe(true);
        }
      }
    });
  }

  it('reconstruction with permuted exponents is exact for every single and pair loss', () => {
    const rng = new Rng(66);
    const exponents = [2, 0, 3, 1];
    const data = exponents.map(() => rng.bytes(4096));
    const p = computeP(data);
    const q = computeQ(data, undefined, exponents);
    const blocks = [...data, p, q];
    for (let a = 0; a < 6; a++) {
      for (let b = a; b < 6; b++) {
        const lost = new Set([a, b]);
        const row = reconstructRow({
          data: data.map((block, i) => (lost.has(i) ? null : Buffer.from(block))),
          p: lost.has(4) ? null : Buffer.from(p),
          q: lost.has(5) ? null : Buffer.from(q),
        }, 4096, exponents);
        [...row.data, row.p, row.q!].forEach((block, i) => expect(block.equals(blocks[i]!), `lost ${a},${b} block ${i}`).toBe(true));
      }
    }
  });
});
