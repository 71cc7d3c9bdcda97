// An assembled array: the read and write paths, degraded I/O, member failure, and the
// superblock updates that record state changes. Never prints: it returns values and throws
// JraidError for expected failures.

import { DeviceIoError } from '../device/block-device.js';
import type { Superblock } from '../format/superblock.js';
import { FLAG_DIRTY } from '../format/superblock.js';
import { Geometry, type StripeMap } from '../geometry/geometry.js';
import { computeP, computeQ, gfMulXorInto, reconstructRow, xorInto } from '../parity/parity.js';
import { gfPow2 } from '../parity/gf256.js';
import type { WriteJournal, WriteTicket } from '../journal/write-journal.js';
import { JraidError } from '../errors.js';
import { BLOCK_SIZE_BYTES, assert } from '../units.js';
import { MemberDisk } from './member-disk.js';
import { StripeLocks } from './stripe-lock.js';
import { WriteIntent } from './write-intent.js';
import { BadBlocks } from './bad-blocks.js';
import { MemberJournalStore, readJournal, type NewestRecord } from '../journal/store.js';
import { JournalManager } from '../journal/manager.js';
import { encodeJournalRecord, type BlockCheck, type JournalRecord } from '../format/journal-record.js';
import { crc32c } from '../format/crc32c.js';
import { SECTOR_SIZE_BYTES } from '../units.js';
import { writeSuperblocks } from './superblock-io.js';

/** Stripes one write or read call works on at once. */
export const STRIPES_IN_FLIGHT_MAX = 8;

export type ArrayState = 'clean' | 'active' | 'degraded' | 'failed';

/** An array event the engine reports upward (the CLI or daemon decides how to show it). */
export type ArrayEvent =
  | { kind: 'member-failed'; path: string; role: number | null; reason: string }
  | { kind: 'read-error-corrected'; path: string; memberDataOffsetBytes: number }
  /** A read-only array rebuilt an unreadable block from parity and returned it, but wrote nothing. */
  | { kind: 'read-error-rebuilt'; path: string; memberDataOffsetBytes: number };

/** Journal manager tuning (dirty-log): see JournalManagerOptions. */
export interface JournalOptions {
  idleCleanMs?: number;
  scheduleTimer?: (fire: () => void, delayMs: number) => () => void;
  cleanBatchStripes?: number;
  /** Test only: release writers before the record is durable. */
  unsafeSkipBarrier?: boolean;
}

export interface RaidArrayOptions {
  readOnly: boolean;
  journal?: WriteJournal;
  onEvent?: (event: ArrayEvent) => void;
}

interface StripePiece {
  dataIndex: number;
  chunkOffsetBytes: number;
  data: Buffer;
}

type RowMode = 'rmw' | 'rcw' | 'reconstruct';

export class RaidArray {
  readonly geometry: Geometry;
  /** The array-wide superblock state; each member's copy differs only in memberUuid/thisIndex. */
  sb: Superblock;
  /** Open members by member-table index (faulty members may still be open). */
  readonly disks: Map<number, MemberDisk>;
  readonly readOnly: boolean;
  journal: WriteJournal | undefined;
  private readonly locks = new StripeLocks();
  private readonly onEvent: (event: ArrayEvent) => void;
  /** The first write's superblock commits (the events rule), shared by concurrent first writers. */
  private activation: Promise<void> | undefined;
  private dirtyMarked = false;
  /** Superblock commits run one at a time, in call order (see commitSuperblocks). */
  private closed = false;
  /** Marks of stripes written while a role is lost, for re-add. */
  readonly writeIntent: WriteIntent;
  /** Array blocks that read as EIO until rewritten (torn by a crash, or lost with a member). */
  readonly badBlocks: BadBlocks;
  /** What the journal region held at assembly (dirty-log policy). */
  journalState: NewestRecord | undefined;
  /** The journal store, once the journal manager runs. */
  journalStore: MemberJournalStore | undefined;
  /** Set when per-member counters changed and should reach the superblocks at close. */
  private countersChanged = false;
  /** Superblock commits run one at a time, each applying its change to the state the last one left. */
  private commitChain: Promise<unknown> = Promise.resolve();
  /** Rebuild progress by member index: stripes below it are rebuilt (not yet all durable). */
  readonly rebuildProgress = new Map<number, number>();
  /** Bad-block list writes run one at a time. */
  private badBlocksChain: Promise<unknown> = Promise.resolve();
  /** Member failures being committed, by member index: a second caller waits for the first. */
  private readonly failing = new Map<number, Promise<void>>();
  /**
   * Recovery this array needs and, being read-only, did not run. Reads that would depend on
   * it (a stripe the journal lists, or a rebuild from stale parity) are refused.
   */
  unrecovered: 'none' | 'dirty-stripes' | 'full-resync' = 'none';
  private unrecoveredStripes: ReadonlySet<number> | undefined;

  constructor(sb: Superblock, disks: Map<number, MemberDisk>, options: RaidArrayOptions) {
    this.sb = sb;
    this.disks = disks;
    this.readOnly = options.readOnly;
    this.journal = options.journal;
    this.onEvent = options.onEvent ?? (() => {});
    this.geometry = new Geometry({
      level: sb.level, layout: sb.layout, raidDevices: sb.raidDevices,
      chunkSizeBytes: sb.chunkSizeBytes, dataSizeBytes: sb.dataSizeBytes,
    });
    assert(this.geometry.arraySizeBytes === sb.arraySizeBytes, 'geometry matches superblock');
    this.badBlocks = new BadBlocks(sb.arrayUuid);
    const array = this;
    this.writeIntent = new WriteIntent({
      geometry: this.geometry,
      arrayUuid: sb.arrayUuid,
      chunkBytes: sb.writeIntentChunkBytes,
      get events() { return array.sb.events; },
      // Not a member being failed: its marks are written before it is (and it would fail them).
      bitmapDisks: () => [...this.disks].filter(([index]) => ['active', 'rebuilding'].includes(this.sb.members[index]!.state) && !this.failing.has(index)).map(([, disk]) => disk),
      diskFailed: (disk, error) => this.failMember(this.indexOfDisk(disk), `write-intent write failed: ${error.message}`),
    });
  }

  /** Loads state kept in member regions (the write-intent bitmap). Called once after assembly. */
  async loadRegions(): Promise<void> {
    const inSync = this.inSyncDisks();
    await this.writeIntent.load(inSync);
    await this.badBlocks.load(inSync);
    if (this.sb.policy === 'dirty-log') this.journalState = await readJournal(inSync, this.sb.arrayUuid, new MemberJournalStore(this).layout);
  }

