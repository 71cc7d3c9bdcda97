// Proves the journal manager's protocol (seeds 000/001) step by step on a store whose record
// writes complete only when the test says: accumulation, one record releasing many writers,
// the flush-record shortcut, mark-clean riding the next flush, backpressure, idle clean.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { decodeJournalRecord, type BlockCheck } from '../../src/format/journal-record.js';
import { JournalManager, type JournalStore } from '../../src/journal/manager.js';

class FakeStore implements JournalStore {
  records: { generation: number; stripes: number[]; clean: boolean; checks: number }[] = [];
  pending: (() => void)[] = [];
  memberFlushes = 0;
  autoComplete = false;

  writeRecord(generation: number, bytes: Buffer): Promise<void> {
    const decoded = decodeJournalRecord(bytes);
    if (!decoded.ok) throw new Error(decoded.reason);
    this.records.push({
      generation, clean: decoded.value.clean,
      stripes: decoded.value.entries.map((e) => e.stripe).sort((a, b) => a - b),
      checks: decoded.value.entries.reduce((sum, e) => sum + e.checks.length, 0),
    });
    if (this.autoComplete) return Promise.resolve();
    return new Promise((resolve) => this.pending.push(resolve));
  }

  async flushMembers(): Promise<void> {
    this.memberFlushes++;
  }

  /** Completes the oldest record write, then lets every consequence run. */
  async completeOne(): Promise<void> {
    this.pending.shift()!();
    await settle();
  }
}

async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await Promise.resolve();
  await new Promise((resolve) => setImmediate(resolve));
}

function manager(store: FakeStore, overrides: Partial<ConstructorParameters<typeof JournalManager>[1]> = {}): JournalManager {
  return new JournalManager(store, {
    arrayUuid: Buffer.alloc(16, 7), volumeId: 1, generation: 10, recordBytesMax: 64 * 1024, checksPerStripeMax: 16, idleCleanMs: 0, cleanBatchStripes: 1, recordGatherMs: 0, ...overrides,
  });
}

const check = (blockIndex: number): BlockCheck => ({ blockIndex, newCrc: blockIndex + 1, kind: 'first-sector', checkCrc: 99 });

