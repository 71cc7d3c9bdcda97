// Proves: the stripe locks know which stripe is held and bound their waiters, and every array
// method that must run under a stripe's lock (whole-chunk reads, rebuild, scrub repair) fails
// its assertion when called without it, and works under it.
import { describe, expect, it } from 'vitest';
import { StripeLocks } from '../../src/engine/stripe-lock.js';
import { makeMemoryMembers, openMemoryArray } from '../helpers/memory-array.js';

describe('stripe locks', () => {
  it('tell whether a stripe is held, one holder at a time', async () => {
    const locks = new StripeLocks();
    const seen: boolean[] = [];
    let inside = 0;
    let insideMax = 0;
    await Promise.all([1, 2, 3].map(() => locks.with(5, async () => {
      inside++;
      insideMax = Math.max(insideMax, inside);
      seen.push(locks.isHeld(5), locks.isHeld(6));
      await new Promise((resolve) => setImmediate(resolve));
      inside--;
    })));
    expect(insideMax).toBe(1);
    expect(seen).toEqual([true, false, true, false, true, false]);
    expect(locks.isHeld(5)).toBe(false);
    expect(locks.waiting).toBe(0);
  });

  it('refuse a waiter past their bound (an assertion: the callers are bounded upstream)', async () => {
    const locks = new StripeLocks(2);
    let release!: () => void;
    const gate = new Promise<void>((resolve) => { release = resolve; });
    const first = locks.with(1, () => gate);
    const second = locks.with(2, () => gate);
    expect(locks.waiting).toBe(2);
    await expect(locks.with(3, async () => {})).rejects.toThrow(/assertion failed: stripe-lock waiters within their bound \(2\)/);
    release();
    await Promise.all([first, second]);
    await expect(locks.with(3, async () => 'ran')).resolves.toBe('ran');
  });
});

describe('array methods that need the stripe lock', () => {
  it('assert it is held, and work under it', async () => {
    const array = await openMemoryArray(await makeMemoryMembers({ level: 6, raidDevices: 5 }));
    await array.write(0, Buffer.alloc(4096, 7));
    const role = array.geometry.stripeMap(0).dataRoles[0]!;
    const calls: [string, () => Promise<unknown>][] = [
      ['readStripeChunks', () => array.readStripeChunks(0)],
      ['reconstructChunk', () => array.reconstructChunk(0, role)],
      ['repairUnreadable', () => array.repairUnreadable(0)],
      ['repairBlocks', () => array.repairBlocks(0, [])],
      ['journaled', () => array.journaled(0, async () => {})],
    ];
    for (const [name, call] of calls) {
      await expect(call(), `${name} outside the lock`).rejects.toThrow(/assertion failed: stripe 0 .*under its lock/);
      await expect(array.withStripe(0, call), `${name} under the lock`).resolves.not.toThrow();
    }
    const rebuilt = await array.withStripe(0, () => array.reconstructChunk(0, role));
    expect(rebuilt.subarray(0, 4096).equals(Buffer.alloc(4096, 7))).toBe(true);
    await array.close();
  });
});
