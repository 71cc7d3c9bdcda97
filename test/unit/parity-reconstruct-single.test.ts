// Proves: in a RAID-4/5 row (data + P), reconstructRow gives back the exact bytes of any one lost block.
import { describe, expect, it } from 'vitest';
import { Rng } from '../../src/rng.js';
import { computeP, reconstructRow } from '../../src/parity/parity.js';

const BLOCK_LENGTHS_BYTES = [4096, 13];

describe('RAID-4/5 single loss', () => {
  for (let dataCount = 2; dataCount <= 10; dataCount++) {
    for (const blockSizeBytes of BLOCK_LENGTHS_BYTES) {
      it(`${dataCount} data blocks of ${blockSizeBytes} bytes: each data block and P in turn`, () => {
        const rng = new Rng(dataCount * 1000 + blockSizeBytes);
        const data = Array.from({ length: dataCount }, () => rng.bytes(blockSizeBytes));
        const p = computeP(data);

        // Lost index dataCount stands for P.
        for (let lost = 0; lost <= dataCount; lost++) {
          const row = {
            data: data.map((block, i) => (i === lost ? null : Buffer.from(block))),
            p: lost === dataCount ? null : Buffer.from(p),
          };
          const got = reconstructRow(row, blockSizeBytes);
          expect(got.q).toBeUndefined();
          expect(got.p.equals(p), `P after losing ${lost}`).toBe(true);
          got.data.forEach((block, i) => expect(block.equals(data[i]!), `data ${i} after losing ${lost}`).toBe(true));
        }
      });
    }
  }

  it('refuses two losses without Q', () => {
    const rng = new Rng(1);
    const data = Array.from({ length: 4 }, () => rng.bytes(16));
    const p = computeP(data);
    expect(() => reconstructRow({ data: [null, null, data[2]!, data[3]!], p }, 16)).toThrow(/too many lost blocks/);
    expect(() => reconstructRow({ data: [null, data[1]!, data[2]!, data[3]!], p: null }, 16)).toThrow(/too many lost blocks/);
  });
});
