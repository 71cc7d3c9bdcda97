// Parity throughput: P (XOR) and P+Q over 1 MiB data blocks, beside a plain Buffer copy of the
// same bytes, so the ratio says how far the parity loops are from memory speed on this machine.

import { computeP, computeQ } from '../src/parity/parity.js';
import { Rng } from '../src/rng.js';
import { MIB } from '../src/units.js';
import { measureMbPerSecond, type Bench } from './measure.js';

const BLOCK_SIZE_BYTES = 1 * MIB;

const CASES: { withQ: boolean; dataCount: number }[] = [
  { withQ: false, dataCount: 4 },
  { withQ: true, dataCount: 4 },
  { withQ: true, dataCount: 8 },
];

export const benchParity: Bench = async (report) => {
  const rng = new Rng(1);
  // One random block repeated would do for speed, but distinct blocks keep the cache honest.
  const data = Array.from({ length: 8 }, () => rng.bytes(BLOCK_SIZE_BYTES));
  const p = Buffer.alloc(BLOCK_SIZE_BYTES);
  const q = Buffer.alloc(BLOCK_SIZE_BYTES);

  for (const { withQ, dataCount } of CASES) {
    const row = data.slice(0, dataCount);
    const bytesPerCall = dataCount * BLOCK_SIZE_BYTES;
    const parityMbPerSecond = await measureMbPerSecond(() => {
      computeP(row, p);
      if (withQ) computeQ(row, q);
    }, bytesPerCall);
    // The reference reads the same blocks and writes one output block, as computeP does.
    const copyMbPerSecond = await measureMbPerSecond(() => {
      for (const block of row) block.copy(p);
    }, bytesPerCall);
    report({
      name: `parity ${withQ ? 'P+Q' : 'P'} ${dataCount}x1MiB`,
      figure: parityMbPerSecond,
      unit: 'MB/s',
      reference: { what: 'Buffer copy', figure: copyMbPerSecond, unit: 'MB/s' },
    });
  }
};
