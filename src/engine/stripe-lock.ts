// Per-stripe ordering: operations on one stripe run one at a time in arrival order; different
// stripes proceed in parallel. A chain of promises per busy stripe, dropped when idle. The lock
// knows which stripes are held, so code that must run under a stripe's lock can assert it, and
// it counts the operations holding or waiting for any lock against a named bound.

import { assert } from '../units.js';

/**
 * Operations holding or waiting for stripe locks at once, over all stripes. Each array call
 * keeps at most STRIPES_IN_FLIGHT_MAX stripes in flight, and its callers are bounded where they
 * enter (the daemon asserts its NBD, fast-write and control bounds fit under this one).
 */
export const STRIPE_LOCK_WAITERS_MAX = 1 << 20;

export class StripeLocks {
  private readonly tails = new Map<number, Promise<void>>();
  /** Stripes whose holder is running now. */
  private readonly held = new Set<number>();
  /** Operations holding or waiting for a lock. */
  private entries = 0;
  readonly waitersMax: number;

  constructor(waitersMax = STRIPE_LOCK_WAITERS_MAX) {
    assert(Number.isSafeInteger(waitersMax) && waitersMax >= 1, 'stripe-lock waitersMax >= 1');
    this.waitersMax = waitersMax;
  }

  get busyCount(): number {
    return this.tails.size;
  }

  /** Operations holding or waiting for a stripe lock now. */
  get waiting(): number {
    return this.entries;
  }

  /** True while some operation holds `stripe`'s lock (between acquiring and releasing it). */
  isHeld(stripe: number): boolean {
    return this.held.has(stripe);
  }

  async with<T>(stripe: number, fn: () => Promise<T>): Promise<T> {
    assert(this.entries < this.waitersMax, `stripe-lock waiters within their bound (${this.waitersMax})`);
    this.entries++;
    const previous = this.tails.get(stripe) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((resolve) => { release = resolve; });
    const tail = previous.then(() => mine);
    this.tails.set(stripe, tail);
    await previous;
    assert(!this.held.has(stripe), `stripe ${stripe} has one holder at a time`);
    this.held.add(stripe);
    try {
      return await fn();
    } finally {
      this.held.delete(stripe);
      this.entries--;
      release();
      if (this.tails.get(stripe) === tail) this.tails.delete(stripe);
    }
  }
}
