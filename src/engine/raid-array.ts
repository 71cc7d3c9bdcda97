// An assembled array: a thin front over the parts that do the work. The member set
// (member-set.ts) holds the superblock state, the open members and every change to them; the
// read path (read-path.ts) reads and repairs; the write path (write-path.ts) runs the pure
// stripe-write planner (stripe-write-plan.ts) and carries its plan out. Here: range checks,
// per-stripe locking, the first write's activation, the journal and bad-block list, and
// shutdown. Never prints: it returns values and throws JraidError for expected failures.

import { DeviceIoError } from '../device/block-device.js';
import type { Superblock } from '../format/superblock.js';
import { FLAG_DIRTY } from '../format/superblock.js';
import { Geometry, type StripeMap } from '../geometry/geometry.js';
import type { WriteJournal } from '../journal/write-journal.js';
import { JraidError } from '../errors.js';
import { BLOCK_SIZE_BYTES, assert } from '../units.js';
import type { MemberDisk } from './member-disk.js';
import { StripeLocks } from './stripe-lock.js';
import { WriteIntent } from './write-intent.js';
import { BadBlocks } from './bad-blocks.js';
import { MemberJournalStore, readJournal, type NewestRecord } from '../journal/store.js';
import { JournalManager } from '../journal/manager.js';
import { encodeJournalRecord, type JournalRecord } from '../format/journal-record.js';
import { MemberSet } from './member-set.js';
import { ReadPath } from './read-path.js';
import type { ArrayEvent, StripeHost } from './stripe-host.js';
import { WritePath, type StripePiece } from './write-path.js';
import { MemberParityLocks, type ParityLocks } from './parity-lock.js';
import { DataJournal } from '../journal/data-journal.js';
import { JournalPolicyWriter, type JournalAckPoint } from './journal-policy-write.js';
import { scanDataJournals, type DataJournalState } from './journal-policy-recover.js';
import type { ProxyManager } from './journal-proxy.js';

export type { ArrayEvent } from './stripe-host.js';

/** Stripes one write or read call works on at once. */
export const STRIPES_IN_FLIGHT_MAX = 8;

export type ArrayState = 'clean' | 'active' | 'degraded' | 'failed';

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
  /**
   * Cluster mode (seed 004): this node's id, whose journal area (format 1.2) it writes and
   * recovers, and parity locks on every stripe it changes.
   */
  clusterNode?: number;
  journal?: WriteJournal;
  onEvent?: (event: ArrayEvent) => void;
}

export class RaidArray implements StripeHost {
  readonly geometry: Geometry;
  /** The member set: superblock state, open members, commits and member failure. */
  readonly members: MemberSet;
  readonly readOnly: boolean;
  journal: WriteJournal | undefined;
  readonly locks = new StripeLocks();
  /** Cluster mode: this node's id (its journal area); 0 and no parity locks otherwise. */
  readonly journalNode: number;
  /** Cluster mode: true (several nodes share the members: a new member is locked as they lock theirs). */
  readonly clustered: boolean;
  /** Cluster mode: the parity locks (parity-lock.ts); a test hook may leave them out (the negative control). */
  parityLocks: ParityLocks | undefined;
  private readonly readPath: ReadPath;
  private readonly writePath: WritePath;
  private readonly onEvent: (event: ArrayEvent) => void;
  /** The first write's superblock commits (the events rule), shared by concurrent first writers. */
  private activation: Promise<void> | undefined;
  private dirtyMarked = false;
  private closed = false;
  /** Marks of stripes written while a role is lost, for re-add. */
  readonly writeIntent: WriteIntent;
  /** Array blocks that read as EIO until rewritten (torn by a crash, or lost with a member). */
  readonly badBlocks: BadBlocks;
  /** What the journal region held at assembly (dirty-log policy). */
  journalState: NewestRecord | undefined;
  /** The journal store, once the journal manager runs. */
  journalStore: MemberJournalStore | undefined;
  /** journal policy: what the data journals held at assembly (and hold after recovery). */
  dataJournalState: DataJournalState | undefined;
  /** journal policy: the members' I/O managers, once the array is open for writing. */
  dataJournal: DataJournal | undefined;
  private journalPolicyWriter: JournalPolicyWriter | undefined;
  /** journal policy: when a write is acknowledged (the daemon sets it from its toughness). */
  journalAckPoint: JournalAckPoint = 'durable';
  /** Bad-block list writes run one at a time. */
  private badBlocksChain: Promise<unknown> = Promise.resolve();
  /**
   * Recovery this array needs and, being read-only, did not run. Reads that would depend on
   * it (a stripe the journal lists, or a rebuild from stale parity) are refused.
   */
  private unrecoveredNeed: 'none' | 'dirty-stripes' | 'data-journal' | 'full-resync' = 'none';
  private unrecoveredStripes: ReadonlySet<number> | undefined;

