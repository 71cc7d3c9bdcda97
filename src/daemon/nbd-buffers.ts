// Payload memory for the NBD server: every READ and WRITE payload lives in a buffer from its
// connection's PayloadPool, and every pool draws the bytes it holds from the server's one
// PayloadBudget. Buffers are reused, so a connection in a steady state allocates none.
//
// What is counted: a pool holds buffers lent out (a write's payload until the backend lets it
// go, a read's data until its reply has left) and idle buffers kept for reuse; both count
// against the connection's bound and the server's budget, so the server never holds more
// payload memory than serverPayloadBytesMax. Idle buffers give way: a connection's own idle
// buffers of another size make room for the size it needs, and when the budget runs short every
// pool's idle buffers are dropped and, while anyone waits, buffers coming back are not kept:
// one the first waiter wants (its size) is handed straight to it, any other is dropped.

import { assert } from '../units.js';

/** The smallest payload buffer; shorter payloads use one this size. */
export const PAYLOAD_CLASS_BYTES_MIN = 4096;

interface BudgetWaiter {
  readonly bytes: number;
  state: 'waiting' | 'granted' | 'cancelled';
  readonly onGranted: () => void;
  /** A buffer of exactly `bytes` handed over with the grant by a pool that gave it back (handOver). */
  buffer?: Buffer;
}

/** Payload bytes the server may hold. First come, first served, so a large request is not starved by small ones. */
export class PayloadBudget {
  private availableBytes: number;
  private readonly waiters: BudgetWaiter[] = [];
  /** Pools whose idle buffers are dropped when a reservation would otherwise wait. */
  private readonly pools = new Set<PayloadPool>();
  private heldBytesHighWater = 0;
  /** Payload buffers allocated over the server's life: in a steady state this stops growing. */
  buffersAllocated = 0;

  constructor(readonly capacityBytes: number) {
    this.availableBytes = capacityBytes;
  }

  /** Bytes held by every pool, lent or idle. */
  get heldBytes(): number {
    return this.capacityBytes - this.availableBytes;
  }

  get heldBytesMax(): number {
    return this.heldBytesHighWater;
  }

  get hasWaiters(): boolean {
    return this.waiters.length > 0;
  }

  register(pool: PayloadPool): void {
    this.pools.add(pool);
  }

  unregister(pool: PayloadPool): void {
    this.pools.delete(pool);
  }

  /** 'granted' now, or a waiter whose onGranted runs (asynchronously) once the bytes are reserved for it. */
  reserve(bytes: number, onGranted: () => void): 'granted' | BudgetWaiter {
    if (!(bytes > 0 && bytes <= this.capacityBytes)) assert(false, `budget request of ${bytes} bytes fits capacity ${this.capacityBytes}`);
    // Idle buffers make way before anyone waits. While someone waits, returning buffers are
    // dropped (PayloadPool.release), so no pool refills its idle list ahead of the queue.
    if (this.waiters.length === 0 && bytes > this.availableBytes) this.dropIdleBuffers();
    if (this.waiters.length === 0 && bytes <= this.availableBytes) {
      this.take(bytes);
      return 'granted';
    }
    const waiter: BudgetWaiter = { bytes, state: 'waiting', onGranted };
    this.waiters.push(waiter);
    return waiter;
  }

  release(bytes: number): void {
    this.availableBytes += bytes;
    assert(this.availableBytes <= this.capacityBytes, 'budget released no more than was reserved');
    this.grantWaiters();
  }

  /**
   * Passes a buffer a pool gives back straight to the first waiter when it waits for exactly that
   * size: its bytes change hands without leaving the budget, and nobody allocates a new buffer
   * (under contention, buffers circulate between connections instead of being dropped and made
   * again). False when the first waiter wants another size (the caller drops the buffer).
   */
  handOver(buffer: Buffer): boolean {
    const waiter = this.waiters[0];
    if (waiter === undefined || waiter.bytes !== buffer.length) return false;
    this.waiters.shift();
    waiter.state = 'granted';
    waiter.buffer = buffer;
    queueMicrotask(() => {
      if (waiter.state === 'granted') waiter.onGranted();
    });
    return true;
  }

