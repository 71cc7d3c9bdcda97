// The journal policy's journals (seed 002): one I/O manager per member, each with its own
// journal of the steps it took, in the member's data-journal region.
//
// A member's region: two checkpoint slots, then a ring of entry blocks, then a ring of payload
// blocks (the "new addresses": new data, deltas and new parity). An update reserves, on every
// member it involves, the entry and payload blocks it will write, before it starts: it never
// waits for space once begun, and writers that find no room wait (backpressure), never fail.
// Space comes back at a checkpoint: once every update numbered below X is applied in place,
// the members are flushed, X is written to a checkpoint slot of every member (alternating, so a
// torn checkpoint leaves the previous one) and flushed, and then the blocks of those updates
// are free. Recovery reads every entry of every member; those of updates below the highest X
// found are history.
//
// Each manager shares flushes (group commit, claim 9 without NVRAM): a step's writes are
// issued, then the step waits for the member's next flush, which every step whose writes
// completed before it began shares.

import { DeviceIoError } from '../device/block-device.js';
import { crc32c } from '../format/crc32c.js';
import {
  DATA_JOURNAL_ENTRY_BYTES, decodeDataJournalEntry, encodeDataJournalEntry, stepHasPayload,
  type DataJournalEntry, type DataJournalSide, type DataJournalStep,
} from '../format/data-journal-entry.js';
import { findRegion, type Region } from '../format/layout.js';
import { BLOCK_SIZE_BYTES, assert } from '../units.js';

/** Rows (4 KiB blocks of one chunk) one update writes at most: bounds an update's journal space. */
export const UPDATE_ROWS_MAX = 16;
/** Checkpoint slots at the start of the region. */
export const CHECKPOINT_SLOTS = 2;
/** Updates applied between checkpoints when nobody waits for room. */
export const CHECKPOINT_EVERY_UPDATES = 256;

/** One member's data-journal region as the managers need it. */
export interface DataJournalMember {
  readonly path: string;
  readRegion(kind: 'data-journal', offsetInRegionBytes: number, buf: Uint8Array): Promise<void>;
  writeRegion(kind: 'data-journal', offsetInRegionBytes: number, buf: Uint8Array): Promise<void>;
  flush(): Promise<void>;
}

export interface DataJournalLayout {
  regionBytes: number;
  entryBlocks: number;
  payloadBlocks: number;
}

/** The ring sizes a region implies (docs/FORMAT.md, "Data-journal region"). */
export function dataJournalLayoutFor(regions: readonly Region[]): DataJournalLayout | undefined {
  const region = findRegion(regions, 'data-journal');
  if (!region) return undefined;
  const blocks = region.sizeBytes / BLOCK_SIZE_BYTES;
  const entryBlocks = Math.max(8, Math.floor(blocks / 8));
  const layout = { regionBytes: region.sizeBytes, entryBlocks, payloadBlocks: blocks - CHECKPOINT_SLOTS - entryBlocks };
  assert(layout.payloadBlocks >= 2 * UPDATE_ROWS_MAX, 'a data journal holds the largest update');
  return layout;
}

function entryOffsetBytes(layout: DataJournalLayout, counter: number): number {
  return (CHECKPOINT_SLOTS + (counter % layout.entryBlocks)) * BLOCK_SIZE_BYTES;
}

function payloadOffsetBytes(layout: DataJournalLayout, counter: number): number {
  return (CHECKPOINT_SLOTS + layout.entryBlocks + (counter % layout.payloadBlocks)) * BLOCK_SIZE_BYTES;
}

/** What one update holds on one member: its entry and payload blocks, by counter. */
export interface Reservation {
  entries: number[];
  payloadFirst: number;
  payloadBlocks: number;
}

export interface ManagerStats {
  entriesWritten: number;
  payloadBlocksWritten: number;
  flushes: number;
}