  /** Recovery this array needs and, being read-only, did not run (see markUnrecovered). */
  get unrecovered(): 'none' | 'dirty-stripes' | 'data-journal' | 'full-resync' {
    return this.unrecoveredNeed;
  }

  /** Assembly of a read-only array that needs recovery: reads that depend on it are refused. */
  markUnrecovered(need: 'dirty-stripes' | 'data-journal' | 'full-resync'): void {
    assert(this.readOnly, 'only a read-only array is left unrecovered');
    this.unrecoveredNeed = need;
    this.unrecoveredStripes = undefined;
  }

  constructor(sb: Superblock, disks: Map<number, MemberDisk>, options: RaidArrayOptions) {
    this.readOnly = options.readOnly;
    this.journal = options.journal;
    this.journalNode = options.clusterNode ?? 0;
    this.clustered = options.clusterNode !== undefined;
    this.onEvent = options.onEvent ?? (() => {});
    this.geometry = new Geometry({
      level: sb.level, layout: sb.layout, raidDevices: sb.raidDevices,
      chunkSizeBytes: sb.chunkSizeBytes, dataSizeBytes: sb.dataSizeBytes,
    });
    assert(this.geometry.arraySizeBytes === sb.arraySizeBytes, 'geometry matches superblock');
    this.members = new MemberSet(sb, disks, {
      readOnly: this.readOnly,
      chunkSizeBytes: sb.chunkSizeBytes,
      hooks: {
        markStripes: (stripes) => this.writeIntent.markStripes(stripes),
        memberFailing: (index, role) => this.journalPolicyWriter?.replaceWithProxy(index, role, this.disks.get(index)?.path ?? '(missing)', false) ?? Promise.resolve(),
        memberLost: (index, role, reason) => this.memberLost(index, role, reason),
      },
    });
    this.badBlocks = new BadBlocks(sb.arrayUuid);
    this.parityLocks = options.clusterNode !== undefined ? new MemberParityLocks(this.geometry, this.members) : undefined;
    this.readPath = new ReadPath(this);
    this.writePath = new WritePath(this);
    const array = this;
    this.writeIntent = new WriteIntent({
      geometry: this.geometry,
      arrayUuid: sb.arrayUuid,
      chunkBytes: sb.writeIntentChunkBytes,
      get events() { return array.sb.events; },
      // Not a member being failed: its marks are written before it is (and it would fail them).
      bitmapDisks: () => [...this.disks].filter(([index]) => ['active', 'rebuilding'].includes(this.sb.members[index]!.state) && !this.members.isFailing(index)).map(([, disk]) => disk),
      diskFailed: (disk, error) => this.failMember(this.indexOfDisk(disk), `write-intent write failed: ${error.message}`),
    });
  }

  /** The array-wide superblock state (read only: change it with commitSuperblocks). */
  get sb(): Superblock {
    return this.members.sb;
  }

  /** Open members by member-table index (faulty members may still be open). */
  get disks(): ReadonlyMap<number, MemberDisk> {
    return this.members.disks;
  }

  /** Rebuild progress by member index: stripes below it are rebuilt (not yet all durable). */
  get rebuildProgress(): ReadonlyMap<number, number> {
    return this.members.rebuildProgress;
  }