  /** Withdraws a waiter; bytes already granted to it are returned. */
  cancel(waiter: BudgetWaiter): void {
    if (waiter.state === 'waiting') {
      this.waiters.splice(this.waiters.indexOf(waiter), 1);
      waiter.state = 'cancelled';
      this.grantWaiters();
    } else if (waiter.state === 'granted') {
      waiter.state = 'cancelled';
      this.release(waiter.bytes);
    }
  }

  private take(bytes: number): void {
    this.availableBytes -= bytes;
    this.heldBytesHighWater = Math.max(this.heldBytesHighWater, this.heldBytes);
  }

  private dropIdleBuffers(): void {
    for (const pool of this.pools) this.availableBytes += pool.dropIdle();
    assert(this.availableBytes <= this.capacityBytes, 'pools dropped no more than they held');
  }

  private grantWaiters(): void {
    while (this.waiters.length > 0 && this.waiters[0]!.bytes <= this.availableBytes) {
      const waiter = this.waiters.shift()!;
      this.take(waiter.bytes);
      waiter.state = 'granted';
      // Deferred so a release inside one connection's callback never re-enters another connection.
      queueMicrotask(() => {
        if (waiter.state === 'granted') waiter.onGranted();
      });
    }
  }
}

/**
 * One connection's payload buffers, by size class: powers of two from PAYLOAD_CLASS_BYTES_MIN
 * up to the largest payload (which is a class of its own when it is not a power of two).
 * Bounded by `capacityBytes` (the connection's connectionPayloadBytesMax), counting every
 * buffer it holds, lent or idle; a buffer always has exactly its class's length.
 */
export class PayloadPool {
  private readonly classBytes: number[] = [];
  private readonly idle: Buffer[][] = [];
  private heldBytes = 0;
  private lentBytes = 0;
  private heldBytesHighWater = 0;
  /** A reservation of the budget this pool waits for, or has been granted and not yet used. */
  private waiter: BudgetWaiter | undefined;
  private closed = false;

  /**
   * `onReturned` runs after every release (and when a budget reservation comes through): the
   * connection uses it to retry a request that waits for room.
   */
  constructor(
    private readonly budget: PayloadBudget,
    readonly capacityBytes: number,
    payloadBytesMax: number,
    private readonly onReturned: () => void,
  ) {
    assert(payloadBytesMax >= 1 && payloadBytesMax <= capacityBytes && capacityBytes <= budget.capacityBytes,
      `largest payload ${payloadBytesMax} <= connection bound ${capacityBytes} <= server budget ${budget.capacityBytes}`);
    for (let bytes = PAYLOAD_CLASS_BYTES_MIN; ; bytes *= 2) {
      this.classBytes.push(Math.min(bytes, Math.max(payloadBytesMax, PAYLOAD_CLASS_BYTES_MIN)));
      this.idle.push([]);
      if (bytes >= payloadBytesMax) break;
    }
    assert(this.classBytes[this.classBytes.length - 1]! <= capacityBytes, 'the largest class fits the connection bound');
    budget.register(this);
  }

  /** Bytes this pool holds (lent and idle), and the most it ever held. */
  get stats(): { heldBytes: number; lentBytes: number; heldBytesMax: number } {
    return { heldBytes: this.heldBytes, lentBytes: this.lentBytes, heldBytesMax: this.heldBytesHighWater };
  }