describe('journal manager', () => {
  afterEach(() => { vi.useRealTimers(); });

  it('accumulates many writers into one record and releases them all with it', async () => {
    const store = new FakeStore();
    const journal = manager(store);
    const tickets = await Promise.all([3, 7, 9].map((stripe) => journal.begin(stripe)));
    const released: number[] = [];
    tickets.forEach((ticket, i) => void ticket.durable([check(i)]).then(() => released.push(i)));
    await settle();
    expect(store.records).toEqual([{ generation: 11, stripes: [3, 7, 9], clean: false, checks: 3 }]);
    expect(released).toEqual([]); // nobody writes before the record is durable
    await store.completeOne();
    expect(released.sort()).toEqual([0, 1, 2]);
    expect(store.records).toHaveLength(1);
  });

  it('a writer arriving during a flush whose stripe that record lists, with nothing new, is released by it', async () => {
    const store = new FakeStore();
    const journal = manager(store);
    const a = await journal.begin(5);
    const b = await journal.begin(6);
    let aDone = false;
    void a.durable([check(1)]).then(() => { aDone = true; });
    await settle();
    expect(store.records.map((r) => r.stripes)).toEqual([[5, 6]]);
    let bDone = false;
    void b.durable([]).then(() => { bDone = true; });
    await store.completeOne();
    expect(aDone && bDone).toBe(true);
    expect(store.records).toHaveLength(1);
  });

  it('the flush-record shortcut: a stripe already in the durable record needs no flush', async () => {
    const store = new FakeStore();
    const journal = manager(store);
    const first = await journal.begin(4);
    const durable = first.durable([]);
    await settle();
    await store.completeOne();
    await durable;
    const second = await journal.begin(4);
    await second.durable([]); // resolves without a record write
    expect(store.records).toHaveLength(1);
    expect(journal.stats.shortcutReleases).toBe(1);
    // New checks are not in the durable record: those need a flush.
    const third = await journal.begin(4);
    let thirdDone = false;
    void third.durable([check(2)]).then(() => { thirdDone = true; });
    await settle();
    expect(thirdDone).toBe(false);
    expect(store.records).toHaveLength(2);
    await store.completeOne();
    expect(thirdDone).toBe(true);
  });

  it('mark-clean only leaves memory; the next flush makes data durable, then drops the stripe', async () => {
    const store = new FakeStore();
    const journal = manager(store);
    const a = await journal.begin(1);
    const aDurable = a.durable([check(0)]);
    await settle();
    await store.completeOne();
    await aDurable;
    a.done();
    await settle();
    expect(store.records).toHaveLength(1); // no record for mark-clean alone
    expect(store.memberFlushes).toBe(0);
    const b = await journal.begin(2);
    void b.durable([check(1)]);
    await settle();
    // The member flush for stripe 1 runs in the background: this record still lists stripe 1.
    expect(store.memberFlushes).toBe(1);
    expect(store.records[1]!.stripes).toEqual([1, 2]);
    await store.completeOne();
    // Once the flush has ended, the next record drops it.
    expect(store.records[2]!.stripes).toEqual([2]);
    await store.completeOne();
  });

  it('records carry increasing generations; close writes a clean record', async () => {
    const store = new FakeStore();
    store.autoComplete = true;
    const journal = manager(store);
    for (const stripe of [1, 2, 3]) {
      const ticket = await journal.begin(stripe);
      await ticket.durable([check(stripe)]);
      ticket.done();
    }
    await journal.close();
    const generations = store.records.map((r) => r.generation);
    expect(generations[0]).toBe(11);
    generations.forEach((generation, i) => expect(generation).toBe(11 + i));
    expect(store.records.at(-1)).toMatchObject({ clean: true, stripes: [] });
    expect(journal.clean).toBe(true);
  });

  it('backpressure: writers wait for room in the record, and never fail for it', async () => {
    const store = new FakeStore();
    store.autoComplete = true;
    // Room for 2 stripes with 16 checks each: 64 + 2 * (16 + 16 * 16) = 608 bytes.
    const journal = manager(store, { recordBytesMax: 608 });
    expect(journal.entriesMax).toBe(2);
    const a = await journal.begin(1);
    const b = await journal.begin(2);
    let cStarted = false;
    const c = journal.begin(3).then((ticket) => { cStarted = true; return ticket; });
    await settle();
    expect(cStarted).toBe(false);
    await a.durable([check(0)]);
    a.done();
    await settle();
    expect(cStarted).toBe(true); // stripe 1 left the record after its data was made durable
    const cTicket = await c;
    await cTicket.durable([]);
    cTicket.done();
    await b.durable([]);
    b.done();
    await journal.close();
    expect(store.records.every((r) => r.stripes.length <= 2)).toBe(true);
  });

  it('an idle period writes a clean record', async () => {
    vi.useFakeTimers();
    const store = new FakeStore();
    store.autoComplete = true;
    const journal = manager(store, { idleCleanMs: 3000 });
    const ticket = await journal.begin(8);
    await ticket.durable([check(0)]);
    ticket.done();
    expect(store.records.at(-1)!.clean).toBe(false);
    await vi.advanceTimersByTimeAsync(2999);
    expect(store.records).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(2);
    expect(store.records.at(-1)).toMatchObject({ clean: true, stripes: [] });
  });

  it('an idle period writes a clean record after the default 3 s when idleCleanMs is given as undefined', async () => {
    vi.useFakeTimers();
    const store = new FakeStore();
    store.autoComplete = true;
    const journal = manager(store, { idleCleanMs: undefined });
    const ticket = await journal.begin(8);
    await ticket.durable([check(0)]);
    ticket.done();
    await vi.advanceTimersByTimeAsync(2999);
    expect(store.records).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(2);
    expect(store.records.at(-1)).toMatchObject({ clean: true, stripes: [] });
  });

  it('batched clean: completed stripes leave the record together, after one member flush', async () => {
    const store = new FakeStore();
    store.autoComplete = true;
    const journal = manager(store, { cleanBatchStripes: 3 });
    for (const stripe of [1, 2, 3, 4]) {
      const ticket = await journal.begin(stripe);
      await ticket.durable([check(stripe)]);
      ticket.done();
    }
    // Records 1-3 each still list the completed stripes: no member flush yet.
    expect(store.records.slice(0, 3).map((r) => r.stripes)).toEqual([[1], [1, 2], [1, 2, 3]]);
    // At the 4th record three had gathered: one member flush, in the background, so that
    // record still lists them; the record after the flush drops all three together.
    expect(store.memberFlushes).toBe(1);
    expect(store.records[3]!.stripes).toEqual([1, 2, 3, 4]);
    await journal.idle();
    expect(store.records[4]!.stripes).toEqual([4]);
    await journal.sync();
    expect(store.records.at(-1)!.stripes).toEqual([]);
  });

  it('a failed record write fails waiting writers and every later one', async () => {
    const store = new FakeStore();
    store.writeRecord = () => Promise.reject(Object.assign(new Error('EIO'), { code: 'EIO' }));
    const journal = manager(store);
    const ticket = await journal.begin(1);
    await expect(ticket.durable([])).rejects.toThrow('EIO');
    await expect(journal.begin(2)).rejects.toThrow('EIO');
  });
});

describe('journal manager: a writer during the member flush', () => {
  it('keeps its stripe listed when it began after the flush that drops completed stripes began (found by the fault simulation, RAID-6 seed 3293)', async () => {
    const store = new FakeStore();
    store.autoComplete = true;
    let releaseFlush: (() => void) | undefined;
    const journal = manager(store, { cleanBatchStripes: 64 });
    const first = await journal.begin(1);
    await first.durable([check(0)]);
    first.done(); // completed: the next sync flushes members, then drops stripe 1
    store.flushMembers = () => new Promise<void>((resolve) => { releaseFlush = resolve; });
    const sync = journal.sync();
    await settle();
    expect(releaseFlush).toBeDefined();
    // While the members flush, a writer on stripe 1 with nothing new to add takes the shortcut,
    // writes and finishes: its data is not covered by the flush under way.
    const second = await journal.begin(1);
    await second.durable([]);
    expect(journal.stats.shortcutReleases).toBe(1);
    second.done();
    releaseFlush!();
    await sync;
    expect(store.records.at(-1)!.stripes).toEqual([1]);
    expect(store.records.at(-1)!.clean).toBe(false);
  });
});