  /** Loads state kept in member regions (the write-intent bitmap). Called once after assembly. */
  async loadRegions(): Promise<void> {
    const inSync = this.members.inSyncDisks();
    await this.writeIntent.load(inSync);
    await this.badBlocks.load(inSync);
    if (this.sb.policy === 'dirty-log') this.journalState = await readJournal(inSync, this.sb.arrayUuid, new MemberJournalStore(this, this.journalNode).layout);
    if (this.sb.policy === 'journal') this.dataJournalState = await scanDataJournals(this.members.inArrayDisks(), this.sb.arrayUuid, this.sb.regions);
  }

  /** journal policy: updates in the data journals past their checkpoint (recovery settles them). */
  get dataJournalLive(): number | undefined {
    return this.dataJournalState?.live.size;
  }

  /** The member-table index of `disk` (matched by its device: re-add opens a member's disk afresh). */
  indexOfDisk(disk: MemberDisk): number {
    return this.members.indexOfDisk(disk);
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
    const run = this.badBlocksChain.then(() => this.badBlocks.persist(this.members.inArrayDisks()));
    this.badBlocksChain = run.catch(() => {});
    const failed = await run;
    for (const { disk, error } of failed) await this.failMember(this.indexOfDisk(disk), `bad-block list write failed: ${error.message}`);
  }

  /** After recovery: a clean journal record (dirty-log) or a clear dirty flag (resync). */
  async markRecovered(): Promise<void> {
    if (this.sb.policy === 'dirty-log') {
      const store = new MemberJournalStore(this, this.journalNode);
      const generation = (this.journalRecord?.generation ?? 0) + 1;
      const record: JournalRecord = { arrayUuid: this.sb.arrayUuid, generation, clean: true, entries: [] };
      await store.writeRecord(generation, encodeJournalRecord(record));
      this.journalState = { record, copies: this.journalState?.copies ?? [] };
    }
    if (this.sb.flags & FLAG_DIRTY || this.sb.resyncOffsetBytes < this.sb.dataSizeBytes) {
      await this.commitSuperblocks((sb) => { sb.flags &= ~FLAG_DIRTY; sb.resyncOffsetBytes = sb.dataSizeBytes; });
    }
  }