/** One member's I/O manager: its rings, its reservations, its shared flushes. */
export class MemberJournalManager {
  readonly member: DataJournalMember;
  readonly layout: DataJournalLayout;
  private readonly arrayUuid: Buffer;
  private entryHead = 0;
  private entryTail = 0;
  private payloadHead = 0;
  private payloadTail = 0;
  /** Reservations in the order taken (and so in update order): freed from the front. */
  private readonly held: { seq: number; entryEnd: number; payloadEnd: number }[] = [];
  private pendingFlush: Promise<void> | undefined;
  private runningFlush: Promise<void> | undefined;
  readonly stats: ManagerStats = { entriesWritten: 0, payloadBlocksWritten: 0, flushes: 0 };

  constructor(member: DataJournalMember, layout: DataJournalLayout, arrayUuid: Buffer) {
    this.member = member;
    this.layout = layout;
    this.arrayUuid = arrayUuid;
  }

  hasRoom(entries: number, payloadBlocks: number): boolean {
    return this.entryHead - this.entryTail + entries <= this.layout.entryBlocks
      && this.payloadHead - this.payloadTail + payloadBlocks <= this.layout.payloadBlocks;
  }

  /** Fraction of the larger ring in use. */
  get usedFraction(): number {
    return Math.max((this.entryHead - this.entryTail) / this.layout.entryBlocks, (this.payloadHead - this.payloadTail) / this.layout.payloadBlocks);
  }

  reserve(seq: number, entries: number, payloadBlocks: number): Reservation {
    assert(this.hasRoom(entries, payloadBlocks), `room on ${this.member.path} checked before reserving`);
    assert(this.held.length === 0 || this.held[this.held.length - 1]!.seq < seq, 'reservations in update order');
    const reservation = { entries: Array.from({ length: entries }, (_, i) => this.entryHead + i), payloadFirst: this.payloadHead, payloadBlocks };
    this.entryHead += entries;
    this.payloadHead += payloadBlocks;
    this.held.push({ seq, entryEnd: this.entryHead, payloadEnd: this.payloadHead });
    return reservation;
  }

  /** Frees the space of every update numbered below `appliedBelow` (a durable checkpoint says so). */
  free(appliedBelow: number): void {
    while (this.held.length > 0 && this.held[0]!.seq < appliedBelow) {
      const front = this.held.shift()!;
      this.entryTail = front.entryEnd;
      this.payloadTail = front.payloadEnd;
    }
  }

  /** Writes a payload of whole blocks at ring counter `first` (split where the ring wraps). */
  async writePayload(first: number, bytes: Buffer): Promise<void> {
    const blocks = bytes.length / BLOCK_SIZE_BYTES;
    assert(Number.isInteger(blocks) && blocks > 0 && blocks <= this.layout.payloadBlocks, 'payload of whole blocks that fits the ring');
    const writes: Promise<void>[] = [];
    let done = 0;
    while (done < blocks) {
      const position = (first + done) % this.layout.payloadBlocks;
      const run = Math.min(blocks - done, this.layout.payloadBlocks - position);
      writes.push(this.member.writeRegion('data-journal', payloadOffsetBytes(this.layout, first + done), bytes.subarray(done * BLOCK_SIZE_BYTES, (done + run) * BLOCK_SIZE_BYTES)));
      done += run;
    }
    await Promise.all(writes);
    this.stats.payloadBlocksWritten += blocks;
  }

  async readPayload(first: number, blocks: number): Promise<Buffer> {
    const out = Buffer.alloc(blocks * BLOCK_SIZE_BYTES);
    let done = 0;
    while (done < blocks) {
      const position = (first + done) % this.layout.payloadBlocks;
      const run = Math.min(blocks - done, this.layout.payloadBlocks - position);
      await this.member.readRegion('data-journal', payloadOffsetBytes(this.layout, first + done), out.subarray(done * BLOCK_SIZE_BYTES, (done + run) * BLOCK_SIZE_BYTES));
      done += run;
    }
    return out;
  }

  /** The write session's epoch, stamped on every entry (set when the session's journals start). */
  epoch = 0;

