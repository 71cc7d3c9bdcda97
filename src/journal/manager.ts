// The journal manager of seeds 000/001 (dirty-log policy).
//
// Writers mark their stripe dirty in the in-memory record (begin) before touching it; old data
// and parity are read meanwhile. When its new data is ready a writer asks for a flush
// (durable). Flushes are group commits: one record write, with a barrier (the store makes it
// durable), releases every writer whose stripe it lists. The flush record remembers what the
// last durable record listed: a writer whose stripe is already there, with nothing new to
// add, needs no flush at all. Mark-clean (done) only notes that the stripe's writes finished;
// the next flush first makes member data durable, then drops those stripes: the removal rides
// on that record. A clean shutdown, or an idle period, writes a record with the clean flag.
// The record holds at most `recordBytesMax`: writers wait for room (backpressure), never fail.
//
// Every record is written by one loop, one at a time: durability waiters, room, sync, rewrite
// and clean requests all queue for it, and nothing waits for the loop from inside it. Before a
// record for writers, the loop gathers: while writers that have begun are still on their way
// to durable(), it waits for them (up to recordGatherWriters waiting, at most recordGatherMs),
// so more writes share each record; a lone writer never waits. A batch of completed stripes
// is made durable by a member flush in the background, while records go on being written for
// writers; the first record after that flush drops them (a sync, a clean record or a writer
// waiting for room flushes inline, as it must wait for the flush anyway). The store
// may fail a member while it writes a record (it then writes the record to other members
// itself) and may ask for a rewrite then: the request is served by the loop's next record.

import { recordSizeBytes, BLOCK_CHECK_BYTES, RECORD_HEADER_BYTES, STRIPE_ENTRY_BYTES, encodeJournalRecord, type BlockCheck, type StripeEntry } from '../format/journal-record.js';
import { assert } from '../units.js';
import type { WriteJournal, WriteTicket } from './write-journal.js';

/** Completed stripes gathered before one member flush lets a record drop them. */
export const CLEAN_BATCH_STRIPES_DEFAULT = 64;
/** Writers a record waits to gather, at most, while more are on their way to durable(). */
export const RECORD_GATHER_WRITERS_DEFAULT = 32;
/** The longest a record waits to gather writers (the first waiter's extra latency at most). */
export const RECORD_GATHER_MS_DEFAULT = 1;

export interface JournalStore {
  /** Writes the record for `generation` to its slots and makes it durable (the barrier). */
  writeRecord(generation: number, bytes: Buffer): Promise<void>;
  /** Makes every completed data and parity write durable on every member. */
  flushMembers(): Promise<void>;
}

export interface JournalManagerOptions {
  arrayUuid: Buffer;
  volumeId: number;
  /** The newest generation on disk; records continue after it. */
  generation: number;
  /** Bytes one record may hold (a journal slot). */
  recordBytesMax: number;
  /** Block checks one stripe's write may add, at most (data blocks in a stripe). */
  checksPerStripeMax: number;
  /**
   * Completed stripes wait until this many have gathered before one member flush makes them
   * durable and the next record drops them (1: every record, as the seeds' timeline draws it).
   * Batching trades a few more stripes to resync after a crash for far fewer member flushes.
   */
  cleanBatchStripes?: number;
  /** No writes for this long writes a clean record; 0 disables. */
  idleCleanMs?: number;
  /** Writers a record waits to gather while more have begun (1: no gathering). */
  recordGatherWriters?: number;
  /** The longest a record waits to gather writers; 0: no gathering. */
  recordGatherMs?: number;
  /**
   * Arms the idle timer: calls `fire` after `delayMs`, returns a cancel function. Default: an
   * unref'd setTimeout. The fault simulation passes its own, so idle records come in simulated time.
   */
  scheduleTimer?: (fire: () => void, delayMs: number) => () => void;
  /** Whether the newest record on disk is clean (the state the manager starts from). */
  startsClean?: boolean;
  /** Test only: release writers before the record is durable, to prove the explorer catches it. */
  unsafeSkipBarrier?: boolean;
}

export interface JournalStats {
  recordsWritten: number;
  memberFlushes: number;
  /** Member flushes run in the background for a batch of completed stripes (counted in memberFlushes too). */
  backgroundFlushes: number;
  shortcutReleases: number;
  ticketsIssued: number;
}

