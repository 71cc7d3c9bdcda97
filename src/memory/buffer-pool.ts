// A bounded, reusable pool of 4 KiB-aligned buffers carved from one region of an ArrayBuffer
// (the WebAssembly arena, so parity kernels run on pooled buffers without a copy). Buddy
// allocation: every block is a power of two of 4 KiB pages, aligned to its own size within
// the region, and a released block merges with its free buddy, so a long mix of sizes does
// not fragment the region for good. Nothing here allocates memory: it hands out views.

import { assert, assertNever, KIB } from '../units.js';

/** Every buffer starts on a multiple of this (relative to the region's ArrayBuffer), for O_DIRECT. */
export const POOL_ALIGNMENT_BYTES = 4 * KIB;

export const POOL_CAPACITY_BYTES_MAX = 2 ** 31;

export interface PoolRegion {
  bytes: ArrayBuffer;
  offsetBytes: number;
  sizeBytes: number;
}

interface Lent {
  order: number;
  buffer: Buffer;
  /** Lent as part of a set (acquireSet), not on its own. */
  inSet: boolean;
}

/** A caller of acquireSet waiting for room, first come first served. */
interface SetWaiter {
  sizesBytes: readonly number[];
  resolve: (buffers: Buffer[]) => void;
}

export class BufferPool {
  /** The named maximum: bytes of blocks that can be lent at once (the region's size). */
  readonly capacityBytes: number;
  /** Where the region starts in its ArrayBuffer. */
  readonly regionOffsetBytes: number;
  readonly #bytes: ArrayBuffer;
  readonly #baseBytes: number;
  /** Free blocks by order (block size POOL_ALIGNMENT_BYTES << order), as offsets from the base. */
  readonly #free: Set<number>[];
  readonly #lent = new Map<number, Lent>();
  #inUseBytes = 0;
  #inUseBytesHighWater = 0;
  /** acquireSet callers waiting for room (backpressure), served in order as buffers come back. */
  readonly #setWaiters: SetWaiter[] = [];
  /** Sets lent by acquireSet and not yet given back with releaseSet. */
  #setsLent = 0;
  /** A set larger than the whole pool is lent (ordinary memory) and runs alone. */
  #oversizedLent = false;
  /** Sets of ordinary memory lent because they could never fit the pool, over the pool's life. */
  oversizedSets = 0;

  constructor(region: PoolRegion) {
    const { bytes, offsetBytes, sizeBytes } = region;
    assert(offsetBytes % POOL_ALIGNMENT_BYTES === 0, `pool region offset ${offsetBytes} is a multiple of ${POOL_ALIGNMENT_BYTES}`);
    assert(sizeBytes > 0 && sizeBytes % POOL_ALIGNMENT_BYTES === 0, `pool region size ${sizeBytes} is a positive multiple of ${POOL_ALIGNMENT_BYTES}`);
    assert(offsetBytes + sizeBytes <= bytes.byteLength, 'pool region inside its ArrayBuffer');
    // Buddies are found by XOR of offsets, which JavaScript does in 32 bits.
    assert(sizeBytes <= POOL_CAPACITY_BYTES_MAX, `pool region of ${sizeBytes} bytes at most ${POOL_CAPACITY_BYTES_MAX}`);
    this.#bytes = bytes;
    this.#baseBytes = offsetBytes;
    this.regionOffsetBytes = offsetBytes;
    this.capacityBytes = sizeBytes;
    const pages = sizeBytes / POOL_ALIGNMENT_BYTES;
    this.#free = Array.from({ length: Math.floor(Math.log2(pages)) + 1 }, () => new Set<number>());
    // Cover the region with the largest aligned blocks that fit: a block whose buddy would lie
    // past the end never finds it free, so it never merges out of the region.
    let page = 0;
    while (page < pages) {
      let order = this.#free.length - 1;
      while ((page % (1 << order)) !== 0 || page + (1 << order) > pages) order--;
      this.#free[order]!.add(page * POOL_ALIGNMENT_BYTES);
      page += 1 << order;
    }
  }