  /** The member-table index of `disk` (matched by its device: re-add opens a member's disk afresh). */
  indexOfDisk(disk: MemberDisk): number {
    const found = [...this.disks].find(([, candidate]) => candidate === disk || candidate.device === disk.device);
    assert(found, `disk ${disk.path} belongs to the array`);
    return found[0];
  }

  private inSyncDisks(): MemberDisk[] {
    return [...this.disks].filter(([index]) => this.sb.members[index]!.state === 'active').map(([, disk]) => disk);
  }

  /** The newest journal record found at assembly, or written since by recovery. */
  get journalRecord(): JournalRecord | undefined {
    return this.journalState?.record;
  }

  /**
   * Writes the bad-block list to every member in the array. One at a time, each writing the list
   * as it is when its turn comes: two at once could land out of order on a member, leaving the
   * older list there (blocks cleared since would read EIO again after a restart).
   */
  async persistBadBlocks(): Promise<void> {
    const run = this.badBlocksChain.then(() => this.badBlocks.persist([...this.disks].filter(([index]) => ['active', 'rebuilding'].includes(this.sb.members[index]!.state)).map(([, disk]) => disk)));
    this.badBlocksChain = run.catch(() => {});
    const failed = await run;
    for (const { disk, error } of failed) await this.failMember(this.indexOfDisk(disk), `bad-block list write failed: ${error.message}`);
  }

  /** After recovery: a clean journal record (dirty-log) or a clear dirty flag (resync). */
  async markRecovered(): Promise<void> {
    if (this.sb.policy === 'dirty-log') {
      const store = new MemberJournalStore(this);
      const generation = (this.journalRecord?.generation ?? 0) + 1;
      const record: JournalRecord = { arrayUuid: this.sb.arrayUuid, generation, clean: true, entries: [] };
      await store.writeRecord(generation, encodeJournalRecord(record));
      this.journalState = { record, copies: this.journalState?.copies ?? [] };
    }
    if (this.sb.flags & FLAG_DIRTY || this.sb.resyncOffsetBytes < this.sb.dataSizeBytes) {
      await this.commitSuperblocks((sb) => { sb.flags &= ~FLAG_DIRTY; sb.resyncOffsetBytes = sb.dataSizeBytes; });
    }
  }

  /** Starts the dirty-log journal manager (after any recovery). */
  startJournal(options: JournalOptions = {}): JournalManager | undefined {
    if (this.readOnly || this.sb.policy !== 'dirty-log' || this.journal) return undefined;
    const store = new MemberJournalStore(this);
    const manager = new JournalManager(store, {
      arrayUuid: this.sb.arrayUuid,
      volumeId: 1,
      generation: this.journalRecord?.generation ?? 0,
      recordBytesMax: store.layout.slotBytes,
      checksPerStripeMax: this.geometry.dataDisks * this.geometry.blocksPerChunk,
      idleCleanMs: options.idleCleanMs,
      scheduleTimer: options.scheduleTimer,
      cleanBatchStripes: options.cleanBatchStripes,
      unsafeSkipBarrier: options.unsafeSkipBarrier,
      startsClean: this.journalRecord?.clean ?? true,
    });
    assert(manager.entriesMax >= STRIPES_IN_FLIGHT_MAX, 'journalEntriesMax >= stripes one call keeps in flight');
    this.journal = manager;
    this.journalStore = store;
    return manager;
  }

  get sizeBytes(): number {
    return this.geometry.arraySizeBytes;
  }

  // ---- member state -------------------------------------------------------------------

  memberIndexForRole(role: number): number {
    return this.sb.members.findIndex((member) => member.role === role);
  }

  /** The disk to read `role` from for stripe `stripe`, or undefined when it must be reconstructed. */
  readableDisk(role: number, stripe: number): MemberDisk | undefined {
    const index = this.memberIndexForRole(role);
    if (index < 0) return undefined;
    const entry = this.sb.members[index]!;
    const disk = this.disks.get(index);
    if (!disk) return undefined;
    if (entry.state === 'active') return disk;
    if (entry.state === 'rebuilding' && this.rebuiltBytes(index) >= (stripe + 1) * this.geometry.chunkSizeBytes) return disk;
    return undefined;
  }

  /**
   * How far member `index` (rebuilding) holds rebuilt data: the rebuild's progress in memory,
   * which runs ahead of the superblocks' recovery offset (committed only after a flush makes
   * what it covers durable).
   */
  rebuiltBytes(index: number): number {
    return Math.max(this.sb.members[index]?.recoveryOffsetBytes ?? 0, this.rebuildProgress.get(index) ?? 0);
  }

  /** The disk that must receive writes for `role`, or undefined when the role is lost. */
  writableDisk(role: number): MemberDisk | undefined {
    const index = this.memberIndexForRole(role);
    if (index < 0) return undefined;
    const entry = this.sb.members[index]!;
    const disk = this.disks.get(index);
    if (!disk) return undefined;
    return entry.state === 'active' || entry.state === 'rebuilding' ? disk : undefined;
  }

  private countCorrected(index: number, blocks: number): void {
    this.sb.members[index]!.readErrorsCorrected += blocks;
    this.countersChanged = true;
  }

  /** Roles that cannot be read at all (missing or faulty), whatever the stripe. */
  lostRoles(): number[] {
    const lost: number[] = [];
    for (let role = 0; role < this.sb.raidDevices; role++) {
      const index = this.memberIndexForRole(role);
      const entry = index >= 0 ? this.sb.members[index]! : undefined;
      if (!entry || !this.disks.has(index) || (entry.state !== 'active' && entry.state !== 'rebuilding')) lost.push(role);
    }
    return lost;
  }

  /** Roles not fully in sync: lost ones plus those still rebuilding. */
  degradedRoles(): number[] {
    const roles = new Set(this.lostRoles());
    this.sb.members.forEach((entry) => { if (entry.role !== null && entry.state === 'rebuilding') roles.add(entry.role); });
    return [...roles].sort((a, b) => a - b);
  }

  /** Health alone: clean, degraded or failed, whatever the journal's activity. */
  health(): 'clean' | 'degraded' | 'failed' {
    const state = this.state();
    return state === 'active' ? 'clean' : state;
  }