interface Entry {
  /** Writers between begin and done. */
  inflight: number;
  /** Checks to carry in records; cleared when the stripe leaves the record. */
  checks: BlockCheck[];
  /** Writes finished; leaves the record once member data is durable. */
  completed: boolean;
  /** Bytes reserved in the record for this entry. */
  reservedBytes: number;
  /** Writers that have begun on this entry, ever: tells a writer that began during a member flush. */
  begun: number;
}

/** What a caller other than a writer asks of the flush loop; served by the next record started after it. */
interface FlushRequest {
  /** sync: completed stripes durable and dropped; rewrite: a new record; clean: a clean record if nothing is in flight. */
  kind: 'sync' | 'rewrite' | 'clean';
  resolve: () => void;
  reject: (error: unknown) => void;
}

interface Waiter {
  stripe: number;
  /** Checks of the stripe's entry a record must carry to release this writer. */
  needChecks: number;
  resolve: () => void;
  reject: (error: unknown) => void;
}

export class JournalManager implements WriteJournal {
  private readonly store: JournalStore;
  private readonly options: Required<Omit<JournalManagerOptions, 'unsafeSkipBarrier' | 'scheduleTimer' | 'recordGatherWriters' | 'recordGatherMs'>> & { unsafeSkipBarrier: boolean };
  private readonly recordGatherWriters: number;
  private readonly recordGatherMs: number;
  /** Tickets begun whose writer has not yet called durable(), done() or abandon(): writers on their way. */
  private openTickets = 0;
  /** Wakes the gathering loop when a writer arrives at durable() (or leaves without). */
  private wakeGatherer: (() => void) | undefined;
  /** The member flush running in the background for a batch of completed stripes, if any. */
  private backgroundFlush: Promise<void> | undefined;
  /** Completed stripes, each with the writers it had begun, that a finished background flush made durable. */
  private flushedCompleted: { stripe: number; entry: Entry; begun: number }[] = [];
  private readonly scheduleTimer: (fire: () => void, delayMs: number) => () => void;
  private readonly entries = new Map<number, Entry>();
  /** The flush record: stripes (and how many checks of each) the last durable record listed. */
  private durable = new Map<number, number>();
  private waiters: Waiter[] = [];
  private roomWaiters: (() => void)[] = [];
  private requests: FlushRequest[] = [];
  private flushing: Promise<void> | undefined;
  /** A writer waits for room: a flush must drop completed stripes even if nobody waits on durability. */
  private roomWanted = false;
  private reservedBytes = RECORD_HEADER_BYTES;
  private generation: number;
  private cancelIdleTimer: (() => void) | undefined;
  private lastRecordClean = false;
  private failure: unknown;
  readonly stats: JournalStats = { recordsWritten: 0, memberFlushes: 0, backgroundFlushes: 0, shortcutReleases: 0, ticketsIssued: 0 };

  constructor(store: JournalStore, options: JournalManagerOptions) {
    this.store = store;
    const { scheduleTimer, recordGatherWriters, recordGatherMs, ...rest } = options;
    // Defaults where an option is missing or given as undefined (a spread would let undefined win).
    this.options = {
      ...rest,
      idleCleanMs: rest.idleCleanMs ?? 3000,
      unsafeSkipBarrier: rest.unsafeSkipBarrier ?? false,
      startsClean: rest.startsClean ?? true,
      cleanBatchStripes: rest.cleanBatchStripes ?? CLEAN_BATCH_STRIPES_DEFAULT,
    };
    this.recordGatherWriters = recordGatherWriters ?? RECORD_GATHER_WRITERS_DEFAULT;
    this.recordGatherMs = recordGatherMs ?? RECORD_GATHER_MS_DEFAULT;
    this.scheduleTimer = scheduleTimer ?? ((fire, delayMs) => {
      const timer = setTimeout(fire, delayMs);
      timer.unref();
      return () => clearTimeout(timer);
    });
    this.generation = options.generation;
    this.lastRecordClean = this.options.startsClean;
    const worstEntry = STRIPE_ENTRY_BYTES + options.checksPerStripeMax * BLOCK_CHECK_BYTES;
    assert(RECORD_HEADER_BYTES + worstEntry <= options.recordBytesMax, 'a record holds at least one stripe with all its checks');
  }