  async writeEntry(counter: number, entry: Omit<DataJournalEntry, 'arrayUuid' | 'epoch'>): Promise<void> {
    await this.member.writeRegion('data-journal', entryOffsetBytes(this.layout, counter), encodeDataJournalEntry({ ...entry, arrayUuid: this.arrayUuid, epoch: this.epoch }));
    this.stats.entriesWritten++;
  }

  async writeCheckpoint(slot: number, appliedBelow: number): Promise<void> {
    assert(slot >= 0 && slot < CHECKPOINT_SLOTS, 'checkpoint slot');
    const entry: DataJournalEntry = {
      arrayUuid: this.arrayUuid, appliedBelow, step: 'checkpoint', side: 'data', seq: 0, stripe: 0, dataIndex: 0, rowFirst: 0, rowCount: 0, payloadBlock: 0, payloadCrc: 0, epoch: this.epoch,
    };
    await this.member.writeRegion('data-journal', slot * BLOCK_SIZE_BYTES, encodeDataJournalEntry(entry));
  }

  /**
   * Resolves after a flush of this member that began after the call: it covers every write
   * completed before the call. Steps arriving while a flush runs share the next one.
   */
  durable(): Promise<void> {
    if (this.pendingFlush) return this.pendingFlush;
    let pending: Promise<void> | undefined;
    pending = (async () => {
      await this.runningFlush?.catch(() => {});
      if (this.pendingFlush === pending) this.pendingFlush = undefined;
      const run = this.member.flush();
      this.runningFlush = run;
      try {
        await run;
        this.stats.flushes++;
      } finally {
        if (this.runningFlush === run) this.runningFlush = undefined;
      }
    })();
    this.pendingFlush = pending;
    return pending;
  }

  /** Journals one step: its payload and entry written, then made durable with the member's next flush. */
  async journalStep(counter: number, entry: Omit<DataJournalEntry, 'arrayUuid' | 'payloadCrc' | 'epoch'>, payload?: Buffer): Promise<void> {
    assert(stepHasPayload(entry.step) === (payload !== undefined), `step ${entry.step} ${payload ? 'has' : 'has no'} payload`);
    await Promise.all([
      payload ? this.writePayload(entry.payloadBlock, payload) : Promise.resolve(),
      this.writeEntry(counter, { ...entry, payloadCrc: payload ? crc32c(payload) : 0 }),
    ]);
    await this.durable();
  }
}

export interface DataJournalOptions {
  arrayUuid: Buffer;
  layout: DataJournalLayout;
  /** The next update number and the newest durable checkpoint (from the scan at assembly). */
  nextSeq: number;
  appliedBelow: number;
  /** The members whose journals a checkpoint must reach (every member in the array). */
  members(): DataJournalMember[];
  /** Flushes every member in the array (in-place writes of applied updates become durable). */
  flushMembers(): Promise<void>;
  /** A member whose journal write or flush failed: the engine fails it. */
  memberFailed(member: DataJournalMember, error: DeviceIoError): Promise<void>;
  /** The write session's epoch (the superblock events once the session's first write began). */
  epoch(): number;
}

export interface DataJournalStats {
  updatesBegun: number;
  updatesApplied: number;
  checkpoints: number;
  roomWaits: number;
}

/** What one update needs on one member. */
export interface RoomNeed {
  member: DataJournalMember;
  entries: number;
  payloadBlocks: number;
}

/** The managers of all members, update numbering, space, checkpoints. */
export class DataJournal {
  private readonly options: DataJournalOptions;
  private readonly managers = new Map<DataJournalMember, MemberJournalManager>();
  private nextSeq: number;
  private appliedBelowDurable: number;
  private checkpointCount = 0;
  private readonly inflight = new Set<number>();
  private appliedSinceCheckpoint = 0;
  private roomWaiters: (() => void)[] = [];
  /** sync() callers waiting for the updates in flight to be applied. */
  private drainWaiters: (() => void)[] = [];
  private checkpointRunning: Promise<void> | undefined;
  private checkpointAgain = false;
  private failure: unknown;
  private started: Promise<void> | undefined;
  private epoch = 0;
  readonly stats: DataJournalStats = { updatesBegun: 0, updatesApplied: 0, checkpoints: 0, roomWaits: 0 };

