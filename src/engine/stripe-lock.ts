// Per-stripe ordering: operations on one stripe run one at a time in arrival order; different
// stripes proceed in parallel. A chain of promises per busy stripe, dropped when idle.

export class StripeLocks {
  private readonly tails = new Map<number, Promise<void>>();

  get busyCount(): number {
    return this.tails.size;
  }

  async with<T>(stripe: number, fn: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(stripe) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((resolve) => { release = resolve; });
    const tail = previous.then(() => mine);
    this.tails.set(stripe, tail);
    await previous;
    try {
      return await fn();
    } finally {
      release();
      if (this.tails.get(stripe) === tail) this.tails.delete(stripe);
    }
  }
}