  state(): ArrayState {
    const degraded = this.degradedRoles().length;
    if (this.lostRoles().length > this.geometry.parityDisks) return 'failed';
    if (degraded > 0) return 'degraded';
    if (this.sb.flags & FLAG_DIRTY) return 'active';
    if (this.journal) return this.journal.clean ? 'clean' : 'active';
    return this.journalRecord && !this.journalRecord.clean ? 'active' : 'clean';
  }

  /**
   * Writes the array-wide superblock state to every member that is in the array. A member
   * whose superblock write fails is marked faulty and the state written again to the rest.
   *
   * Commits run one at a time, each finishing on every member before the next starts, and a
   * member one commit behind (a crash during the last one) is first brought level. So at every
   * instant the in-sync members are within one event of each other, which is what lets
   * assembly call a member two behind stale (docs/FORMAT.md, Events). `mutate` sees the state
   * as it is when the commit's turn comes.
   */
  async commitSuperblocks(mutate: (sb: Superblock) => void): Promise<void> {
    assert(!this.readOnly, 'superblock update on a read-only array');
    const run = this.commitChain.then(() => this.commitNow(mutate));
    this.commitChain = run.catch(() => {});
    const lost = await run;
    // Outside the chain: what a lost member sets off (bitmap writes) may fail more members. Its
    // unflushed stripes are marked too (after its faulty mark, here: re-add waits for this, on
    // the entry commitNow put in `failing` before the chain moved on).
    for (const { index, role, settle } of lost) {
      try {
        const unflushed = role !== null ? this.disks.get(index)?.unflushedStripes() ?? [] : [];
        if (unflushed.length > 0) await this.writeIntent.markStripes(unflushed);
        await this.memberLost(index, role, 'superblock write failed');
      } finally {
        settle();
      }
    }
  }

  /** Waits for every superblock commit started so far: the state a write relied on is durable. */
  private async stateDurable(): Promise<void> {
    await this.commitChain;
  }

  private async commitNow(mutate: (sb: Superblock) => void): Promise<LostInCommit[]> {
    await this.levelLaggards();
    const next: Superblock = { ...this.sb, members: this.sb.members.map((member) => ({ ...member })) };
    mutate(next);
    const lost: LostInCommit[] = [];
    for (;;) {
      next.events = this.sb.events + 1;
      next.updatedAtMs = Date.now();
      this.sb = next;
      const failed: number[] = [];
      await Promise.all([...this.disks].map(async ([index, disk]) => {
        const entry = next.members[index]!;
        if (entry.state === 'faulty') return;
        const own: Superblock = { ...next, memberUuid: entry.uuid, thisIndex: index };
        try {
          await writeSuperblocks(disk.device, own);
          disk.sb = own;
        } catch (error) {
          if (!(error instanceof DeviceIoError)) throw error;
          failed.push(index);
        }
      }));
      if (failed.length === 0) return lost;
      for (const index of failed) {
        next.members[index] = { ...next.members[index]!, state: 'faulty', recoveryOffsetBytes: 0 };
        this.rebuildProgress.delete(index);
        // Listed as being failed at once, so whoever waits for failures to settle (re-add) waits
        // for its marks too, even before the committing caller resumes.
        let settle = () => {};
        if (!this.failing.has(index)) {
          const handled = new Promise<void>((resolve) => { settle = resolve; });
          this.failing.set(index, handled.finally(() => this.failing.delete(index)));
        }
        lost.push({ index, role: next.members[index]!.role, settle });
      }
    }
  }

  /**
   * In-sync members one event behind (assembly took them: they missed only the last commit, in
   * a crash) get the current state before the next commit, so no crash during it can leave one
   * two behind. A member further behind is never levelled: it is stale, or being re-added.
   */
  private async levelLaggards(): Promise<void> {
    const laggards = [...this.disks].filter(([index, disk]) => {
      const entry = this.sb.members[index];
      return entry !== undefined && entry.state !== 'faulty' && disk.sb.events + 1 === this.sb.events;
    });
    await Promise.all(laggards.map(async ([index, disk]) => {
      const own: Superblock = { ...this.sb, memberUuid: this.sb.members[index]!.uuid, thisIndex: index };
      try {
        await writeSuperblocks(disk.device, own);
        disk.sb = own;
      } catch (error) {
        if (!(error instanceof DeviceIoError)) throw error; // the commit that follows fails it
      }
    }));
  }

  /**
   * Marks a member faulty everywhere; the array carries on degraded if it can. Returns once the
   * faulty mark is durable on the other members (a caller that finds the member already being
   * failed waits for that). Safe to call from inside the journal's record writes: it only asks
   * the journal for a rewrite, it does not wait for one.
   */
  failMember(index: number, reason: string): Promise<void> {
    const entry = this.sb.members[index];
    assert(entry, `member index ${index} exists`);
    const inProgress = this.failing.get(index);
    if (inProgress) return inProgress;
    // Faulty already: a commit that marked it may still be running (a failed superblock write).
    if (entry.state === 'faulty') return this.stateDurable();
    const run = (async () => {
      // Writes it took since its last flush may never reach its medium: their stripes are
      // marked (on the other members) before it is failed, so its return rebuilds them.
      const unflushed = entry.role !== null && !this.readOnly ? this.disks.get(index)?.unflushedStripes() ?? [] : [];
      if (unflushed.length > 0) await this.writeIntent.markStripes(unflushed);
      await this.commitSuperblocks((sb) => {
        sb.members[index]!.state = 'faulty';
        sb.members[index]!.recoveryOffsetBytes = 0;
        this.rebuildProgress.delete(index);
      });
      await this.memberLost(index, entry.role, reason);
    })().finally(() => this.failing.delete(index));
    this.failing.set(index, run);
    return run;
  }

  /**
   * Waits until every member failure under way is fully handled: faulty marks committed, and
   * the write-intent marks of the writes those members missed durable. Re-add decides on them.
   */
  async failuresSettled(): Promise<void> {
    for (let round = 0; round <= this.sb.members.length; round++) {
      await Promise.allSettled([...this.failing.values()]);
      await this.writeIntent.idle();
      await this.commitChain;
      if (this.failing.size === 0) return;
    }
  }

  /** After a member's faulty mark is durable: track writes for its return, renew the journal's copies, report it. */
  private async memberLost(index: number, role: number | null, reason: string): Promise<void> {
    if (role !== null) await this.writeIntent.startTracking(this.sb.events);
    // The failed member may have held copies of the newest journal record: the loop writes it
    // again (asked, not awaited: this may run inside that loop's own record write).
    if (this.journal && !this.readOnly) this.journal.rewrite().catch(() => {});
    this.onEvent({ kind: 'member-failed', path: this.disks.get(index)?.path ?? '(missing)', role, reason });
  }

