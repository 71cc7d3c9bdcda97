// Proves: the pool reuses what comes back: a long random mix of acquires and releases of many sizes never lends overlapping bytes or more than the capacity, a released buffer's memory is lent again, and once everything is back the whole capacity is one buffer again (freed neighbours merge).
import { describe, expect, it } from 'vitest';
import { Arena } from '../../src/memory/arena.js';
import { Rng } from '../../src/rng.js';
import { KIB, MIB } from '../../src/units.js';

describe('buffer pool reuse', () => {
  it('hands a released buffer\'s memory out again', () => {
    const pool = new Arena({ poolBytes: 1 * MIB }).pool;
    const first = pool.acquire(64 * KIB);
    const offset = first.byteOffset;
    pool.release(first);
    const second = pool.acquire(64 * KIB);
    expect(second.byteOffset).toBe(offset);
    expect(second).not.toBe(first);
  });

  it('survives 20000 random acquires and releases without overlap, and merges back whole', () => {
    const capacityBytes = 8 * MIB;
    const pool = new Arena({ poolBytes: capacityBytes }).pool;
    const rng = new Rng(42);
    const sizes = [4 * KIB, 4 * KIB + 1, 8 * KIB, 20 * KIB, 64 * KIB, 256 * KIB, 1 * MIB];
    const lent: Buffer[] = [];
    const tags = new Map<Buffer, number>();
    let refused = 0;
    for (let step = 0; step < 20_000; step++) {
      if (lent.length > 0 && rng.next() < 0.45) {
        const buffer = lent.splice(rng.int(lent.length), 1)[0]!;
        // Its tag is intact: no buffer lent since shared a byte with it.
        expect(buffer.equals(Buffer.alloc(buffer.length, tags.get(buffer)))).toBe(true);
        tags.delete(buffer);
        pool.release(buffer);
        continue;
      }
      const buffer = pool.tryAcquire(sizes[rng.int(sizes.length)]!);
      if (!buffer) {
        refused++;
        continue;
      }
      // A tag written into each lent buffer and checked at its release catches any overlap.
      const tag = step & 0xff;
      buffer.fill(tag);
      tags.set(buffer, tag);
      lent.push(buffer);
      expect(pool.inUseBytes).toBeLessThanOrEqual(capacityBytes);
    }
    // Sorted by offset, no lent buffer runs into the next one.
    const ranges = lent.map((b) => [b.byteOffset, b.byteOffset + b.length] as const).sort((a, b) => a[0] - b[0]);
    for (let i = 1; i < ranges.length; i++) expect(ranges[i]![0]).toBeGreaterThanOrEqual(ranges[i - 1]![1]);
    expect(refused).toBeGreaterThan(0); // the run did reach the bound
    for (const buffer of lent.splice(0)) pool.release(buffer);
    expect(pool.inUseBytes).toBe(0);
    expect(pool.buffersInUse).toBe(0);
    expect(pool.acquire(capacityBytes).length).toBe(capacityBytes);
  });
});