  constructor(options: DataJournalOptions) {
    this.options = options;
    this.nextSeq = Math.max(options.nextSeq, options.appliedBelow);
    this.appliedBelowDurable = options.appliedBelow;
  }

  get layout(): DataJournalLayout {
    return this.options.layout;
  }

  manager(member: DataJournalMember): MemberJournalManager {
    let manager = this.managers.get(member);
    if (!manager) {
      manager = new MemberJournalManager(member, this.options.layout, this.options.arrayUuid);
      manager.epoch = this.epoch;
      // A member new to the array holds nothing of ours below the checkpoint: all its space is free.
      this.managers.set(member, manager);
    }
    return manager;
  }

  get appliedBelow(): number {
    return this.appliedBelowDurable;
  }

  /** Writers waiting for journal space right now (a full journal). */
  get waitingForRoom(): number {
    return this.roomWaiters.length;
  }

  get updatesInFlight(): number {
    return this.inflight.size;
  }

  /** The fullest member's journal, as a fraction. */
  get usedFraction(): number {
    return Math.max(0, ...[...this.managers.values()].map((manager) => manager.usedFraction));
  }

  get managerStats(): { path: string; stats: ManagerStats; usedFraction: number }[] {
    return [...this.managers.values()].map((manager) => ({ path: manager.member.path, stats: { ...manager.stats }, usedFraction: manager.usedFraction }));
  }

  /**
   * Numbers a new update and reserves its space on every member it involves, waiting while any
   * has no room (never failing for it).
   */
  async begin(needs: readonly RoomNeed[]): Promise<{ seq: number; reservations: Map<DataJournalMember, Reservation> }> {
    // The session's rings start over at block 0: first, every member's checkpoint says all on it is history.
    this.started ??= (async () => {
      this.epoch = this.options.epoch();
      for (const manager of this.managers.values()) manager.epoch = this.epoch;
      await this.checkpointAll();
    })();
    await this.started;
    for (;;) {
      if (this.failure) throw this.failure;
      if (needs.every((need) => this.manager(need.member).hasRoom(need.entries, need.payloadBlocks))) break;
      this.stats.roomWaits++;
      const woken = new Promise<void>((resolve) => this.roomWaiters.push(resolve));
      this.requestCheckpoint();
      await woken;
    }
    const seq = this.nextSeq++;
    this.inflight.add(seq);
    this.stats.updatesBegun++;
    const reservations = new Map<DataJournalMember, Reservation>();
    for (const need of needs) reservations.set(need.member, this.manager(need.member).reserve(seq, need.entries, need.payloadBlocks));
    return { seq, reservations };
  }

  /** The update's in-place writes are done (or it was abandoned): its space frees at a checkpoint. */
  applied(seq: number): void {
    assert(this.inflight.delete(seq), `update ${seq} in flight`);
    if (this.inflight.size === 0) for (const wake of this.drainWaiters.splice(0)) wake();
    this.stats.updatesApplied++;
    this.appliedSinceCheckpoint++;
    const fullest = this.usedFraction;
    if (this.roomWaiters.length > 0 || this.appliedSinceCheckpoint >= CHECKPOINT_EVERY_UPDATES || fullest >= 0.5) this.requestCheckpoint();
  }

  /** An update that failed part-way (the array failed): no checkpoint may pass it, and writes stop. */
  abandon(seq: number, error: unknown): void {
    assert(this.inflight.has(seq), `update ${seq} in flight`);
    this.failure ??= error;
    for (const wake of this.roomWaiters.splice(0)) wake();
    for (const wake of this.drainWaiters.splice(0)) wake();
  }