  /**
   * Records members that have a role but are absent (not given at assembly) as faulty, and
   * starts write-intent tracking: they missed what is written from now on, and must come back
   * stale (re-add), not be taken in again as if in sync. Before the first write, and before
   * recovery changes a stripe around them.
   */
  async markAbsentFaulty(): Promise<void> {
    const absent = this.sb.members
      .map((entry, index) => ({ entry, index }))
      .filter(({ entry, index }) => entry.role !== null && entry.state !== 'faulty' && !this.disks.has(index));
    if (absent.length === 0) return;
    await this.commitSuperblocks((sb) => { for (const { index } of absent) sb.members[index]!.state = 'faulty'; });
    await this.writeIntent.startTracking(this.sb.events);
  }

  /**
   * Before the first write of a session (the events rule, docs/FORMAT.md): roles whose members
   * are absent are recorded faulty, and the events rise by two, in two commits that each finish
   * on every member before the next step. A member that missed the session is then at least two
   * behind however the session ends, while a crash during either commit leaves the members at
   * most one apart, with no data written yet.
   */
  private async prepareForWrite(): Promise<void> {
    if (this.readOnly) {
      throw new JraidError('E_REFUSED', 'the array was opened read-only', { hint: 'open it for writing (no --readonly)' });
    }
    this.activation ??= this.activate();
    try {
      await this.activation;
    } catch (error) {
      this.activation = undefined;
      throw error;
    }
  }

  private async activate(): Promise<void> {
    const absent = this.sb.members
      .map((entry, index) => ({ entry, index }))
      .filter(({ entry, index }) => entry.role !== null && entry.state !== 'faulty' && !this.disks.has(index));
    await this.commitSuperblocks((sb) => {
      for (const { index } of absent) sb.members[index]!.state = 'faulty';
      if (!this.journal) sb.flags |= FLAG_DIRTY;
    });
    if (absent.length > 0) await this.writeIntent.startTracking(this.sb.events);
    await this.commitSuperblocks(() => {});
    this.dirtyMarked = true;
  }

  private checkRange(offsetBytes: number, lengthBytes: number): void {
    if (!Number.isSafeInteger(offsetBytes) || !Number.isSafeInteger(lengthBytes) || offsetBytes < 0 || lengthBytes < 0
      || offsetBytes + lengthBytes > this.sizeBytes) {
      throw new JraidError('E_OUT_OF_RANGE', `range ${offsetBytes}+${lengthBytes} is outside the array (${this.sizeBytes} bytes)`, {
        hint: `offsets and lengths must end at or before byte ${this.sizeBytes}`,
      });
    }
  }

  /** Throws E_ARRAY_FAILED when more roles are lost than the level survives. */
  checkAlive(): void {
    if (this.lostRoles().length > this.geometry.parityDisks) {
      throw new JraidError('E_ARRAY_FAILED', `array has lost ${this.lostRoles().length} members; level ${this.sb.level} survives ${this.geometry.parityDisks}`, {
        hint: 'bring back a member with assemble --force or restore from backup; nothing acknowledged has been lost',
      });
    }
  }

  // ---- read path ----------------------------------------------------------------------

  async read(offsetBytes: number, lengthBytes: number): Promise<Buffer> {
    this.checkRange(offsetBytes, lengthBytes);
    const bad = this.badBlocks.find(offsetBytes, lengthBytes);
    if (bad) {
      const start = bad.firstBlock * BLOCK_SIZE_BYTES;
      throw new JraidError('E_BAD_BLOCK', `array bytes ${start}..${start + bad.blockCount * BLOCK_SIZE_BYTES - 1} are recorded bad (${bad.reason === 'torn' ? 'a write torn by a crash' : "lost with a member during a crash"}): reading them gives EIO`, {
        hint: 'rewrite those blocks (whole 4 KiB blocks) to clear them',
        details: { firstBlock: bad.firstBlock, blockCount: bad.blockCount, reason: bad.reason },
      });
    }
    const out = Buffer.alloc(lengthBytes);
    const extents = this.geometry.extents(offsetBytes, lengthBytes);
    await runBounded(extents, STRIPES_IN_FLIGHT_MAX, async (extent) => {
      const target = out.subarray(extent.arrayOffsetBytes - offsetBytes, extent.arrayOffsetBytes - offsetBytes + extent.lengthBytes);
      await this.locks.with(extent.stripe, () => this.readExtent(extent.stripe, extent.dataIndex, extent.chunkOffsetBytes, target));
    });
    return out;
  }

  private async readExtent(stripe: number, dataIndex: number, chunkOffsetBytes: number, target: Buffer): Promise<void> {
    this.checkAlive();
    const map = this.geometry.stripeMap(stripe);
    const role = map.dataRoles[dataIndex]!;
    const disk = this.readableDisk(role, stripe);
    this.refuseUnrecovered(stripe, disk === undefined);
    const memberOffset = this.geometry.memberDataOffsetBytes(stripe, chunkOffsetBytes);
    const B = BLOCK_SIZE_BYTES;
    const alignedStart = Math.floor(memberOffset / B) * B;
    const alignedEnd = Math.ceil((memberOffset + target.length) / B) * B;
    if (disk) {
      const buf = alignedStart === memberOffset && alignedEnd === memberOffset + target.length ? target : Buffer.alloc(alignedEnd - alignedStart);
      try {
        await disk.readData(alignedStart, buf);
      } catch (error) {
        if (!(error instanceof DeviceIoError)) throw error;
        // A latent sector error: block by block, rebuild what fails from parity, hand it back,
        // and rewrite it to the member (as md does).
        for (let at = alignedStart; at < alignedEnd; at += B) {
          const block = buf.subarray(at - alignedStart, at - alignedStart + B);
          try {
            await disk.readData(at, block);
          } catch (blockError) {
            if (!(blockError instanceof DeviceIoError)) throw blockError;
            const rebuilt = await this.reconstructRange(stripe, map, dataIndex, at, B, new Set([role]));
            rebuilt.copy(block);
            await this.repairReadError(disk, at, rebuilt);
          }
        }
      }
      if (buf !== target) buf.copy(target, 0, memberOffset - alignedStart, memberOffset - alignedStart + target.length);
      return;
    }
    const rebuilt = await this.reconstructRange(stripe, map, dataIndex, alignedStart, alignedEnd - alignedStart, new Set([role]));
    rebuilt.copy(target, 0, memberOffset - alignedStart, memberOffset - alignedStart + target.length);
  }