  /** Starts the dirty-log journal manager, or the journal policy's managers (after any recovery). */
  startJournal(options: JournalOptions = {}): JournalManager | undefined {
    if (!this.readOnly && this.sb.policy === 'journal' && !this.dataJournal) this.startDataJournal();
    if (this.readOnly || this.sb.policy !== 'dirty-log' || this.journal) return undefined;
    const store = new MemberJournalStore(this, this.journalNode);
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

  private startDataJournal(): void {
    const state = this.dataJournalState;
    assert(state && state.live.size === 0, 'the data journals are settled before writes start');
    const journal = new DataJournal({
      arrayUuid: this.sb.arrayUuid, layout: state.layout, nextSeq: state.nextSeq, appliedBelow: state.appliedBelow,
      members: () => this.members.inArrayDisks(),
      flushMembers: () => this.flushMembers(),
      epoch: () => this.sb.events,
      memberFailed: (member, error) => this.failMember(this.indexOfDisk(member as MemberDisk), `data-journal write failed: ${error.message}`),
    });
    this.dataJournal = journal;
    this.journalPolicyWriter = new JournalPolicyWriter(this);
  }

  /** journal policy: the proxies serving failed members' roles (seed 002 claims 3, 19-21). */
  get journalProxies(): readonly ProxyManager[] {
    return this.journalPolicyWriter?.proxies ?? [];
  }

  /** Test only: the journal-policy writer (to leave a step out on purpose). */
  get journalWriterForTests(): JournalPolicyWriter | undefined {
    return this.journalPolicyWriter;
  }

  get sizeBytes(): number {
    return this.geometry.arraySizeBytes;
  }

  // ---- member state (the member set answers) --------------------------------------------

  memberIndexForRole(role: number): number {
    return this.members.memberIndexForRole(role);
  }

  /** The disk to read `role` from for stripe `stripe`, or undefined when it must be reconstructed. */
  readableDisk(role: number, stripe: number): MemberDisk | undefined {
    return this.members.readableDisk(role, stripe);
  }

  /** How far member `index` (rebuilding) holds rebuilt data (see MemberSet.rebuiltBytes). */
  rebuiltBytes(index: number): number {
    return this.members.rebuiltBytes(index);
  }

  /** The disk that must receive writes for `role`, or undefined when the role is lost. */
  writableDisk(role: number): MemberDisk | undefined {
    return this.members.writableDisk(role);
  }

  /** Roles that cannot be read at all (missing or faulty), whatever the stripe. */
  lostRoles(): number[] {
    return this.members.lostRoles();
  }

  /** Roles not fully in sync: lost ones plus those still rebuilding. */
  degradedRoles(): number[] {
    return this.members.degradedRoles();
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
    if (this.sb.policy === 'journal') return (this.dataJournal?.updatesInFlight ?? 0) > 0 || (this.dataJournalLive ?? 0) > 0 ? 'active' : 'clean';
    if (this.journal) return this.journal.clean ? 'clean' : 'active';
    return this.journalRecord && !this.journalRecord.clean ? 'active' : 'clean';
  }

  /** One serialised superblock commit (see MemberSet.commit). */
  commitSuperblocks(mutate: (sb: Superblock) => void): Promise<void> {
    return this.members.commit(mutate);
  }

  /** Marks a member faulty everywhere (see MemberSet.failMember). */
  failMember(index: number, reason: string): Promise<void> {
    return this.members.failMember(index, reason);
  }

  /**
   * Waits until every member failure under way is fully handled: faulty marks committed, and
   * the write-intent marks of the writes those members missed durable. Re-add decides on them.
   */
  failuresSettled(): Promise<void> {
    return this.members.failuresSettled(() => this.writeIntent.idle());
  }

  /** After a member's faulty mark is durable: track writes for its return, renew the journal's copies, report it. */
  /** Reports an event upward. */
  report(event: ArrayEvent): void {
    this.onEvent(event);
  }

  private async memberLost(index: number, role: number | null, reason: string): Promise<void> {
    if (role !== null) await this.writeIntent.startTracking(this.sb.events);
    // journal policy: the proxy of the role knows the failure is durable (a writable member for the role retires it).
    if (role !== null) await this.journalPolicyWriter?.replaceWithProxy(index, role, this.disks.get(index)?.path ?? '(missing)', true);
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
    const absent = this.members.absentIndexes();
    if (absent.length === 0) return;
    await this.commitSuperblocks((sb) => { for (const index of absent) sb.members[index]!.state = 'faulty'; });
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
    const absent = this.members.absentIndexes();
    await this.commitSuperblocks((sb) => {
      for (const index of absent) sb.members[index]!.state = 'faulty';
      if (!this.journal && sb.policy !== 'journal') sb.flags |= FLAG_DIRTY;
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

  /**
   * Reads `lengthBytes` at `offsetBytes`, into `target` when given (exactly `lengthBytes`: the
   * NBD server's reply buffer, filled without a copy) or a new Buffer. Every member read on
   * `target` has settled when this settles, resolved or rejected.
   */
  async read(offsetBytes: number, lengthBytes: number, target?: Buffer): Promise<Buffer> {
    this.checkRange(offsetBytes, lengthBytes);
    assert(target === undefined || target.length === lengthBytes, `read target of ${lengthBytes} bytes`);
    const bad = this.badBlocks.find(offsetBytes, lengthBytes);
    if (bad) {
      const start = bad.firstBlock * BLOCK_SIZE_BYTES;
      throw new JraidError('E_BAD_BLOCK', `array bytes ${start}..${start + bad.blockCount * BLOCK_SIZE_BYTES - 1} are recorded bad (${bad.reason === 'torn' ? 'a write torn by a crash' : "lost with a member during a crash"}): reading them gives EIO`, {
        hint: 'rewrite those blocks (whole 4 KiB blocks) to clear them',
        details: { firstBlock: bad.firstBlock, blockCount: bad.blockCount, reason: bad.reason },
      });
    }
    const out = target ?? Buffer.alloc(lengthBytes);
    const extents = this.geometry.extents(offsetBytes, lengthBytes);
    await runBounded(extents, STRIPES_IN_FLIGHT_MAX, async (extent) => {
      const target = out.subarray(extent.arrayOffsetBytes - offsetBytes, extent.arrayOffsetBytes - offsetBytes + extent.lengthBytes);
      await this.locks.with(extent.stripe, async () => {
        // Cluster mode, degraded: a read rebuilt from parity must not see another node's write half done.
        const parityLocks = this.parityLocks && this.degradedRoles().length > 0 ? this.parityLocks : undefined;
        const first = Math.floor(extent.chunkOffsetBytes / BLOCK_SIZE_BYTES);
        const release = await parityLocks?.lockRows(extent.stripe, first, Math.floor((extent.chunkOffsetBytes + extent.lengthBytes - 1) / BLOCK_SIZE_BYTES) - first + 1);
        try {
          await this.readPath.readExtent(extent.stripe, extent.dataIndex, extent.chunkOffsetBytes, target, release !== undefined);
        } finally {
          release?.();
        }
      });
    });
    return out;
  }

  refuseUnrecovered(stripe: number, reconstructing: boolean): void {
    if (this.unrecoveredNeed === 'none') return;
    if (this.unrecoveredNeed === 'dirty-stripes') {
      this.unrecoveredStripes ??= new Set(this.journalRecord?.entries.map((entry) => entry.stripe) ?? []);
      if (!this.unrecoveredStripes.has(stripe)) return;
    } else if (!reconstructing) {
      return; // resync pending: data read straight from its member is as good as any
    }
    throw new JraidError('E_ARRAY_DIRTY', `stripe ${stripe} awaits recovery from an unclean shutdown, and this command opened the array read-only`, {
      hint: 'run jraid recover (or any writing command) first',
    });
  }

  /** Reads or rebuilds whole chunks of a stripe (see ReadPath.readStripeChunks). Call under the stripe's lock. */
  readStripeChunks(stripe: number, exclude?: ReadonlySet<number>, into?: readonly Buffer[]): Promise<{ map: StripeMap; roles: number[]; chunks: (Buffer | null)[] }> {
    return this.readPath.readStripeChunks(stripe, exclude, into);
  }

  /** Rebuilds the whole chunk of `role` in `stripe` from the other members. Call under the stripe's lock. */
  reconstructChunk(stripe: number, role: number, into?: readonly Buffer[]): Promise<Buffer> {
    return this.readPath.reconstructChunk(stripe, role, into);
  }

  /** Whole-chunk buffers for every slot of `stripe`, from the pool (see ReadPath.lendStripeChunks). */
  lendStripeChunks(stripe: number, spare?: number): Promise<Buffer[]> {
    return this.readPath.lendStripeChunks(stripe, spare);
  }

  giveBackStripeChunks(chunks: Buffer[]): void {
    this.readPath.giveBackStripeChunks(chunks);
  }

  /** Buffers for `count` stripes read whole, one read per member (see ReadPath.lendStripeSpan). */
  lendStripeSpan(count: number, spare?: number): Promise<Buffer[]> {
    return this.readPath.lendStripeSpan(count, spare);
  }

  /** Reads `count` stripes whole, one read per member (see ReadPath.readStripeSpan). Call under their locks. */
  readStripeSpan(first: number, count: number, into: readonly Buffer[]): Promise<{ stripe: number; map: StripeMap; roles: number[]; chunks: Buffer[] }[] | undefined> {
    return this.readPath.readStripeSpan(first, count, into);
  }

  /** Rewrites the blocks of `stripe` that fail to read (scrub --repair). Call under the stripe's lock. */
  repairUnreadable(stripe: number): Promise<void> {
    return this.readPath.repairUnreadable(stripe);
  }


  /**
   * Runs maintenance writes of one stripe (rebuild, scrub repair) through the journal when the
   * array has one: the stripe is listed in a durable record before `fn` writes, so a crash
   * mid-way leaves it for recovery. Call under the stripe's lock.
   */
  async journaled<T>(stripe: number, fn: () => Promise<T>): Promise<T> {
    assert(this.locks.isHeld(stripe), `stripe ${stripe} journaled under its lock`);
    await this.prepareForWrite();
    const ticket = this.journal ? await this.journal.begin(stripe) : undefined;
    try {
      if (ticket) await ticket.durable();
      return await fn();
    } finally {
      ticket?.done();
    }
  }

  /** Writes repaired blocks (scrub) of one stripe, journaled. Call under the stripe's lock. */
  async repairBlocks(stripe: number, fixes: { role: number; chunkOffsetBytes: number; block: Buffer }[]): Promise<void> {
    assert(this.locks.isHeld(stripe), `stripe ${stripe} repaired under its lock`);
    if (this.sb.policy === 'journal') {
      // journal policy: each repaired row goes through the data journals like a write.
      await this.prepareForWrite();
      assert(this.journalPolicyWriter, 'the journal policy repairs through its writer');
      await this.journalPolicyWriter.repairStripe(stripe, fixes);
      return;
    }
    await this.journaled(stripe, () => this.writePath.writeRepairs(stripe, fixes));
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
    const journalWriter = this.journalPolicyWriter;
    await runBounded([...byStripe], STRIPES_IN_FLIGHT_MAX, ([stripe, pieces]) => journalWriter
      // The journal policy acknowledges at its point (atomic: before the in-place copies are
      // rewritten); the stripe stays locked until they are.
      ? new Promise<void>((resolve, reject) => {
        this.locks.with(stripe, () => {
          const { acked, finished } = journalWriter.writeStripe(stripe, pieces);
          acked.then(resolve, reject);
          return finished;
        }).catch(reject);
      })
      : this.locks.with(stripe, () => this.writePath.writeStripe(stripe, pieces)));
    if (this.badBlocks.clearCovered(offsetBytes, data.length)) await this.persistBadBlocks();
  }

  /** Runs `fn` under the stripe's lock: maintenance (scrub, rebuild) uses it to stay ordered with I/O. */
  /** Runs `fn` holding the locks of stripes `first` to `first + count - 1`, taken in ascending order. */
  withStripes<T>(first: number, count: number, fn: () => Promise<T>): Promise<T> {
    return count <= 0 ? fn() : this.withStripe(first, () => this.withStripes(first + 1, count - 1, fn));
  }

  withStripe<T>(stripe: number, fn: () => Promise<T>): Promise<T> {
    const parityLocks = this.parityLocks;
    if (!parityLocks) return this.locks.with(stripe, fn);
    // Cluster mode: another node's writes to the stripe wait too (the whole stripe's parity).
    return this.locks.with(stripe, async () => {
      const release = await parityLocks.lockStripe(stripe);
      try {
        return await fn();
      } finally {
        release();
      }
    });
  }

  // ---- durability and shutdown ----------------------------------------------------------

  /** Makes every completed write durable on every member. */
  async flush(): Promise<void> {
    // journal policy: an acknowledged write is in both sides' journals already; completed ones are applied.
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
        if (this.dataJournal) await this.dataJournal.sync();
        if (this.journal) await this.journal.close();
        else await this.flushMembers();
        // Clean shutdown of a session that wrote: one more commit (events + 1), the dirty flag
        // of the resync policy cleared, the per-member counters saved.
        this.members.takeCountersChanged();
        await this.commitSuperblocks((sb) => { sb.flags &= ~FLAG_DIRTY; });
      } else if (!this.readOnly && this.members.takeCountersChanged()) {
        await this.commitSuperblocks(() => {});
      }
    } finally {
      await this.members.closeAll();
    }
  }

  /** Close without the clean-shutdown steps (tests: simulates losing power). */
  async abandon(): Promise<void> {
    this.closed = true;
    await this.members.closeAll();
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