  get inUseBytes(): number { return this.#inUseBytes; }
  get inUseBytesHighWater(): number { return this.#inUseBytesHighWater; }
  get buffersInUse(): number { return this.#lent.size; }
  /** acquireSet callers waiting for room now. */
  get setWaiters(): number { return this.#setWaiters.length; }

  /** True when `view` lies inside this pool's region (lent or not). */
  owns(view: ArrayBufferView): boolean {
    return view.buffer === this.#bytes && view.byteOffset >= this.#baseBytes &&
      view.byteOffset + view.byteLength <= this.#baseBytes + this.capacityBytes;
  }

  /**
   * A buffer of exactly `sizeBytes` (its block is rounded up to a power of two of 4 KiB pages),
   * or undefined when no free block is large enough. Contents are whatever was there before.
   */
  tryAcquire(sizeBytes: number): Buffer | undefined {
    // Messages are built only on failure: acquire and release run on every request.
    if (!Number.isSafeInteger(sizeBytes) || sizeBytes <= 0) assert(false, `buffer size ${sizeBytes} is a positive integer`);
    const want = orderFor(sizeBytes);
    let order = want;
    while (order < this.#free.length && this.#free[order]!.size === 0) order++;
    if (order >= this.#free.length) return undefined;
    const offset = first(this.#free[order]!);
    this.#free[order]!.delete(offset);
    while (order > want) { // split, keeping the lower half
      order--;
      this.#free[order]!.add(offset + blockBytes(order));
    }
    const buffer = Buffer.from(this.#bytes, this.#baseBytes + offset, sizeBytes);
    this.#lent.set(offset, { order, buffer, inSet: false });
    this.#inUseBytes += blockBytes(order);
    this.#inUseBytesHighWater = Math.max(this.#inUseBytesHighWater, this.#inUseBytes);
    return buffer;
  }

  /** As tryAcquire, for callers whose own bounds guarantee room: running out is a broken invariant. */
  acquire(sizeBytes: number): Buffer {
    const buffer = this.tryAcquire(sizeBytes);
    if (!buffer) assert(false, `buffer pool has room for ${sizeBytes} bytes (${this.#inUseBytes} of ${this.capacityBytes} in use in ${this.#lent.size} buffers)`);
    return buffer;
  }

  /**
   * Buffers of the sizes asked, all or none: at once when the pool has room for all of them and
   * nobody waits ahead, otherwise a promise that resolves when enough has come back (first come,
   * first served, so a large set is not starved by small ones). Backpressure, never failure:
   * the bytes lent by this pool never exceed its capacity. A set that does not fit the pool
   * even when no other set is lent gets ordinary memory and runs alone (no other set is lent
   * until it is back): the memory in flight is then that one set. Give the set back with
   * releaseSet. Never wait for a set while holding one (it would never come back to make room).
   */
  acquireSet(sizesBytes: readonly number[]): Buffer[] | Promise<Buffer[]> {
    if (this.#setWaiters.length === 0) {
      const buffers = this.#trySet(sizesBytes);
      if (buffers) return buffers;
    }
    return new Promise<Buffer[]>((resolve) => this.#setWaiters.push({ sizesBytes, resolve }));
  }

  /** Gives back every buffer of a set acquireSet returned; then serves the sets waiting for room. */
  releaseSet(buffers: readonly Buffer[]): void {
    assert(this.#setsLent > 0, 'a set is lent');
    this.#setsLent--;
    if (buffers.length > 0 && !this.owns(buffers[0]!)) {
      assert(this.#oversizedLent, 'a set of ordinary memory is the oversized one');
      this.#oversizedLent = false;
    } else {
      for (const buffer of buffers) this.#releaseOne(buffer);
    }
    this.#serveSetWaiters();
  }

  #trySet(sizesBytes: readonly number[]): Buffer[] | undefined {
    if (this.#oversizedLent) return undefined;
    const buffers: Buffer[] = [];
    for (const size of sizesBytes) {
      const buffer = this.tryAcquire(size);
      if (!buffer) {
        for (const taken of buffers) this.#releaseOne(taken);
        // With no other set lent, nothing more will come back: this set never fits the pool.
        if (this.#setsLent > 0) return undefined;
        this.#setsLent++;
        this.#oversizedLent = true;
        this.oversizedSets++;
        return sizesBytes.map((sizeBytes) => Buffer.alloc(sizeBytes));
      }
      buffers.push(buffer);
    }
    for (const buffer of buffers) this.#lent.get(buffer.byteOffset - this.#baseBytes)!.inSet = true;
    this.#setsLent++;
    return buffers;
  }

  /**
   * Test only, for a simulated process death (the fault simulation's crash): the operations in
   * flight are abandoned and never give their sets back, where a real restart would start with
   * a fresh pool. Takes back every buffer lent in a set and forgets the sets waiting; buffers
   * lent on their own (the kernels' and the write path's scratch, held for good) stay lent.
   */
  abandonSetsForTests(): void {
    for (const lent of [...this.#lent.values()]) if (lent.inSet) this.#releaseOne(lent.buffer);
    this.#setsLent = 0;
    this.#oversizedLent = false;
    this.#setWaiters.length = 0;
  }

  #serveSetWaiters(): void {
    while (this.#setWaiters.length > 0) {
      const buffers = this.#trySet(this.#setWaiters[0]!.sizesBytes);
      if (!buffers) return;
      this.#setWaiters.shift()!.resolve(buffers);
    }
  }

  /** Gives back a buffer that tryAcquire/acquire returned; exactly once. */
  release(buffer: Buffer): void {
    this.#releaseOne(buffer);
    this.#serveSetWaiters();
  }

  #releaseOne(buffer: Buffer): void {
    assert(this.owns(buffer), 'released buffer belongs to this pool');
    let offset = buffer.byteOffset - this.#baseBytes;
    const lent = this.#lent.get(offset);
    if (!lent || lent.buffer !== buffer) assert(false, `released buffer at pool offset ${offset} is lent out now (not released twice, not a view made elsewhere)`);
    this.#lent.delete(offset);
    let order = lent.order;
    this.#inUseBytes -= blockBytes(order);
    while (order < this.#free.length - 1) {
      const buddy = offset ^ blockBytes(order);
      if (!this.#free[order]!.delete(buddy)) break;
      offset = Math.min(offset, buddy);
      order++;
    }
    this.#free[order]!.add(offset);
  }
}

function blockBytes(order: number): number {
  return POOL_ALIGNMENT_BYTES * 2 ** order;
}

function orderFor(sizeBytes: number): number {
  const pages = Math.ceil(sizeBytes / POOL_ALIGNMENT_BYTES);
  return Math.ceil(Math.log2(pages));
}

function first(set: Set<number>): number {
  for (const value of set) return value;
  return assertNever('first of a non-empty set');
}