  private refuseUnrecovered(stripe: number, reconstructing: boolean): void {
    if (this.unrecovered === 'none') return;
    if (this.unrecovered === 'dirty-stripes') {
      this.unrecoveredStripes ??= new Set(this.journalRecord?.entries.map((entry) => entry.stripe) ?? []);
      if (!this.unrecoveredStripes.has(stripe)) return;
    } else if (!reconstructing) {
      return; // resync pending: data read straight from its member is as good as any
    }
    throw new JraidError('E_ARRAY_DIRTY', `stripe ${stripe} awaits recovery from an unclean shutdown, and this command opened the array read-only`, {
      hint: 'run jraid recover (or any writing command) first',
    });
  }

  private async repairReadError(disk: MemberDisk, memberOffsetBytes: number, bytes: Buffer): Promise<void> {
    if (this.readOnly) {
      this.onEvent({ kind: 'read-error-rebuilt', path: disk.path, memberDataOffsetBytes: memberOffsetBytes });
      return;
    }
    const index = this.indexOfDisk(disk);
    try {
      await disk.writeData(memberOffsetBytes, bytes);
      this.countCorrected(index, bytes.length / BLOCK_SIZE_BYTES);
      this.onEvent({ kind: 'read-error-corrected', path: disk.path, memberDataOffsetBytes: memberOffsetBytes });
    } catch (error) {
      if (!(error instanceof DeviceIoError)) throw error;
      await this.failMember(index, `rewrite after a read error failed: ${error.message}`);
    }
  }

  /**
   * Rebuilds `lengthBytes` of data chunk `dataIndex` at member data offset `memberOffsetBytes`
   * from the other members of the stripe. `avoid` lists roles known unreadable.
   */
  private async reconstructRange(stripe: number, map: StripeMap, dataIndex: number, memberOffsetBytes: number, lengthBytes: number, avoid: Set<number>): Promise<Buffer> {
    const k = this.geometry.dataDisks;
    const slots = this.slotRoles(map);
    for (;;) {
      const missing = slots.map((role, slot) => avoid.has(role) || !this.readableDisk(role, stripe) ? slot : -1).filter((slot) => slot >= 0);
      if (missing.length > this.geometry.parityDisks) {
        throw new JraidError('E_ARRAY_FAILED', `stripe ${stripe} has lost ${missing.length} chunks; level ${this.sb.level} can rebuild ${this.geometry.parityDisks}`, {
          hint: 'too many members failed; the data in this stripe cannot be read',
        });
      }
      const bufs: (Buffer | null)[] = slots.map((_, slot) => missing.includes(slot) ? null : Buffer.allocUnsafe(lengthBytes));
      const failedRole = await this.readSlots(slots, bufs, stripe, memberOffsetBytes);
      if (failedRole !== undefined) {
        avoid.add(failedRole);
        continue;
      }
      // Parity is byte-wise: the whole range is one "row" of longer blocks.
      const row = reconstructRow({
        data: bufs.slice(0, k),
        p: bufs[k]!,
        q: this.geometry.parityDisks === 2 ? bufs[k + 1]! : undefined,
      }, lengthBytes, map.qExponents);
      const out = row.data[dataIndex]!;
      return out;
    }
  }

  /** Reads the same member range of every non-null slot; returns the role that failed, if one did. */
  private async readSlots(slots: number[], bufs: (Buffer | null)[], stripe: number, memberOffsetBytes: number): Promise<number | undefined> {
    let failed: number | undefined;
    await Promise.all(slots.map(async (role, slot) => {
      const buf = bufs[slot];
      if (!buf) return;
      try {
        await this.readableDisk(role, stripe)!.readData(memberOffsetBytes, buf);
      } catch (error) {
        if (!(error instanceof DeviceIoError)) throw error;
        failed = role;
      }
    }));
    return failed;
  }

  /**
   * Reads one whole chunk of every role of the stripe that can be read, except `exclude`.
   * Returns buffers by slot (data 0..k-1, P, Q) with null where a role is lost or excluded;
   * a member whose read fails is left out too. Call under the stripe's lock.
   */
  async readStripeChunks(stripe: number, exclude: ReadonlySet<number> = new Set()): Promise<{ map: StripeMap; roles: number[]; chunks: (Buffer | null)[] }> {
    const map = this.geometry.stripeMap(stripe);
    const roles = this.slotRoles(map);
    const avoid = new Set(exclude);
    for (;;) {
      const chunks = roles.map((role) => avoid.has(role) || !this.readableDisk(role, stripe) ? null : Buffer.allocUnsafe(this.geometry.chunkSizeBytes));
      const failed = await this.readSlots(roles, chunks, stripe, this.geometry.memberDataOffsetBytes(stripe, 0));
      if (failed === undefined) return { map, roles, chunks };
      avoid.add(failed);
    }
  }

  /** Rebuilds the whole chunk of `role` in `stripe` from the other members (data, P or Q). */
  async reconstructChunk(stripe: number, role: number): Promise<Buffer> {
    const { map, roles, chunks } = await this.readStripeChunks(stripe, new Set([role]));
    const missing = chunks.filter((chunk) => chunk === null).length;
    if (missing > this.geometry.parityDisks) {
      throw new JraidError('E_ARRAY_FAILED', `stripe ${stripe}: ${missing} chunks unreadable, level ${this.sb.level} rebuilds ${this.geometry.parityDisks}`, {
        hint: 'too many members failed to rebuild this stripe',
      });
    }
    const k = this.geometry.dataDisks;
    const hasQ = this.geometry.parityDisks === 2;
    const slot = roles.indexOf(role);
    // Parity is byte-wise: the whole chunk is one "row" of longer blocks.
    const row = reconstructRow({ data: chunks.slice(0, k), p: chunks[k]!, q: hasQ ? chunks[k + 1]! : undefined }, this.geometry.chunkSizeBytes, map.qExponents);
    const out = slot < k ? row.data[slot]! : slot === k ? row.p : row.q!;
    return out;
  }

