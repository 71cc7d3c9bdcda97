// Proves: the member flush that lets a batch of completed stripes leave the journal record runs in the background: writers keep getting records (released) while it runs, and the batch leaves the record only after it has ended; a writer that began on a batch stripe meanwhile keeps that stripe listed.
import { describe, expect, it } from 'vitest';
import { decodeJournalRecord, type BlockCheck } from '../../src/format/journal-record.js';
import { JournalManager, type JournalStore } from '../../src/journal/manager.js';

class Store implements JournalStore {
  records: number[][] = [];
  flushesStarted = 0;
  private finishFlush: (() => void)[] = [];
  async writeRecord(_generation: number, bytes: Buffer): Promise<void> {
    const decoded = decodeJournalRecord(bytes);
    if (!decoded.ok) throw new Error(decoded.reason);
    this.records.push(decoded.value.entries.map((e) => e.stripe).sort((a, b) => a - b));
  }
  /** Stays running until the test ends it. */
  flushMembers(): Promise<void> {
    this.flushesStarted++;
    return new Promise((resolve) => this.finishFlush.push(resolve));
  }
  endFlush(): void {
    this.finishFlush.shift()!();
  }
}

async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await Promise.resolve();
  await new Promise((resolve) => setImmediate(resolve));
}

const check = (blockIndex: number): BlockCheck => ({ blockIndex, newCrc: blockIndex + 1, kind: 'first-sector', checkCrc: 99 });

async function write(journal: JournalManager, stripe: number): Promise<void> {
  const ticket = await journal.begin(stripe);
  await ticket.durable([check(stripe)]);
  ticket.done();
}

describe('background member flush', () => {
  it('does not stall writers, and the batch leaves the record only after it', async () => {
    const store = new Store();
    const journal = new JournalManager(store, {
      arrayUuid: Buffer.alloc(16, 7), volumeId: 1, generation: 10, recordBytesMax: 64 * 1024, checksPerStripeMax: 16, idleCleanMs: 0,
      cleanBatchStripes: 2, recordGatherMs: 0,
    });
    await write(journal, 1);
    await write(journal, 2);
    // Stripes 1 and 2 completed: the next record starts the batch's member flush, which hangs.
    await write(journal, 3);
    expect(store.flushesStarted).toBe(1);
    // Writers go on while it runs: each gets its record; the batch is still listed in every one.
    await write(journal, 4);
    const ticket = await journal.begin(2); // a batch stripe written again during the flush
    await ticket.durable([check(22)]);
    for (const record of store.records.slice(2)) expect(record).toEqual(expect.arrayContaining([1, 2]));
    const before = store.records.length;
    store.endFlush();
    await settle();
    // The record after the flush drops stripe 1; stripe 2 began again meanwhile and stays.
    expect(store.records.length).toBe(before + 1);
    expect(store.records.at(-1)).not.toContain(1);
    expect(store.records.at(-1)).toContain(2);
    ticket.done();
  });
});