  /** Runs a checkpoint in the background (one at a time; a request during one runs another after it). */
  requestCheckpoint(): void {
    if (this.checkpointRunning) {
      this.checkpointAgain = true;
      return;
    }
    this.checkpointRunning = (async () => {
      try {
        do {
          this.checkpointAgain = false;
          await this.checkpointOnce();
        } while (this.checkpointAgain);
      } catch (error) {
        this.failure ??= error;
        // Waiters for room learn of the failure; otherwise they wake only when space was freed
        // (a checkpoint that frees nothing must not set them spinning).
        for (const wake of this.roomWaiters.splice(0)) wake();
      } finally {
        this.checkpointRunning = undefined;
      }
    })();
  }

  /** Waits for every update in flight to be applied, then for a checkpoint covering them all. */
  async sync(): Promise<void> {
    // An acknowledged write's last update may still be rewriting its in-place copies.
    while (this.inflight.size > 0 && !this.failure) await new Promise<void>((resolve) => this.drainWaiters.push(resolve));
    while (this.checkpointRunning) await this.checkpointRunning;
    if (this.failure) throw this.failure;
    if (this.inflight.size === 0 && this.appliedBelowDurable === this.nextSeq) return;
    await this.checkpointOnce();
  }

  private async checkpointOnce(): Promise<void> {
    const appliedBelow = this.inflight.size > 0 ? Math.min(...this.inflight) : this.nextSeq;
    if (appliedBelow <= this.appliedBelowDurable) return;
    this.appliedSinceCheckpoint = 0;
    // In-place writes of the updates below it durable first, then the checkpoint that frees them.
    await this.options.flushMembers();
    await this.writeCheckpoint(appliedBelow);
    for (const manager of this.managers.values()) manager.free(appliedBelow);
    for (const wake of this.roomWaiters.splice(0)) wake();
  }

  /** A checkpoint entry: every update numbered below `appliedBelow` is applied in place. */
  private checkpointEntry(appliedBelow: number): Buffer {
    return encodeDataJournalEntry({
      arrayUuid: this.options.arrayUuid, appliedBelow, step: 'checkpoint', side: 'data', seq: 0, stripe: 0, dataIndex: 0, rowFirst: 0, rowCount: 0, payloadBlock: 0, payloadCrc: 0, epoch: this.epoch,
    });
  }

  /** Writes checkpoint `appliedBelow` to every member in the array and makes it durable there. */
  async writeCheckpoint(appliedBelow: number): Promise<void> {
    const slot = this.checkpointCount++ % CHECKPOINT_SLOTS;
    await Promise.all(this.options.members().map(async (member) => {
      try {
        await member.writeRegion('data-journal', slot * BLOCK_SIZE_BYTES, this.checkpointEntry(appliedBelow));
        await member.flush();
      } catch (error) {
        if (!(error instanceof DeviceIoError)) throw error;
        await this.options.memberFailed(member, error);
      }
    }));
    this.appliedBelowDurable = Math.max(this.appliedBelowDurable, appliedBelow);
    this.stats.checkpoints++;
  }

  /**
   * Everything numbered so far is applied (after recovery, or at a session's start): both
   * checkpoint slots of every member say so, the one holding the lower value written first, so a
   * torn write never leaves a member with less than it had.
   */
  async checkpointAll(): Promise<void> {
    assert(this.inflight.size === 0, 'a full checkpoint with no update in flight');
    const appliedBelow = this.nextSeq;
    await Promise.all(this.options.members().map(async (member) => {
      try {
        const slots = Buffer.alloc(CHECKPOINT_SLOTS * BLOCK_SIZE_BYTES);
        await member.readRegion('data-journal', 0, slots).catch((error) => { if (!(error instanceof DeviceIoError)) throw error; });
        const held = Array.from({ length: CHECKPOINT_SLOTS }, (_, slot) => {
          const decoded = decodeDataJournalEntry(slots.subarray(slot * BLOCK_SIZE_BYTES, (slot + 1) * BLOCK_SIZE_BYTES));
          return decoded?.ok && decoded.value.arrayUuid.equals(this.options.arrayUuid) ? decoded.value.appliedBelow : -1;
        });
        const order = Array.from({ length: CHECKPOINT_SLOTS }, (_, slot) => slot).sort((a, b) => held[a]! - held[b]!);
        for (const slot of order) {
          await member.writeRegion('data-journal', slot * BLOCK_SIZE_BYTES, this.checkpointEntry(appliedBelow));
          await member.flush();
        }
      } catch (error) {
        if (!(error instanceof DeviceIoError)) throw error;
        await this.options.memberFailed(member, error);
      }
    }));
    this.appliedBelowDurable = Math.max(this.appliedBelowDurable, appliedBelow);
    this.checkpointCount = 0;
    this.stats.checkpoints++;
  }
}

