// Proves: the NBD server's payload memory (PayloadBudget shared by the connections, one
// PayloadPool per connection) stays within its bounds and circulates instead of allocating:
// - a connection reuses its own buffers (no allocation in the steady state);
// - a connection never holds more than its own bound; a buffer it gets back makes room;
// - when the budget is spent, a connection waits and is told when room comes, first come first
//   served;
// - a buffer given back while another connection waits for exactly its size is handed over:
//   the same memory, no new allocation, the bytes never leave the budget (handOver);
// - of another size, it is dropped and its bytes granted to the waiter instead;
// - a closed connection gives back everything, also what comes back after it closed.
import { describe, expect, it } from 'vitest';
import { PayloadBudget, PayloadPool } from '../../src/daemon/nbd-buffers.js';

const MIB = 1024 * 1024;

/** A pool with a counter of its onReturned calls (the connection's retry hook). */
function pool(budget: PayloadBudget, capacityBytes: number, payloadBytesMax = MIB): { pool: PayloadPool; returned: () => number } {
  let returned = 0;
  return { pool: new PayloadPool(budget, capacityBytes, payloadBytesMax, () => { returned++; }), returned: () => returned };
}

// (Buffers are compared by identity with ===: a failed toBe on two 1 MiB buffers prints them.)
const microtasks = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('NBD payload budget and pools', () => {
  it('a connection reuses the buffers it gave back: no allocation in the steady state', () => {
    const budget = new PayloadBudget(4 * MIB);
    const { pool: a } = pool(budget, 2 * MIB);
    const first = a.acquire(MIB)!;
    a.release(first);
    for (let round = 0; round < 100; round++) {
      const again = a.acquire(700_000)!; // the 1 MiB class
      expect(again === first, 'the same buffer').toBe(true);
      a.release(again);
    }
    expect(budget.buffersAllocated).toBe(1);
    expect(first.length).toBe(MIB);
  });

  it('a connection stays within its own bound; a buffer coming back makes room', () => {
    const budget = new PayloadBudget(8 * MIB);
    const { pool: a, returned } = pool(budget, 2 * MIB);
    const one = a.acquire(MIB)!;
    const two = a.acquire(MIB)!;
    expect(a.acquire(MIB), 'a third 1 MiB buffer is over the connection bound').toBeUndefined();
    expect(a.stats.heldBytes).toBe(2 * MIB);
    a.release(one);
    expect(returned()).toBe(1);
    expect(a.acquire(MIB) === one, 'the same buffer').toBe(true);
    // Idle buffers of another size make way for the size asked for.
    a.release(two);
    a.release(one);
    const small = a.acquire(4096)!;
    expect(small.length).toBe(4096);
    expect(a.stats.heldBytes).toBeLessThanOrEqual(2 * MIB);
    expect(budget.heldBytes).toBe(a.stats.heldBytes);
  });

  it('a spent budget makes connections wait, first come first served, and tells each when room comes', async () => {
    const budget = new PayloadBudget(2 * MIB);
    const { pool: a } = pool(budget, 2 * MIB);
    const { pool: b, returned: bReturned } = pool(budget, 2 * MIB);
    const { pool: c, returned: cReturned } = pool(budget, 2 * MIB);
    const held = [a.acquire(MIB)!, a.acquire(MIB)!];
    expect(b.acquire(MIB), 'budget spent').toBeUndefined();
    expect(c.acquire(4096), 'a small request queues behind the large one').toBeUndefined();
    expect(budget.hasWaiters).toBe(true);
    a.release(held.pop()!);
    await microtasks();
    expect(bReturned(), 'the first waiter is told').toBeGreaterThan(0);
    expect(cReturned(), 'the second still waits').toBe(0);
    expect(b.acquire(MIB)).toBeDefined();
    a.release(held.pop()!);
    await microtasks();
    expect(cReturned()).toBeGreaterThan(0);
    expect(c.acquire(4096)).toBeDefined();
    expect(budget.heldBytes).toBeLessThanOrEqual(budget.capacityBytes);
  });

  it('a buffer given back while another connection waits for its size is handed over: same memory, no new allocation', async () => {
    const budget = new PayloadBudget(2 * MIB);
    const { pool: a } = pool(budget, 2 * MIB);
    const { pool: b, returned: bReturned } = pool(budget, 2 * MIB);
    const mine = a.acquire(MIB)!;
    a.acquire(MIB);
    const allocated = budget.buffersAllocated;
    expect(b.acquire(MIB)).toBeUndefined();
    const heldBefore = budget.heldBytes;
    a.release(mine);
    expect(budget.heldBytes, 'the bytes change hands without leaving the budget').toBe(heldBefore);
    expect(a.stats.heldBytes, 'the giver no longer counts them').toBe(MIB);
    await microtasks();
    expect(bReturned()).toBeGreaterThan(0);
    const theirs = b.acquire(MIB);
    expect(theirs === mine, 'the waiter gets the very buffer given back').toBe(true);
    expect(budget.buffersAllocated, 'nobody allocated').toBe(allocated);
    expect(b.stats.heldBytes).toBe(MIB);
    expect(a.stats.heldBytes + b.stats.heldBytes).toBe(budget.heldBytes);
  });

  it('a buffer of another size than the waiter wants is dropped, and its bytes granted', async () => {
    const budget = new PayloadBudget(2 * MIB);
    const { pool: a } = pool(budget, 2 * MIB);
    const { pool: b, returned: bReturned } = pool(budget, 2 * MIB, 2 * MIB);
    const one = a.acquire(MIB)!;
    const two = a.acquire(MIB)!;
    expect(b.acquire(2 * MIB)).toBeUndefined();
    a.release(one);
    await microtasks();
    expect(bReturned(), 'half the room is not enough').toBe(0);
    expect(budget.heldBytes).toBe(MIB);
    a.close(); // `two` is still lent out
    a.release(two);
    await microtasks();
    expect(bReturned()).toBeGreaterThan(0);
    const big = b.acquire(2 * MIB)!;
    expect(big.length).toBe(2 * MIB);
    expect(big === one).toBe(false);
    expect(a.stats.heldBytes).toBe(0);
    expect(budget.heldBytes).toBe(2 * MIB);
  });

  it('a closed connection gives back its idle buffers at once and lent ones as they come back', () => {
    const budget = new PayloadBudget(4 * MIB);
    const { pool: a } = pool(budget, 4 * MIB);
    const lent = a.acquire(MIB)!;
    a.release(a.acquire(MIB)!); // a second buffer, now idle
    const idleHeld = a.stats.heldBytes - a.stats.lentBytes;
    a.close();
    expect(budget.heldBytes).toBe(a.stats.lentBytes);
    expect(idleHeld).toBeGreaterThan(0);
    a.release(lent);
    expect(budget.heldBytes, 'everything back').toBe(0);
    expect(a.stats.heldBytes).toBe(0);
  });

  it('a connection that stops reading withdraws its wait; the bytes go to the next waiter', async () => {
    const budget = new PayloadBudget(MIB);
    const { pool: a } = pool(budget, MIB);
    const { pool: b, returned: bReturned } = pool(budget, MIB);
    const { pool: c, returned: cReturned } = pool(budget, MIB);
    const held = a.acquire(MIB)!;
    expect(b.acquire(MIB)).toBeUndefined();
    expect(c.acquire(MIB)).toBeUndefined();
    b.cancelWait();
    a.release(held);
    await microtasks();
    expect(bReturned()).toBe(0);
    expect(cReturned()).toBeGreaterThan(0);
    expect(c.acquire(MIB) === held, 'the same buffer').toBe(true);
    expect(budget.heldBytes).toBe(MIB);
  });
});