  /** Stripes a record can hold when each carries its worst case of checks. */
  get entriesMax(): number {
    const worstEntry = STRIPE_ENTRY_BYTES + this.options.checksPerStripeMax * BLOCK_CHECK_BYTES;
    return Math.floor((this.options.recordBytesMax - RECORD_HEADER_BYTES) / worstEntry);
  }

  get currentGeneration(): number {
    return this.generation;
  }

  get dirtyStripes(): number[] {
    return [...this.entries.keys()].sort((a, b) => a - b);
  }

  async begin(stripe: number): Promise<WriteTicket> {
    if (this.failure) throw this.failure;
    this.cancelIdle();
    const worst = this.options.checksPerStripeMax * BLOCK_CHECK_BYTES + (this.entries.has(stripe) ? 0 : STRIPE_ENTRY_BYTES);
    while (this.reservedBytes + worst > this.options.recordBytesMax) {
      // Room comes back when completed stripes leave the record: make that happen, then wait.
      if ([...this.entries.values()].some((entry) => entry.completed)) {
        this.roomWanted = true;
        this.requestFlush();
      }
      await new Promise<void>((resolve) => this.roomWaiters.push(resolve));
      if (this.failure) throw this.failure;
    }
    let entry = this.entries.get(stripe);
    if (!entry) {
      entry = { inflight: 0, checks: [], completed: false, reservedBytes: STRIPE_ENTRY_BYTES, begun: 0 };
      this.entries.set(stripe, entry);
      this.reservedBytes += STRIPE_ENTRY_BYTES;
    }
    entry.inflight++;
    entry.begun++;
    entry.completed = false;
    const reservation = this.options.checksPerStripeMax * BLOCK_CHECK_BYTES;
    entry.reservedBytes += reservation;
    this.reservedBytes += reservation;
    this.lastRecordClean = false;
    this.stats.ticketsIssued++;
    this.openTickets++;
    let state: 'open' | 'durable' | 'finished' = 'open';
    const arrived = () => {
      this.openTickets--;
      this.wakeGatherer?.();
    };
    const unreserve = (bytes: number) => {
      entry!.reservedBytes -= bytes;
      this.reservedBytes -= bytes;
      this.wakeRoomWaiters();
    };
    return {
      durable: async (checks: BlockCheck[] = []) => {
        assert(state === 'open', 'durable() once per ticket, before done()');
        assert(checks.length <= this.options.checksPerStripeMax, 'checks within the reservation');
        state = 'durable';
        arrived();
        entry!.checks.push(...checks);
        unreserve(reservation - checks.length * BLOCK_CHECK_BYTES);
        // The flush-record shortcut: the last durable record lists this stripe with every check.
        if (this.durable.get(stripe) === entry!.checks.length) {
          this.stats.shortcutReleases++;
          return;
        }
        await this.waitDurable(stripe, entry!.checks.length);
      },
      done: () => {
        assert(state !== 'finished', 'done() once per ticket');
        if (state === 'open') { unreserve(reservation); arrived(); }
        state = 'finished';
        this.finish(stripe);
      },
      abandon: () => {
        assert(state !== 'finished', 'abandon() once per ticket');
        if (state === 'open') { unreserve(reservation); arrived(); }
        state = 'finished';
        this.finish(stripe);
      },
    };
  }

  private finish(stripe: number): void {
    const entry = this.entries.get(stripe);
    assert(entry && entry.inflight > 0, `stripe ${stripe} has a writer in flight`);
    entry.inflight--;
    if (entry.inflight === 0) entry.completed = true;
    if (entry.completed && this.roomWaiters.length > 0) {
      // Writers wait for room: dropping this stripe (after a data flush) makes some.
      this.roomWanted = true;
      this.requestFlush();
    }
    this.scheduleIdle();
  }

  private wakeRoomWaiters(): void {
    for (const wake of this.roomWaiters.splice(0)) wake();
  }