// ---- reading the journals (recovery, examine) ---------------------------------------------

export interface FoundEntry {
  member: DataJournalMember;
  entry: DataJournalEntry;
}

export interface MemberJournalScan {
  member: DataJournalMember;
  entries: DataJournalEntry[];
  /** The highest checkpoint (or entry's appliedBelow) on this member. */
  appliedBelow: number;
  /** Entry blocks that carried the magic but failed to decode. */
  corrupt: number;
  unreadable: number;
}

/** Reads a member's checkpoint slots and entry ring: the entries of this array, and its newest checkpoint. */
export async function scanMemberJournal(member: DataJournalMember, layout: DataJournalLayout, arrayUuid: Buffer): Promise<MemberJournalScan> {
  const scan: MemberJournalScan = { member, entries: [], appliedBelow: 0, corrupt: 0, unreadable: 0 };
  const blocks = CHECKPOINT_SLOTS + layout.entryBlocks;
  const readBatchBlocks = 256;
  for (let first = 0; first < blocks; first += readBatchBlocks) {
    const count = Math.min(readBatchBlocks, blocks - first);
    const bytes = Buffer.alloc(count * BLOCK_SIZE_BYTES);
    try {
      await member.readRegion('data-journal', first * BLOCK_SIZE_BYTES, bytes);
    } catch (error) {
      if (!(error instanceof DeviceIoError)) throw error;
      scan.unreadable += count;
      continue;
    }
    for (let i = 0; i < count; i++) {
      const decoded = decodeDataJournalEntry(bytes.subarray(i * DATA_JOURNAL_ENTRY_BYTES, (i + 1) * DATA_JOURNAL_ENTRY_BYTES));
      if (!decoded) continue;
      if (!decoded.ok) {
        scan.corrupt++;
        continue;
      }
      const entry = decoded.value;
      if (!entry.arrayUuid.equals(arrayUuid)) continue;
      scan.appliedBelow = Math.max(scan.appliedBelow, entry.appliedBelow);
      if (entry.step !== 'checkpoint' && first + i >= CHECKPOINT_SLOTS) scan.entries.push(entry);
    }
  }
  return scan;
}

/**
 * Reads the payload an entry names and checks it: the bytes, or undefined when they do not match
 * the entry's CRC (never written whole), or 'unreadable' when the member cannot read them (then
 * nothing is known of that step).
 */
export async function readEntryPayload(member: DataJournalMember, layout: DataJournalLayout, entry: DataJournalEntry): Promise<Buffer | undefined | 'unreadable'> {
  if (!stepHasPayload(entry.step) || entry.rowCount === 0 || entry.rowCount > layout.payloadBlocks) return undefined;
  const manager = new MemberJournalManager(member, layout, entry.arrayUuid);
  let bytes: Buffer;
  try {
    bytes = await manager.readPayload(entry.payloadBlock, entry.rowCount);
  } catch (error) {
    if (!(error instanceof DeviceIoError)) throw error;
    return 'unreadable';
  }
  return crc32c(bytes) === entry.payloadCrc ? bytes : undefined;
}

export type { DataJournalSide, DataJournalStep };
