// Parity throughput: P (XOR), P+Q and the reconstruction of two lost data chunks (RAID-6), each
// beside a Buffer copy of the same input bytes measured in the same run, with every operand a
// buffer of the arena's pool (where the kernels run without copies). The reference TypeScript
// kernels are measured too, for contrast. Figures count input bytes per second.

import { defaultArena } from '../src/memory/arena.js';
import { computeP, computePQ, recoverDataPair } from '../src/parity/parity.js';
import * as reference from '../src/parity/reference.js';
import { Rng } from '../src/rng.js';
import { KIB, MIB } from '../src/units.js';
import { measureMbPerSecond, type Bench, type Comparison } from './measure.js';

const DATA_COUNTS = [4, 8];
const BLOCK_SIZES_BYTES = [1 * MIB, 64 * KIB];
/** Small blocks are run in batches, so one timed call moves at least this many input bytes. */
const CALL_BYTES_MIN = 1 * MIB;

// Issue 11's goals, as ratios to the Buffer copy.
const P_GOAL = 1.0;
const PQ_GOAL = 0.7;
const RECOVER_GOAL = 0.3;

export const benchParity: Bench = async (report) => {
  const pool = defaultArena().pool;
  const rng = new Rng(1);
  for (const blockSizeBytes of BLOCK_SIZES_BYTES) {
    for (const dataCount of DATA_COUNTS) {
      // Distinct random blocks keep the cache honest; every operand is lent by the pool.
      const data = Array.from({ length: dataCount }, () => pool.acquire(blockSizeBytes).fill(rng.bytes(blockSizeBytes)));
      const [p, q, dx, dy] = Array.from({ length: 4 }, () => pool.acquire(blockSizeBytes));
      computePQ(data, p!, q!);
      const lost = [1, 2] as const; // two data chunks, neither the first nor the last
      const survivors = data.map((block, i) => (i === lost[0] || i === lost[1] ? null : block));
      const repeat = Math.max(1, Math.floor(CALL_BYTES_MIN / (dataCount * blockSizeBytes)));
      const bytesPerCall = repeat * dataCount * blockSizeBytes;
      const timed = (operation: () => void) => measureMbPerSecond(() => {
        for (let r = 0; r < repeat; r++) operation();
      }, bytesPerCall);
      const shape = `${dataCount}x${blockSizeBytes >= MIB ? `${blockSizeBytes / MIB}MiB` : `${blockSizeBytes / KIB}KiB`}`;

      // The reference reads the same input bytes and writes one output block per input block.
      const copy = async () => ({
        what: 'Buffer copy', unit: 'MB/s',
        figure: await timed(() => { for (const block of data) block.copy(p!); }),
      });
      const row = async (name: string, operation: () => void, goal?: number): Promise<Comparison> => {
        const figure = await timed(operation);
        return { name: `parity ${name} ${shape}`, figure, unit: 'MB/s', reference: await copy(), ...(goal === undefined ? {} : { goal }) };
      };

      report(await row('P', () => computeP(data, p), P_GOAL));
      report(await row('P+Q', () => computePQ(data, p!, q!), PQ_GOAL));
      report(await row('recover 2 data', () => recoverDataPair(survivors, p!, q!, lost[0], lost[1], dx!, dy!), RECOVER_GOAL));
      if (blockSizeBytes === MIB) {
        report(await row('P, TS reference', () => reference.computeP(data, p)));
        report(await row('P+Q, TS reference', () => { reference.computeP(data, p); reference.computeQ(data, q); }));
        report(await row('recover 2 data, TS reference', () => {
          reference.reconstructRow({ data: [...survivors], p: p!, q: q! }, blockSizeBytes);
        }));
      }
      for (const buffer of [...data, p!, q!, dx!, dy!]) pool.release(buffer);
    }
  }
};