  /**
   * Rewrites the blocks of `stripe` that fail to read on a member still in the array, each
   * rebuilt from the rest of its row (scrub --repair: the writing counterpart of a read that
   * rebuilt a block without rewriting it). Call under the stripe's lock.
   */
  async repairUnreadable(stripe: number): Promise<void> {
    assert(!this.readOnly, 'repair on a read-only array');
    const map = this.geometry.stripeMap(stripe);
    const roles = this.slotRoles(map);
    const k = this.geometry.dataDisks;
    const B = BLOCK_SIZE_BYTES;
    const first = this.geometry.memberDataOffsetBytes(stripe, 0);
    for (const [slot, role] of roles.entries()) {
      const disk = this.readableDisk(role, stripe);
      if (!disk) continue;
      for (let at = first; at < first + this.geometry.chunkSizeBytes; at += B) {
        const block = Buffer.alloc(B);
        if (await disk.readData(at, block).then(() => true, (error) => { if (error instanceof DeviceIoError) return false; throw error; })) continue;
        let rebuilt: Buffer;
        if (slot < k) {
          rebuilt = await this.reconstructRange(stripe, map, slot, at, B, new Set([role]));
        } else {
          const sources = map.dataRoles.map((dataRole) => this.readableDisk(dataRole, stripe));
          if (sources.some((source) => source === undefined)) {
            // A data member failed meanwhile (a rewrite above, or another task): no parity to make.
            throw new JraidError('E_ARRAY_DEGRADED', `a member failed while stripe ${stripe} was being repaired: the array is degraded`, { hint: 'rebuild the lost member first (jraid rebuild), then scrub again' });
          }
          const data = Array.from({ length: k }, () => Buffer.alloc(B));
          await Promise.all(sources.map((source, i) => source!.readData(at, data[i]!)));
          rebuilt = slot === k ? computeP(data) : computeQ(data, undefined, map.qExponents);
        }
        await this.repairReadError(disk, at, rebuilt);
      }
    }
  }

  /**
   * Runs maintenance writes of one stripe (rebuild, scrub repair) through the journal when the
   * array has one: the stripe is listed in a durable record before `fn` writes, so a crash
   * mid-way leaves it for recovery. Call under the stripe's lock.
   */
  async journaled<T>(stripe: number, fn: () => Promise<T>): Promise<T> {
    await this.prepareForWrite();
    const ticket = this.journal ? await this.journal.begin(stripe) : undefined;
    try {
      if (ticket) await ticket.durable();
      return await fn();
    } finally {
      ticket?.done();
    }
  }

  /** Writes repaired blocks (scrub) of one stripe. Call under the stripe's lock. */
  async repairBlocks(stripe: number, fixes: { role: number; chunkOffsetBytes: number; block: Buffer }[]): Promise<void> {
    await this.journaled(stripe, async () => {
      await Promise.all(fixes.map(async (fix) => {
        const disk = this.writableDisk(fix.role);
        if (!disk) return; // failed meanwhile: it gets the stripe back when rebuilt
        try {
          await disk.writeData(this.geometry.memberDataOffsetBytes(stripe, fix.chunkOffsetBytes), fix.block);
        } catch (error) {
          if (!(error instanceof DeviceIoError)) throw error;
          await this.writeIntent.markStripe(stripe);
          await this.failMember(this.indexOfDisk(disk), `write error during scrub repair: ${error.message}`);
        }
      }));
    });
  }

  private slotRoles(map: StripeMap): number[] {
    return map.qRole >= 0 ? [...map.dataRoles, map.pRole, map.qRole] : [...map.dataRoles, map.pRole];
  }

  // ---- write path ---------------------------------------------------------------------

  async write(offsetBytes: number, data: Buffer): Promise<void> {
    this.checkRange(offsetBytes, data.length);
    if (data.length === 0) return;
    await this.prepareForWrite();
    const byStripe = new Map<number, StripePiece[]>();
    for (const extent of this.geometry.extents(offsetBytes, data.length)) {
      const start = extent.arrayOffsetBytes - offsetBytes;
      const pieces = byStripe.get(extent.stripe) ?? [];
      pieces.push({ dataIndex: extent.dataIndex, chunkOffsetBytes: extent.chunkOffsetBytes, data: data.subarray(start, start + extent.lengthBytes) });
      byStripe.set(extent.stripe, pieces);
    }
    await runBounded([...byStripe], STRIPES_IN_FLIGHT_MAX, ([stripe, pieces]) =>
      this.locks.with(stripe, () => this.writeStripe(stripe, pieces)));
    if (this.badBlocks.clearCovered(offsetBytes, data.length)) await this.persistBadBlocks();
  }

  /** Runs `fn` under the stripe's lock: maintenance (scrub, rebuild) uses it to stay ordered with I/O. */
  withStripe<T>(stripe: number, fn: () => Promise<T>): Promise<T> {
    return this.locks.with(stripe, fn);
  }

  private async writeStripe(stripe: number, pieces: StripePiece[]): Promise<void> {
    this.checkAlive();
    const ticket: WriteTicket | undefined = this.journal ? await this.journal.begin(stripe) : undefined;
    let touched = false;
    try {
      // A member whose read fails (a latent sector error) is planned around: its blocks are
      // reconstructed from the others and rewritten with the stripe, which repairs them.
      const avoid = new Set<number>();
      let plan = this.planStripeWrite(stripe, pieces, avoid);
      while (!(await this.readPlanned(plan, avoid))) plan = this.planStripeWrite(stripe, pieces, avoid);
      const checks = this.computeRows(plan, pieces, !!ticket);
      // Degraded: the stripe's write-intent mark is durable before its data lands. Judged by the
      // plan (a member it leaves out), not only by the roles lost now: a member failed when the
      // plan was made may be re-added by now, and must still get this stripe back.
      if (plan.writable.includes(undefined) || this.lostRoles().length > 0) await this.writeIntent.markStripe(stripe);
      if (ticket) await ticket.durable(checks);
      touched = true;
      await this.writePlanned(plan);
      // A member this write planned around (or failed) is faulty in memory at once: the write is
      // acknowledged only once that is durable, or a crash could bring the member back in with
      // this stripe's chunk missing.
      await this.stateDurable();
    } catch (error) {
      if (ticket && !touched) ticket.abandon();
      else if (ticket) ticket.done();
      throw error;
    }
    ticket?.done();
  }

