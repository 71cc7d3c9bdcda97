// Per-stripe ordering: operations on one stripe run one at a time in arrival order; different
// stripes proceed in parallel. A chain of promises per busy stripe, dropped when idle. The lock
// knows which stripes are held, so code that must run under a stripe's lock can assert it.

import { assert } from '../units.js';

export class StripeLocks {
  private readonly tails = new Map<number, Promise<void>>();
  /** Stripes whose holder is running now. */
  private readonly held = new Set<number>();

  get busyCount(): number {
    return this.tails.size;
  }

  /** True while some operation holds `stripe`'s lock (between acquiring and releasing it). */
  isHeld(stripe: number): boolean {
    return this.held.has(stripe);
  }

  async with<T>(stripe: number, fn: () => Promise<T>): Promise<T> {
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
      release();
      if (this.tails.get(stripe) === tail) this.tails.delete(stripe);
    }
  }
}
