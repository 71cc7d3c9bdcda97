// Proves: every pooled buffer starts on a 4 KiB boundary of the arena's memory and has exactly the size asked, and the pool lends no more than its named capacity (tryAcquire gives undefined, acquire asserts) until buffers come back.
import { describe, expect, it } from 'vitest';
import { Arena, ARENA_RESERVED_BYTES } from '../../src/memory/arena.js';
import { POOL_ALIGNMENT_BYTES } from '../../src/memory/buffer-pool.js';
import { KIB, MIB } from '../../src/units.js';

describe('buffer pool alignment and bound', () => {
  it('aligns every buffer to 4 KiB inside the arena, past the reserved first page', () => {
    const arena = new Arena({ poolBytes: 4 * MIB });
    const sizes = [1, 100, 4 * KIB, 4 * KIB + 1, 12 * KIB, 64 * KIB, 1 * MIB - 1, 3 * 1000];
    const buffers = sizes.map((sizeBytes) => arena.pool.acquire(sizeBytes));
    buffers.forEach((buffer, i) => {
      expect(buffer.length, `size ${sizes[i]}`).toBe(sizes[i]);
      expect(buffer.byteOffset % POOL_ALIGNMENT_BYTES, `offset of ${sizes[i]}`).toBe(0);
      expect(buffer.byteOffset).toBeGreaterThanOrEqual(ARENA_RESERVED_BYTES);
      expect(arena.holds(buffer)).toBe(true);
    });
    // No two lent buffers share a byte.
    const ranges = buffers.map((b) => [b.byteOffset, b.byteOffset + b.length] as const).sort((a, b) => a[0] - b[0]);
    for (let i = 1; i < ranges.length; i++) expect(ranges[i]![0]).toBeGreaterThanOrEqual(ranges[i - 1]![1]);
  });

  it('lends at most its capacity, then again after a release', () => {
    const arena = new Arena({ poolBytes: 1 * MIB });
    const pool = arena.pool;
    expect(pool.capacityBytes).toBe(1 * MIB);
    const blocks = Array.from({ length: 16 }, () => pool.acquire(64 * KIB));
    expect(pool.inUseBytes).toBe(1 * MIB);
    expect(pool.tryAcquire(1)).toBeUndefined();
    expect(() => pool.acquire(4 * KIB)).toThrow(/assertion failed: buffer pool has room/);
    expect(pool.tryAcquire(2 * MIB)).toBeUndefined();
    pool.release(blocks.pop()!);
    const again = pool.acquire(64 * KIB);
    expect(again.length).toBe(64 * KIB);
    expect(pool.tryAcquire(1)).toBeUndefined();
    expect(pool.inUseBytesHighWater).toBe(1 * MIB);
  });

  it('refuses sizes that are not positive integers and arenas of impossible size', () => {
    const arena = new Arena({ poolBytes: 64 * KIB });
    expect(() => arena.pool.acquire(0)).toThrow(/positive integer/);
    expect(() => arena.pool.acquire(1.5)).toThrow(/positive integer/);
    expect(() => new Arena({ poolBytes: 4 * KIB })).toThrow(/multiple of 65536/);
  });
});