  private planStripeWrite(stripe: number, pieces: StripePiece[], avoid: ReadonlySet<number>): StripePlan {
    const g = this.geometry;
    const B = BLOCK_SIZE_BYTES;
    const map = g.stripeMap(stripe);
    const k = g.dataDisks;
    const roles = this.slotRoles(map);
    const slotCount = roles.length;
    let rowFirst = Infinity;
    let rowLast = -1;
    for (const piece of pieces) {
      rowFirst = Math.min(rowFirst, Math.floor(piece.chunkOffsetBytes / B));
      rowLast = Math.max(rowLast, Math.floor((piece.chunkOffsetBytes + piece.data.length - 1) / B));
    }
    const rows = rowLast - rowFirst + 1;
    // coverage[slot * rows + r]: 0 untouched, 1 partial block, 2 whole block
    const coverage = new Uint8Array(k * rows);
    for (const piece of pieces) {
      const start = piece.chunkOffsetBytes;
      const end = start + piece.data.length;
      for (let row = Math.floor(start / B); row * B < end; row++) {
        const whole = start <= row * B && end >= (row + 1) * B;
        coverage[piece.dataIndex * rows + (row - rowFirst)] = whole ? 2 : 1;
      }
    }
    const readable = roles.map((role) => avoid.has(role) ? undefined : this.readableDisk(role, stripe));
    const writable = roles.map((role) => this.writableDisk(role));
    const needRead = roles.map(() => new Uint8Array(rows));
    const modes: RowMode[] = [];
    for (let r = 0; r < rows; r++) {
      const touchedSlots: number[] = [];
      const partialSlots: number[] = [];
      const untouchedSlots: number[] = [];
      for (let slot = 0; slot < k; slot++) {
        const c = coverage[slot * rows + r]!;
        if (c === 0) untouchedSlots.push(slot);
        else touchedSlots.push(slot);
        if (c === 1) partialSlots.push(slot);
      }
      const paritySlots = roles.slice(k).map((_, i) => k + i);
      const candidates: { mode: RowMode; reads: number[] }[] = [];
      const writableParity = paritySlots.filter((slot) => writable[slot]);
      if (touchedSlots.every((slot) => readable[slot]) && writableParity.every((slot) => readable[slot])) {
        candidates.push({ mode: 'rmw', reads: [...touchedSlots, ...writableParity] });
      }
      if (untouchedSlots.every((slot) => readable[slot]) && partialSlots.every((slot) => readable[slot])) {
        candidates.push({ mode: 'rcw', reads: [...untouchedSlots, ...partialSlots] });
      }
      const present = roles.map((_, slot) => slot).filter((slot) => readable[slot]);
      if (slotCount - present.length > g.parityDisks) {
        throw new JraidError('E_ARRAY_FAILED', `stripe ${stripe} has lost ${slotCount - present.length} chunks; writes stop`, {
          hint: 'too many members failed; nothing acknowledged was lost; bring a member back before writing',
        });
      }
      candidates.push({ mode: 'reconstruct', reads: present });
      candidates.sort((a, b) => a.reads.length - b.reads.length);
      const chosen = candidates[0]!;
      modes.push(chosen.mode);
      for (const slot of chosen.reads) needRead[slot]![r] = 1;
    }
    return {
      stripe, map, roles, rowFirst, rows, coverage, readable, writable, needRead, modes,
      bufs: roles.map(() => Buffer.alloc(rows * B)),
      repair: roles.map((role) => avoid.has(role) && this.readableDisk(role, stripe) !== undefined),
    };
  }

  /** Reads what the plan needs; false when a member failed and the stripe must be planned again. */
  private async readPlanned(plan: StripePlan, avoid: Set<number>): Promise<boolean> {
    const B = BLOCK_SIZE_BYTES;
    const failedRoles = new Set<number>();
    const reads: Promise<void>[] = [];
    plan.roles.forEach((role, slot) => {
      for (const [first, count] of runs(plan.needRead[slot]!)) {
        const disk = plan.readable[slot]!;
        const memberOffset = this.geometry.memberDataOffsetBytes(plan.stripe, (plan.rowFirst + first) * B);
        reads.push(disk.readData(memberOffset, plan.bufs[slot]!.subarray(first * B, (first + count) * B)).catch((error) => {
          if (!(error instanceof DeviceIoError)) throw error;
          failedRoles.add(role);
        }));
      }
    });
    await Promise.all(reads);
    for (const role of failedRoles) avoid.add(role);
    if (avoid.size > this.geometry.parityDisks) {
      throw new JraidError('E_IO', `stripe ${plan.stripe}: reads failed on ${avoid.size} members, more than level ${this.sb.level} can rebuild`, {
        hint: 'check the members with examine; nothing was written to this stripe',
      });
    }
    return failedRoles.size === 0;
  }

  /**
   * Computes new data and parity in the plan's buffers. With `withChecks`, returns block checks
   * for the journal: the new CRC of each data block written, and its old CRC where the old
   * contents were read (else the CRC of its new first sector), for torn-write detection.
   */
  private computeRows(plan: StripePlan, pieces: StripePiece[], withChecks: boolean): BlockCheck[] {
    const B = BLOCK_SIZE_BYTES;
    const checks: BlockCheck[] = [];
    const oldKnown = (slot: number, r: number) => plan.needRead[slot]![r] === 1 || !plan.readable[slot] || plan.modes[r] === 'reconstruct';
    const check = (slot: number, r: number, oldCrc: number | undefined, block: Buffer) => {
      if (!withChecks || !plan.writable[slot]) return;
      const blockIndex = slot * this.geometry.blocksPerChunk + plan.rowFirst + r;
      checks.push(oldCrc === undefined
        ? { blockIndex, newCrc: crc32c(block), kind: 'first-sector', checkCrc: crc32c(block.subarray(0, SECTOR_SIZE_BYTES)) }
        : { blockIndex, newCrc: crc32c(block), kind: 'old', checkCrc: oldCrc });
    };
    const k = this.geometry.dataDisks;
    const hasQ = this.geometry.parityDisks === 2;
    const byIndex = new Map(pieces.map((piece) => [piece.dataIndex, piece]));
    const view = (slot: number, r: number) => plan.bufs[slot]!.subarray(r * B, (r + 1) * B);
    const merge = (slot: number, r: number, into: Buffer) => {
      const piece = byIndex.get(slot)!;
      const blockStart = (plan.rowFirst + r) * B;
      const from = Math.max(piece.chunkOffsetBytes, blockStart);
      const to = Math.min(piece.chunkOffsetBytes + piece.data.length, blockStart + B);
      piece.data.copy(into, from - blockStart, from - piece.chunkOffsetBytes, to - piece.chunkOffsetBytes);
    };
    const delta = Buffer.alloc(B);
    for (let r = 0; r < plan.rows; r++) {
      const mode = plan.modes[r]!;
      const touched: number[] = [];
      for (let slot = 0; slot < k; slot++) if (plan.coverage[slot * plan.rows + r]! > 0) touched.push(slot);
      if (mode === 'rmw') {
        for (const slot of touched) {
          const block = view(slot, r);
          delta.set(block);
          const oldCrc = withChecks ? crc32c(block) : undefined;
          merge(slot, r, block);
          check(slot, r, oldCrc, block);
          xorInto(delta, block); // old ^ new
          if (plan.writable[k]) xorInto(view(k, r), delta);
          if (hasQ && plan.writable[k + 1]) gfMulXorInto(view(k + 1, r), delta, gfPow2(plan.map.qExponents[slot]!));
        }
        continue;
      }
      if (mode === 'reconstruct') {
        const missing = (slot: number) => !plan.readable[slot];
        const row = reconstructRow({
          data: Array.from({ length: k }, (_, i) => missing(i) ? null : view(i, r)),
          p: missing(k) ? null : view(k, r),
          q: hasQ ? (missing(k + 1) ? null : view(k + 1, r)) : undefined,
        }, B, plan.map.qExponents);
        row.data.forEach((block, i) => { if (missing(i)) view(i, r).set(block); });
      }
      for (const slot of touched) {
        const block = view(slot, r);
        const oldCrc = withChecks && oldKnown(slot, r) ? crc32c(block) : undefined;
        merge(slot, r, block);
        check(slot, r, oldCrc, block);
      }
      const data = Array.from({ length: k }, (_, i) => view(i, r));
      computeP(data, view(k, r));
      if (hasQ) computeQ(data, view(k + 1, r), plan.map.qExponents);
    }
    return checks;
  }

