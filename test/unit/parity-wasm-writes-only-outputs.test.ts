// Proves: the parity kernels write no byte outside their outputs and change no input: guard bytes right before and after every operand, in the arena and in ordinary Buffers, stay intact at every edge length (tails shorter than the kernels' 64-byte step included).
import { describe, expect, it } from 'vitest';
import { defaultArena } from '../../src/memory/arena.js';
import { computeP, computePQ, computeQ, gfMulXorInto, reconstructRow, recoverDataPair } from '../../src/parity/parity.js';
import { Rng } from '../../src/rng.js';
import { KIB } from '../../src/units.js';

const GUARD_BYTES = 64;
const GUARD_BYTE = 0x5c;
const LENGTHS_BYTES = [1, 13, 63, 65, 127, 4 * KIB - 1, 16 * KIB + 13, 64 * KIB + 63];

describe('kernels write only their outputs', () => {
  for (const inArena of [true, false]) {
    it(`${inArena ? 'arena' : 'Buffer'} operands packed between guard bytes`, () => {
      const rng = new Rng(inArena ? 1 : 2);
      const pool = defaultArena().pool;
      for (const lengthBytes of LENGTHS_BYTES) {
        const operandCount = 10; // 6 data, then P, Q, Dx, Dy
        const stride = lengthBytes + GUARD_BYTES;
        const totalBytes = GUARD_BYTES + operandCount * stride;
        const whole = inArena ? pool.acquire(totalBytes) : Buffer.alloc(totalBytes);
        try {
          whole.fill(GUARD_BYTE);
          const operand = (i: number) => whole.subarray(GUARD_BYTES + i * stride, GUARD_BYTES + i * stride + lengthBytes);
          const data = Array.from({ length: 6 }, (_, i) => operand(i).fill(rng.bytes(lengthBytes)));
          const inputs = data.map((block) => Buffer.from(block));
          const [p, q, dx, dy] = [operand(6), operand(7), operand(8), operand(9)];
          computeP(data, p);
          computeQ(data, q, [5, 0, 1, 2, 3, 4]);
          computePQ(data, p, q);
          gfMulXorInto(dx, data[0]!, 0x8e);
          recoverDataPair([data[0]!, null, data[2]!, data[3]!, null, data[5]!], p, q, 1, 4, dx, dy);
          expect(dx.equals(inputs[1]!), `D1 rebuilt, ${lengthBytes} bytes`).toBe(true);
          expect(dy.equals(inputs[4]!), `D4 rebuilt, ${lengthBytes} bytes`).toBe(true);
          reconstructRow({ data: [data[0]!, data[1]!, null, data[3]!, data[4]!, data[5]!], p: null, q }, lengthBytes);
          data.forEach((block, i) => expect(block.equals(inputs[i]!), `input ${i} unchanged, ${lengthBytes} bytes`).toBe(true));
          for (let i = 0; i <= operandCount; i++) {
            const guard = whole.subarray(i * stride, i * stride + GUARD_BYTES);
            expect(guard.every((byte) => byte === GUARD_BYTE), `guard ${i} intact, ${lengthBytes} bytes`).toBe(true);
          }
        } finally {
          if (inArena) pool.release(whole);
        }
      }
    });
  }
});
