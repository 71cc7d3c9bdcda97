// Proves: when every operand is a buffer of the arena's pool the parity kernels copy nothing (no bytes staged through scratch), and an ordinary Buffer operand is staged; the arena's memory never grows, so pooled views stay attached, and the built kernels contain no memory.grow.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import initWabt from 'wabt';
import { defaultArena } from '../../src/memory/arena.js';
import { computeP, computePQ, gfMulXorInto, reconstructRow, recoverDataPair } from '../../src/parity/parity.js';
import { defaultKernels } from '../../src/parity/wasm-kernels.js';
import { Rng } from '../../src/rng.js';
import { KIB } from '../../src/units.js';

describe('in place in the arena', () => {
  it('stages no byte when every operand is pooled, and stages ordinary Buffers', () => {
    const pool = defaultArena().pool;
    const rng = new Rng(1);
    const lengthBytes = 64 * KIB;
    const data = Array.from({ length: 6 }, () => pool.acquire(lengthBytes).fill(rng.bytes(lengthBytes)));
    const [p, q, dx, dy] = Array.from({ length: 4 }, () => pool.acquire(lengthBytes));
    const kernels = defaultKernels();
    try {
      const before = kernels.stagedBytes;
      computePQ(data, p!, q!);
      computeP(data, p!);
      gfMulXorInto(p!, data[0]!, 7);
      recoverDataPair([data[0]!, null, data[2]!, null, data[4]!, data[5]!], p!, q!, 1, 3, dx!, dy!);
      expect(kernels.stagedBytes - before).toBe(0);

      // An ordinary output Buffer is computed in scratch and copied out once.
      computeP(data, Buffer.alloc(lengthBytes));
      expect(kernels.stagedBytes - before).toBe(lengthBytes);
      // A length that is not a multiple of 64 bytes stages only its tail (every operand of it).
      const tailBytes = 13;
      computeP(data.map((block) => block.subarray(0, lengthBytes - 64 + tailBytes)), p!.subarray(0, lengthBytes - 64 + tailBytes));
      expect(kernels.stagedBytes - before).toBe(lengthBytes + 7 * tailBytes);
    } finally {
      for (const buffer of [...data, p!, q!, dx!, dy!]) pool.release(buffer);
    }
  });

  it('keeps every pooled view attached: the memory never grows', async () => {
    const arena = defaultArena();
    const bytes = arena.bytes;
    const view = arena.pool.acquire(4 * KIB).fill(9);
    try {
      // Work that stages through scratch and reconstructs (allocating ordinary Buffers).
      const rng = new Rng(2);
      const data = Array.from({ length: 5 }, () => rng.bytes(100 * KIB + 1));
      const p = computeP(data);
      reconstructRow({ data: [null, ...data.slice(1)], p }, 100 * KIB + 1);
      expect(arena.bytes).toBe(bytes);
      expect(bytes.byteLength).toBe(arena.sizeBytes);
      expect(view.byteLength).toBe(4 * KIB);
      expect(view.every((byte) => byte === 9)).toBe(true);
    } finally {
      arena.pool.release(view);
    }

    const wabt = await initWabt();
    const built = readFileSync(fileURLToPath(new URL('../../dist/src/parity/kernels.wasm', import.meta.url)));
    const module = wabt.readWasm(built, { readDebugNames: true, simd: true });
    const text = module.toText({});
    module.destroy();
    expect(text).toContain('i8x16.swizzle');
    expect(text).not.toContain('memory.grow');
  });
});