  private async writePlanned(plan: StripePlan): Promise<void> {
    const B = BLOCK_SIZE_BYTES;
    const k = this.geometry.dataDisks;
    const writes: Promise<void>[] = [];
    plan.roles.forEach((role, slot) => {
      const disk = plan.writable[slot];
      if (!disk) return;
      const rowsToWrite = new Uint8Array(plan.rows);
      for (let r = 0; r < plan.rows; r++) {
        // Rows of a member whose read failed were reconstructed: writing them back repairs the error.
        rowsToWrite[r] = slot >= k || plan.coverage[slot * plan.rows + r]! > 0 || (plan.repair[slot] && plan.modes[r] === 'reconstruct') ? 1 : 0;
      }
      if (plan.repair[slot]) this.countCorrected(this.memberIndexForRole(role), rowsToWrite.reduce((sum, flag) => sum + flag, 0));
      for (const [first, count] of runs(rowsToWrite)) {
        const memberOffset = this.geometry.memberDataOffsetBytes(plan.stripe, (plan.rowFirst + first) * B);
        writes.push(disk.writeData(memberOffset, plan.bufs[slot]!.subarray(first * B, (first + count) * B)).catch(async (error) => {
          if (!(error instanceof DeviceIoError)) throw error;
          // A member write error: that member is failed; the stripe stays readable from the rest.
          // It missed this write: the stripe is marked for its return first, so that once it is
          // faulty a re-add finds the mark.
          await this.writeIntent.markStripe(plan.stripe);
          await this.failMember(this.memberIndexForRole(role), `write error: ${error.message}`);
        }));
      }
    });
    await Promise.all(writes);
    this.checkAlive();
  }

  // ---- durability and shutdown ----------------------------------------------------------

  /** Makes every completed write durable on every member. */
  async flush(): Promise<void> {
    if (this.journal) {
      await this.journal.sync();
      return;
    }
    await this.flushMembers();
  }

  async flushMembers(): Promise<void> {
    await Promise.all([...this.disks].map(async ([index, disk]) => {
      if (this.sb.members[index]!.state === 'faulty') return;
      try {
        await disk.flush();
      } catch (error) {
        if (!(error instanceof DeviceIoError)) throw error;
        await this.failMember(index, `flush failed: ${error.message}`);
      }
    }));
  }

  /** Clean shutdown: everything durable, the dirty flag cleared, members closed. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      if (!this.readOnly && this.journal && !this.dirtyMarked) await this.journal.idle();
      if (!this.readOnly && this.dirtyMarked) {
        if (this.journal) await this.journal.close();
        else await this.flushMembers();
        // Clean shutdown of a session that wrote: one more commit (events + 1), the dirty flag
        // of the resync policy cleared, the per-member counters saved.
        this.countersChanged = false;
        await this.commitSuperblocks((sb) => { sb.flags &= ~FLAG_DIRTY; });
      } else if (!this.readOnly && this.countersChanged) {
        this.countersChanged = false;
        await this.commitSuperblocks(() => {});
      }
    } finally {
      await Promise.all([...this.disks.values()].map((disk) => disk.device.close()));
    }
  }

  /** Close without the clean-shutdown steps (tests: simulates losing power). */
  async abandon(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.disks.values()].map((disk) => disk.device.close()));
  }

}

/** A member whose superblock write failed during a commit: marked faulty there, handled after it. */
interface LostInCommit {
  index: number;
  role: number | null;
  /** Ends its entry in `failing`. */
  settle: () => void;
}

interface StripePlan {
  stripe: number;
  map: StripeMap;
  roles: number[];
  rowFirst: number;
  rows: number;
  coverage: Uint8Array;
  readable: (MemberDisk | undefined)[];
  writable: (MemberDisk | undefined)[];
  needRead: Uint8Array[];
  modes: RowMode[];
  bufs: Buffer[];
  /** Slots whose read failed but whose member is still in the array: rewrite what was rebuilt. */
  repair: boolean[];
}

/** [first, count] for each run of non-zero entries. */
function* runs(flags: Uint8Array): Generator<[number, number]> {
  let i = 0;
  while (i < flags.length) {
    if (!flags[i]) { i++; continue; }
    let j = i;
    while (j < flags.length && flags[j]) j++;
    yield [i, j - i];
    i = j;
  }
}

/** Runs `fn` over `items` with at most `limit` in flight; the first error wins after all settle. */
export async function runBounded<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  let failure: unknown;
  const worker = async () => {
    while (next < items.length && failure === undefined) {
      const item = items[next++]!;
      try {
        await fn(item);
      } catch (error) {
        failure ??= error;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failure !== undefined) throw failure;
}
