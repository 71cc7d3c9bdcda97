// Parity throughput: P (XOR), P+Q and the reconstruction of two lost data chunks (RAID-6), each
// beside a Buffer copy of the same input bytes (one output block written per input block)
// measured in the same run, with every operand a buffer of the arena's pool (where the kernels
// run without copies). For contrast, at 1 MiB: the same kernels on ordinary Buffers (staged
// through the arena's scratch) and the reference TypeScript kernels. Figures count input bytes
// (k chunks: data, or surviving data + P + Q) per second of CPU time (see measure.ts).

import { defaultArena } from '../src/memory/arena.js';
import { computeP, computePQ, recoverDataPair } from '../src/parity/parity.js';
import * as reference from '../src/parity/reference.js';
import { Rng } from '../src/rng.js';
import { KIB, MIB } from '../src/units.js';
import { measureMbPerSecond, type Bench } from './measure.js';

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
      const [p, q, dx, dy] = Array.from({ length: 4 }, () => pool.acquire(blockSizeBytes)) as [Buffer, Buffer, Buffer, Buffer];
      computePQ(data, p, q);
      const lost = [1, 2] as const; // two data chunks, neither the first nor the last
      const survivors = data.map((block, i) => (i === lost[0] || i === lost[1] ? null : block));
      const repeat = Math.max(1, Math.floor(CALL_BYTES_MIN / (dataCount * blockSizeBytes)));
      const timed = (operation: () => void) => measureMbPerSecond(() => {
        for (let r = 0; r < repeat; r++) operation();
      }, repeat * dataCount * blockSizeBytes, 'cpu');
      const shape = `${dataCount}x${blockSizeBytes >= MIB ? `${blockSizeBytes / MIB}MiB` : `${blockSizeBytes / KIB}KiB`}`;

      // One copy figure per shape, measured first, stands beside every row of that shape.
      const copy = { what: 'Buffer copy', unit: 'MB/s', figure: await timed(() => { for (const block of data) block.copy(p); }) };
      const row = async (id: string, name: string, operation: () => void, goal?: number) => {
        report({ id: `parity-${id}-${shape}`, name: `parity ${name} ${shape}`, figure: await timed(operation), unit: 'MB/s', reference: copy, ...(goal === undefined ? {} : { goal }) });
      };

      await row('p', 'P', () => computeP(data, p), P_GOAL);
      await row('pq', 'P+Q', () => computePQ(data, p, q), PQ_GOAL);
      await row('2loss', 'RAID-6 2 data lost', () => recoverDataPair(survivors, p, q, lost[0], lost[1], dx, dy), RECOVER_GOAL);
      if (blockSizeBytes === MIB) {
        const plain = data.map((block) => Buffer.from(block));
        const [plainP, plainQ] = [Buffer.alloc(blockSizeBytes), Buffer.alloc(blockSizeBytes)];
        await row('pq-staged', 'P+Q staged', () => computePQ(plain, plainP, plainQ));
        await row('p-ts', 'P TS ref', () => reference.computeP(data, p));
        await row('pq-ts', 'P+Q TS ref', () => { reference.computeP(data, p); reference.computeQ(data, q); });
        await row('2loss-ts', '2 data lost TS ref', () => { reference.reconstructRow({ data: [...survivors], p, q }, blockSizeBytes); });
      }
      for (const buffer of [...data, p, q, dx, dy]) pool.release(buffer);
    }
  }
};
