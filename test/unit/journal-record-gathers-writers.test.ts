// Proves: a journal record waits (up to recordGatherMs) for writers that have begun and are on their way to durable(), so they share one record; a lone writer never waits, and the window's end writes the record for whoever has arrived.
import { describe, expect, it } from 'vitest';
import { decodeJournalRecord, type BlockCheck } from '../../src/format/journal-record.js';
import { JournalManager, type JournalStore } from '../../src/journal/manager.js';

class Store implements JournalStore {
  records: number[][] = [];
  async writeRecord(_generation: number, bytes: Buffer): Promise<void> {
    const decoded = decodeJournalRecord(bytes);
    if (!decoded.ok) throw new Error(decoded.reason);
    this.records.push(decoded.value.entries.map((e) => e.stripe).sort((a, b) => a - b));
  }
  async flushMembers(): Promise<void> {}
}

async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await Promise.resolve();
  await new Promise((resolve) => setImmediate(resolve));
}

const check = (blockIndex: number): BlockCheck => ({ blockIndex, newCrc: blockIndex + 1, kind: 'first-sector', checkCrc: 99 });

/** A manager whose gathering window ends only when the test fires it. */
function manager(store: Store): { journal: JournalManager; timers: (() => void)[] } {
  const timers: (() => void)[] = [];
  const journal = new JournalManager(store, {
    arrayUuid: Buffer.alloc(16, 7), volumeId: 1, generation: 10, recordBytesMax: 64 * 1024, checksPerStripeMax: 16, idleCleanMs: 0,
    recordGatherWriters: 3, recordGatherMs: 5,
    scheduleTimer: (fire) => {
      timers.push(fire);
      return () => { timers.splice(timers.indexOf(fire), 1); };
    },
  });
  return { journal, timers };
}

describe('journal record gathering', () => {
  it('waits for begun writers, then one record releases them all', async () => {
    const store = new Store();
    const { journal } = manager(store);
    const tickets = await Promise.all([1, 2, 3].map((stripe) => journal.begin(stripe)));
    const released: number[] = [];
    void tickets[0]!.durable([check(1)]).then(() => released.push(1));
    await settle();
    expect(store.records, 'two writers still on their way: no record yet').toEqual([]);
    void tickets[1]!.durable([check(2)]).then(() => released.push(2));
    void tickets[2]!.durable([check(3)]).then(() => released.push(3));
    await settle();
    expect(store.records).toEqual([[1, 2, 3]]);
    expect(released.sort()).toEqual([1, 2, 3]);
  });

  it('a lone writer is not held back', async () => {
    const store = new Store();
    const { journal, timers } = manager(store);
    const ticket = await journal.begin(7);
    await ticket.durable([check(7)]);
    expect(store.records).toEqual([[7]]);
    expect(timers).toHaveLength(0);
  });

  it('the window ends the wait for writers that do not come', async () => {
    const store = new Store();
    const { journal, timers } = manager(store);
    const [a, b] = await Promise.all([4, 5].map((stripe) => journal.begin(stripe)));
    let released = false;
    void a!.durable([check(4)]).then(() => { released = true; });
    await settle();
    expect(store.records).toEqual([]);
    expect(timers).toHaveLength(1);
    timers[0]!();
    await settle();
    expect(store.records).toEqual([[4, 5]]);
    expect(released).toBe(true);
    b!.abandon();
  });
});
