// Proves: releasing a buffer twice, or releasing anything the pool did not lend (a subarray of a lent buffer, an ordinary Buffer, another arena's buffer), is an assertion failure that leaves the pool's accounting intact.
import { describe, expect, it } from 'vitest';
import { Arena } from '../../src/memory/arena.js';
import { KIB } from '../../src/units.js';

describe('buffer pool release checks', () => {
  it('asserts on a double release and on buffers it did not lend', () => {
    const arena = new Arena({ poolBytes: 256 * KIB });
    const other = new Arena({ poolBytes: 64 * KIB });
    const pool = arena.pool;
    const a = pool.acquire(8 * KIB);
    const b = pool.acquire(8 * KIB);
    pool.release(a);
    expect(() => pool.release(a)).toThrow(/not released twice/);
    expect(() => pool.release(b.subarray(4 * KIB))).toThrow(/not released twice, not a view made elsewhere/);
    // A view of the same bytes made another way is not the lent buffer either.
    expect(() => pool.release(Buffer.from(arena.bytes, b.byteOffset, b.length))).toThrow(/not a view made elsewhere/);
    expect(() => pool.release(Buffer.alloc(8 * KIB))).toThrow(/belongs to this pool/);
    expect(() => pool.release(other.pool.acquire(4 * KIB))).toThrow(/belongs to this pool/);
    // None of the refused releases changed the accounting: b is still lent, the rest is free.
    expect(pool.buffersInUse).toBe(1);
    expect(pool.inUseBytes).toBe(8 * KIB);
    pool.release(b);
    expect(pool.inUseBytes).toBe(0);
    expect(pool.acquire(256 * KIB).length).toBe(256 * KIB);
  });
});