  private waitDurable(stripe: number, needChecks: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (this.failure) {
        reject(this.failure);
        return;
      }
      this.waiters.push({ stripe, needChecks, resolve, reject });
      this.requestFlush();
    });
  }

  private requestFlush(): void {
    this.wakeGatherer?.(); // a request, or room wanted, ends a gathering at once
    if (this.flushing) return; // the running loop serves every waiter and request before it stops
    // Start on the next microtask: writers asking in the same tick share the first record.
    this.flushing = Promise.resolve().then(() => this.flushLoop()).finally(() => {
      this.flushing = undefined;
      // Someone may have asked between the loop's last check and now.
      if (!this.failure && this.hasWork()) this.requestFlush();
    });
  }

  private hasWork(): boolean {
    return this.waiters.length > 0 || this.roomWanted || this.requests.length > 0 || this.flushedCompleted.length > 0;
  }

  /** Queues a request for the flush loop; resolves once a record (or member flush) started after it is durable. */
  private request(kind: FlushRequest['kind']): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise<void>((resolve, reject) => {
      this.requests.push({ kind, resolve, reject });
      this.requestFlush();
    });
  }

  /** Group commit: while anyone waits, one record write at a time releases all it lists. */
  private async flushLoop(): Promise<void> {
    while (this.hasWork()) {
      await this.gather();
      const requests = this.requests.splice(0);
      try {
        await this.flushOnce(requests);
      } catch (error) {
        for (const request of requests) request.reject(error);
        this.fail(error);
        return;
      }
      for (const request of requests) request.resolve();
    }
  }

  /**
   * Before a record that only writers wait for: while writers that have begun are still on
   * their way to durable(), wait for them, until recordGatherWriters wait or recordGatherMs
   * has passed. Requests (sync, rewrite, clean) and writers waiting for room never wait here.
   */
  private async gather(): Promise<void> {
    if (this.recordGatherMs <= 0 || this.requests.length > 0 || this.roomWanted || this.waiters.length === 0) return;
    if (this.openTickets === 0 || this.waiters.length >= this.recordGatherWriters) return;
    let expired = false;
    let wake: () => void = () => {};
    const cancel = this.scheduleTimer(() => { expired = true; wake(); }, this.recordGatherMs);
    try {
      while (!expired && !this.failure && this.openTickets > 0 && this.waiters.length < this.recordGatherWriters &&
        this.requests.length === 0 && !this.roomWanted) {
        await new Promise<void>((resolve) => { wake = resolve; this.wakeGatherer = resolve; });
      }
    } finally {
      this.wakeGatherer = undefined;
      cancel();
    }
  }

  /**
   * Starts a member flush in the background for the completed stripes (each with the writers it
   * had begun): when it ends, the next record may drop those whose state has not changed since.
   */
  private startBackgroundFlush(completed: { stripe: number; entry: Entry; begun: number }[]): void {
    this.backgroundFlush = this.store.flushMembers().then(() => {
      this.stats.memberFlushes++;
      this.stats.backgroundFlushes++;
      this.flushedCompleted.push(...completed);
      this.backgroundFlush = undefined;
      // The drop rides on the next record: ask for one.
      this.requestFlush();
    }, (error: unknown) => {
      this.backgroundFlush = undefined;
      this.fail(error);
    });
  }

  /** Drops the stripes of `completed` whose entry is unchanged since (same writers, all finished). */
  private dropCompleted(completed: readonly { stripe: number; entry: Entry; begun: number }[]): boolean {
    let dropped = false;
    for (const { stripe, entry: before, begun } of completed) {
      const entry = this.entries.get(stripe);
      if (entry === before && entry.begun === begun && entry.completed && entry.inflight === 0) {
        this.entries.delete(stripe);
        this.reservedBytes -= entry.reservedBytes;
        // A new entry for this stripe must not take the shortcut on the old entry's record.
        this.durable.delete(stripe);
        dropped = true;
      }
    }
    return dropped;
  }

  private async flushOnce(requests: readonly FlushRequest[]): Promise<void> {
    const clean = requests.some((request) => request.kind === 'clean');
    const syncing = clean || requests.some((request) => request.kind === 'sync');
    const rewrite = requests.some((request) => request.kind === 'rewrite');
    const roomWanted = this.roomWanted;
    this.roomWanted = false;
    // Stripes whose writes finished leave the record once their data is durable: one member
    // flush for a batch of them (or at once when room, a sync or a clean record needs it).
    // Each with the writers it had: one that begins during the member flush (and may even finish,
    // taking the flush-record shortcut) wrote after the flush began, so its stripe stays listed.
    const completed = [...this.entries].filter(([, entry]) => entry.completed).map(([stripe, entry]) => ({ stripe, entry, begun: entry.begun }));
    // What a finished background flush made durable leaves now (unless its stripe was written again).
    const flushed = this.flushedCompleted.splice(0);
    let drop = this.dropCompleted(flushed);
    if (completed.length > 0 && (syncing || roomWanted)) {
      // Someone waits for the flush itself: inline.
      await this.store.flushMembers();
      this.stats.memberFlushes++;
      drop = this.dropCompleted(completed) || drop;
    } else if (syncing) {
      await this.store.flushMembers();
      this.stats.memberFlushes++;
    } else if (!this.backgroundFlush && completed.length >= this.options.cleanBatchStripes) {
      // A batch: flushed in the background while this and later records release writers.
      this.startBackgroundFlush(completed);
    }
    if (drop) this.wakeRoomWaiters();
    // A sync with nothing to drop needs only the member flush above.
    if (!drop && !clean && !rewrite && this.waiters.length === 0) return;
    const listed: StripeEntry[] = [...this.entries].map(([stripe, entry]) => ({ volumeId: this.options.volumeId, stripe, checks: [...entry.checks] }));
    // A rewrite of a clean state stays clean: nothing was listed, and nothing began since.
    const isClean = (clean || (rewrite && this.lastRecordClean)) && listed.length === 0;
    assert(recordSizeBytes(listed) <= this.options.recordBytesMax, 'record fits its slot (reservations hold)');
    const generation = ++this.generation;
    const bytes = encodeJournalRecord({ arrayUuid: this.options.arrayUuid, generation, clean: isClean, entries: listed });
    const written = this.store.writeRecord(generation, bytes);
    if (!this.options.unsafeSkipBarrier) await written;
    this.stats.recordsWritten++;
    this.durable = new Map(listed.filter((entry) => this.entries.has(entry.stripe)).map((entry) => [entry.stripe, entry.checks.length]));
    // A writer that began while this record was written made the state dirty again.
    this.lastRecordClean = isClean && this.entries.size === 0;
    // Every writer whose stripe, with its checks, this record lists may go on, whenever it asked.
    const stillWaiting: Waiter[] = [];
    for (const waiter of this.waiters) {
      if ((this.durable.get(waiter.stripe) ?? -1) >= waiter.needChecks) waiter.resolve();
      else stillWaiting.push(waiter);
    }
    this.waiters = stillWaiting;
    if (this.options.unsafeSkipBarrier) await written;
  }

  private fail(error: unknown): void {
    this.failure = error;
    this.wakeGatherer?.();
    for (const waiter of this.waiters.splice(0)) waiter.reject(error);
    for (const request of this.requests.splice(0)) request.reject(error);
    this.wakeRoomWaiters();
  }

  private cancelIdle(): void {
    this.cancelIdleTimer?.();
    this.cancelIdleTimer = undefined;
  }

  private scheduleIdle(): void {
    this.cancelIdle();
    if (!this.options.idleCleanMs) return;
    this.cancelIdleTimer = this.scheduleTimer(() => {
      this.cancelIdleTimer = undefined;
      if ([...this.entries.values()].some((entry) => entry.inflight > 0) || this.lastRecordClean || this.failure) return;
      // A failure is kept by the loop (later writers see it); nobody else waits on this one.
      this.request('clean').catch(() => {});
    }, this.options.idleCleanMs);
  }

  /**
   * Writes the current state as a new record (clean if it was clean and nothing is dirty): after
   * the members holding copies changed (a member failed, a rebuilt one joined), the newest
   * record again has its full set of copies on in-sync members. Never call it from inside the
   * store (a member failing during a record write): that record is not durable yet, and this
   * waits for the record after it. Failing a member there only queues the request.
   */
  rewrite(): Promise<void> {
    return this.request('rewrite');
  }

  /** Everything completed so far is durable, and the record no longer lists it. */
  sync(): Promise<void> {
    return this.request('sync');
  }

  /** Waits until the flush loop has nothing left to do (records asked for in the background are written). */
  async idle(): Promise<void> {
    while (this.flushing || this.backgroundFlush) await (this.flushing ?? this.backgroundFlush);
    if (this.failure) throw this.failure;
  }

  /** Clean shutdown: every writer finished, data durable, and a record with the clean flag. */
  async close(): Promise<void> {
    this.cancelIdle();
    if (this.failure) throw this.failure;
    assert(![...this.entries.values()].some((entry) => entry.inflight > 0), 'no writer in flight at close');
    await this.request('clean');
    await this.idle();
  }

  /** Whether the newest record this manager wrote carried the clean flag. */
  get clean(): boolean {
    return this.lastRecordClean;
  }
}
