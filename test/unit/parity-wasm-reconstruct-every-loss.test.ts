// Proves: reconstructRow on the WebAssembly kernels rebuilds every single and every pair of lost chunks of a RAID-6 row (data+data, data+P, data+Q, P+Q) byte for byte as the reference does, for k = 2..14, shuffled Q exponents, arena and ordinary Buffer operands; recoverDataPair does the same into arena outputs.
import { afterEach, describe, expect, it } from 'vitest';
import { defaultArena } from '../../src/memory/arena.js';
import { computeP, computeQ, reconstructRow, recoverDataPair } from '../../src/parity/parity.js';
import * as reference from '../../src/parity/reference.js';
import { Rng } from '../../src/rng.js';
import { KIB, MIB } from '../../src/units.js';
import { Operands, shuffledExponents, type Placement } from '../helpers/parity-operands.js';

const operands = new Operands();
afterEach(() => operands.releaseAll());

/** Every loss of one or two roles among data 0..k-1, P (k) and Q (k+1). */
function lossSets(dataCount: number): number[][] {
  const roles = dataCount + 2;
  const sets: number[][] = [];
  for (let a = 0; a < roles; a++) {
    sets.push([a]);
    for (let b = a + 1; b < roles; b++) sets.push([a, b]);
  }
  return sets;
}

function roleName(role: number, dataCount: number): string {
  return role === dataCount ? 'P' : role === dataCount + 1 ? 'Q' : `D${role}`;
}

function checkEveryLoss(rng: Rng, dataCount: number, lengthBytes: number, placement: Placement, pairsOnly = false): void {
  const original = Array.from({ length: dataCount }, () => rng.bytes(lengthBytes));
  const exponents = shuffledExponents(dataCount, () => rng.next());
  const p = reference.computeP(original);
  const q = reference.computeQ(original, undefined, exponents);
  const sets = lossSets(dataCount).filter((lost) => !pairsOnly || (lost.length === 2 && lost[1]! < dataCount));
  // Singles, D+D, D+P, D+Q and P+Q: count them so a shrinking loop is noticed.
  if (!pairsOnly) expect(sets.length).toBe((dataCount + 2) * (dataCount + 3) / 2);
  for (const lost of sets) {
    const label = `k=${dataCount} ${lengthBytes} bytes ${placement}, lost ${lost.map((role) => roleName(role, dataCount)).join('+')}, exponents ${exponents.join(',')}`;
    const row = () => ({
      data: original.map((block, i) => (lost.includes(i) ? null : operands.place(block, placement))),
      p: lost.includes(dataCount) ? null : operands.place(p, placement),
      q: lost.includes(dataCount + 1) ? null : operands.place(q, placement),
    });
    // At 1 MiB the original bytes (which the reference gives back too) spare the slow reference.
    const want = lengthBytes <= 64 * KIB ? reference.reconstructRow(row(), lengthBytes, exponents) : { data: original };
    const got = reconstructRow(row(), lengthBytes, exponents);
    expect(got.p.equals(p), `P ${label}`).toBe(true);
    expect(got.q!.equals(q), `Q ${label}`).toBe(true);
    got.data.forEach((block, i) => {
      expect(block.equals(original[i]!), `D${i} ${label}`).toBe(true);
      expect(block.equals(want.data[i]!), `D${i} as the reference, ${label}`).toBe(true);
    });
    operands.releaseAll();
  }
}

describe('every lost chunk and pair of chunks, against the reference', () => {
  for (let dataCount = 2; dataCount <= 14; dataCount++) {
    for (const placement of ['arena', 'buffer-odd'] as const) {
      it(`k=${dataCount}, ${placement} operands, 4 KiB and 20 KiB + 13`, () => {
        const rng = new Rng(dataCount * 31 + (placement === 'arena' ? 0 : 1));
        checkEveryLoss(rng, dataCount, 4 * KIB, placement);
        checkEveryLoss(rng, dataCount, 20 * KIB + 13, placement);
      });
    }
  }

  for (const dataCount of [4, 14]) {
    it(`k=${dataCount}, two lost data chunks of 1 MiB, every pair`, () => {
      checkEveryLoss(new Rng(77 + dataCount), dataCount, 1 * MIB, 'arena', true);
    });
  }

  it('RAID-5 rows (no Q): every single loss, k = 2..14', () => {
    const rng = new Rng(5);
    for (let dataCount = 2; dataCount <= 14; dataCount++) {
      const original = Array.from({ length: dataCount }, () => rng.bytes(4 * KIB + 7));
      const p = computeP(original);
      for (let lost = 0; lost <= dataCount; lost++) {
        const got = reconstructRow({
          data: original.map((block, i) => (i === lost ? null : operands.place(block, 'arena'))),
          p: lost === dataCount ? null : operands.place(p, 'buffer'),
        }, 4 * KIB + 7);
        expect(got.q).toBeUndefined();
        expect(got.p.equals(p), `P, k=${dataCount} lost ${lost}`).toBe(true);
        got.data.forEach((block, i) => expect(block.equals(original[i]!), `D${i}, k=${dataCount} lost ${lost}`).toBe(true));
        operands.releaseAll();
      }
    }
  });
});

describe('recoverDataPair into arena outputs', () => {
  it('rebuilds both chunks in place for every pair, k = 8, shuffled exponents', () => {
    const rng = new Rng(8);
    const lengthBytes = 64 * KIB;
    const original = Array.from({ length: 8 }, () => rng.bytes(lengthBytes));
    const exponents = shuffledExponents(8, () => rng.next());
    const data = original.map((block) => operands.place(block, 'arena'));
    const p = computeP(data, operands.blank(lengthBytes, 'arena'));
    const q = computeQ(data, operands.blank(lengthBytes, 'arena'), exponents);
    const pool = defaultArena().pool;
    const dx = pool.acquire(lengthBytes);
    const dy = pool.acquire(lengthBytes);
    try {
      for (let x = 0; x < 8; x++) {
        for (let y = x + 1; y < 8; y++) {
          dx.fill(0xa5);
          dy.fill(0xa5);
          recoverDataPair(data.map((block, i) => (i === x || i === y ? null : block)), p, q, x, y, dx, dy, exponents);
          expect(dx.equals(original[x]!), `D${x} of ${x}+${y}`).toBe(true);
          expect(dy.equals(original[y]!), `D${y} of ${x}+${y}`).toBe(true);
        }
      }
    } finally {
      pool.release(dx);
      pool.release(dy);
    }
  });
});
