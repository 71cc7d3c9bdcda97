// Proves: in a RAID-6 row (data + P + Q), reconstructRow gives back the exact bytes of any one or two lost blocks.
import { describe, expect, it } from 'vitest';
import { Rng } from '../../src/rng.js';
import { computeP, computeQ, reconstructRow } from '../../src/parity/parity.js';

const BLOCK_LENGTHS_BYTES = [4096, 13];

/** Roles of a row: data indices 0..dataCount-1, then P, then Q. */
function roleName(role: number, dataCount: number): string {
  if (role === dataCount) return 'P';
  if (role === dataCount + 1) return 'Q';
  return `D${role}`;
}

describe('RAID-6 single and double loss', () => {
  for (let dataCount = 2; dataCount <= 10; dataCount++) {
    for (const blockSizeBytes of BLOCK_LENGTHS_BYTES) {
      it(`${dataCount} data blocks of ${blockSizeBytes} bytes: every single and every pair`, () => {
        const rng = new Rng(dataCount * 1000 + blockSizeBytes);
        const data = Array.from({ length: dataCount }, () => rng.bytes(blockSizeBytes));
        const p = computeP(data);
        const q = computeQ(data);
        const pRole = dataCount;
        const qRole = dataCount + 1;

        const lossSets: number[][] = [];
        for (let a = 0; a <= qRole; a++) {
          lossSets.push([a]);
          for (let b = a + 1; b <= qRole; b++) lossSets.push([a, b]);
        }
        // Singles, D+D, D+P, D+Q and P+Q are all in the list; count them so a shrinking loop is noticed.
        const total = qRole + 1;
        expect(lossSets.length).toBe(total + (total * (total - 1)) / 2);

        for (const lost of lossSets) {
          const label = lost.map((role) => roleName(role, dataCount)).join('+');
          const row = {
            data: data.map((block, i) => (lost.includes(i) ? null : Buffer.from(block))),
            p: lost.includes(pRole) ? null : Buffer.from(p),
            q: lost.includes(qRole) ? null : Buffer.from(q),
          };
          const got = reconstructRow(row, blockSizeBytes);
          expect(got.p.equals(p), `P after losing ${label}`).toBe(true);
          expect(got.q?.equals(q), `Q after losing ${label}`).toBe(true);
          got.data.forEach((block, i) => expect(block.equals(data[i]!), `D${i} after losing ${label}`).toBe(true));
        }
      });
    }
  }

  it('refuses three losses', () => {
    const rng = new Rng(2);
    const data = Array.from({ length: 4 }, () => rng.bytes(16));
    const p = computeP(data);
    const q = computeQ(data);
    expect(() => reconstructRow({ data: [null, null, null, data[3]!], p, q }, 16)).toThrow(/too many lost blocks/);
    expect(() => reconstructRow({ data: [null, null, data[2]!, data[3]!], p: null, q }, 16)).toThrow(/too many lost blocks/);
    expect(() => reconstructRow({ data: [null, data[1]!, data[2]!, data[3]!], p: null, q: null }, 16)).toThrow(/too many lost blocks/);
  });
});