  /**
   * A buffer of at least `lengthBytes` (its class's length; its contents are whatever was there
   * before), or undefined when there is no room yet: onReturned runs when there may be.
   */
  acquire(lengthBytes: number): Buffer | undefined {
    assert(!this.closed, 'acquire from an open pool');
    const index = this.classIndex(lengthBytes);
    const bytes = this.classBytes[index]!;
    const idle = this.idle[index]!;
    if (idle.length > 0) return this.lend(idle.pop()!);
    if (this.waiter !== undefined) {
      if (this.waiter.state === 'waiting') return undefined;
      // Granted while we waited: used if it is for this size, otherwise given back.
      const granted = this.waiter;
      this.waiter = undefined;
      if (granted.bytes === bytes) return this.grow(bytes, granted.buffer);
      this.budget.release(granted.bytes);
    }
    // This connection's bound: idle buffers of other sizes make way.
    for (let other = this.idle.length - 1; this.heldBytes + bytes > this.capacityBytes && other >= 0; other--) {
      while (this.idle[other]!.length > 0 && this.heldBytes + bytes > this.capacityBytes) this.drop(this.idle[other]!.pop()!, true);
    }
    if (this.heldBytes + bytes > this.capacityBytes) return undefined; // lent buffers fill it: one comes back first
    const reservation = this.budget.reserve(bytes, () => this.onReturned());
    if (reservation === 'granted') return this.grow(bytes);
    this.waiter = reservation;
    return undefined;
  }

  /** Takes back a buffer acquire() lent; it is kept for reuse unless the server's budget is short. */
  release(buffer: Buffer): void {
    const bytes = buffer.length;
    this.lentBytes -= bytes;
    assert(this.lentBytes >= 0, 'released no more than was lent');
    if (this.closed || this.budget.hasWaiters) {
      if (this.budget.handOver(buffer)) this.heldBytes -= bytes;
      else this.drop(buffer, true);
    } else {
      this.idle[this.classIndex(bytes)]!.push(buffer);
    }
    this.onReturned();
  }

  /** Drops every idle buffer; returns their bytes, which the caller gives back to the budget. */
  dropIdle(): number {
    let droppedBytes = 0;
    for (const idle of this.idle) {
      while (idle.length > 0) droppedBytes += this.drop(idle.pop()!, false);
    }
    return droppedBytes;
  }

  /** The connection is gone: idle buffers are dropped now, lent ones as they come back. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.cancelWait();
    this.budget.release(this.dropIdle());
    this.budget.unregister(this);
  }

  /** Withdraws a reservation the connection no longer needs (it stopped reading). */
  cancelWait(): void {
    if (this.waiter === undefined) return;
    this.budget.cancel(this.waiter);
    this.waiter = undefined;
  }

  private classIndex(lengthBytes: number): number {
    if (!(lengthBytes >= 1 && lengthBytes <= this.classBytes[this.classBytes.length - 1]!)) {
      assert(false, `payload of ${lengthBytes} bytes fits the largest class ${this.classBytes[this.classBytes.length - 1]}`);
    }
    let index = 0;
    while (this.classBytes[index]! < lengthBytes) index++;
    return index;
  }

  /** Takes `bytes` of the budget granted to this pool as a buffer: `handedOver` when another pool gave one back, else a new one. */
  private grow(bytes: number, handedOver?: Buffer): Buffer {
    this.heldBytes += bytes;
    assert(this.heldBytes <= this.capacityBytes, `pool holds ${this.heldBytes} bytes, at most ${this.capacityBytes}`);
    this.heldBytesHighWater = Math.max(this.heldBytesHighWater, this.heldBytes);
    if (handedOver) return this.lend(handedOver);
    this.budget.buffersAllocated++;
    // Its own memory (not Node's shared slab), so dropping it really frees it.
    return this.lend(Buffer.allocUnsafeSlow(bytes));
  }

  private lend(buffer: Buffer): Buffer {
    this.lentBytes += buffer.length;
    return buffer;
  }

  private drop(buffer: Buffer, giveBack: boolean): number {
    this.heldBytes -= buffer.length;
    if (giveBack) this.budget.release(buffer.length);
    return buffer.length;
  }
}
