// The member set of an assembled array: the array-wide superblock state, the open members by
// member-table index, and every change to either. A change reaches the members through one
// serialised superblock commit chain; a member whose superblock write fails is failed there and
// the state written again to the rest. Nothing outside this module changes a member's state or
// the open members: they ask through the methods here (commit, failMember, enrol, attach,
// remove, rebuild progress).

import { DeviceIoError, type BlockDevice } from '../device/block-device.js';
import { isFreeSlot, type MemberEntry, type Superblock } from '../format/superblock.js';
import { assert } from '../units.js';
import type { MemberDisk } from './member-disk.js';

/** What the member set asks of the array around it when a member is lost. */
export interface MemberSetHooks {
  /** Marks stripes (write intent) that a member about to be failed may never have made durable. */
  markStripes(stripes: number[]): Promise<void>;
  /**
   * A member with a role is being failed, before its faulty mark is committed: the journal
   * policy's proxy takes its manager's place (resolves once what it was handed is marked).
   */
  memberFailing(index: number, role: number): Promise<void>;
  /** After a member's faulty mark is durable: track writes for its return, renew journal copies, report it. */
  memberLost(index: number, role: number | null, reason: string): Promise<void>;
}

export interface MemberSetOptions {
  readOnly: boolean;
  chunkSizeBytes: number;
  hooks: MemberSetHooks;
}

/**
 * Cluster mode: several nodes commit superblocks to the same members. Each commit takes the
 * cluster-wide superblock lock and starts from the newest state on the members (another node's
 * commit), so no node writes over a change it has not seen; `refresh` adopts a newer state
 * between commits (daemon/cluster.ts polls it).
 */
export interface SharedCommits {
  /** Takes the superblock lock on the members; resolves to its release. */
  lock(): Promise<() => void>;
  /** The newest superblock on the open members (highest events), or undefined when none reads. */
  newest(): Promise<Superblock | undefined>;
  /**
   * Called after a newer state was adopted, with the member indexes it newly marks faulty and
   * the devices of members it no longer has (removed: the callee closes them). It brings in the
   * members the state names that this node has not open (another node added them).
   */
  adopted(newlyFaulty: number[], dropped: BlockDevice[]): Promise<void>;
  /** After this node marked member `index` faulty: resolves once every running node has followed (writes no more to it). */
  followed(index: number): Promise<void>;
}

/** A member whose superblock write failed during a commit: marked faulty there, handled after it. */
interface LostInCommit {
  index: number;
  role: number | null;
  /** Ends its entry in `failing`. */
  settle: () => void;
}

export class MemberSet {
  private current: Superblock;
  private readonly open: Map<number, MemberDisk>;
  private readonly readOnly: boolean;
  private readonly chunkSizeBytes: number;
  private readonly hooks: MemberSetHooks;
  /** Superblock commits run one at a time, each applying its change to the state the last one left. */
  private commitChain: Promise<unknown> = Promise.resolve();
  /** Member failures being committed, by member index: a second caller waits for the first. */
  private readonly failing = new Map<number, Promise<void>>();
  /** Rebuild progress by member index: stripes below it are rebuilt (not yet all durable). */
  private readonly progress = new Map<number, number>();
  /** Set when per-member counters changed and should reach the superblocks at close. */
  private countersChanged = false;
  /** Cluster mode: commits shared with other nodes. */
  private shared: SharedCommits | undefined;

  constructor(sb: Superblock, disks: Map<number, MemberDisk>, options: MemberSetOptions) {
    this.current = sb;
    this.open = disks;
    this.readOnly = options.readOnly;
    this.chunkSizeBytes = options.chunkSizeBytes;
    this.hooks = options.hooks;
    for (const index of disks.keys()) assert(sb.members[index] !== undefined, `open member ${index} has a table entry`);
  }

  /** The array-wide superblock state; each member's copy differs only in memberUuid/thisIndex. Read only: change it with commit. */
  get sb(): Superblock {
    return this.current;
  }

  /** Open members by member-table index (faulty members may still be open). */
  get disks(): ReadonlyMap<number, MemberDisk> {
    return this.open;
  }

  /** Rebuild progress in memory by member index (read only: see setRebuildProgress). */
  get rebuildProgress(): ReadonlyMap<number, number> {
    return this.progress;
  }

  // ---- questions ------------------------------------------------------------------------

  memberIndexForRole(role: number): number {
    return this.current.members.findIndex((member) => member.role === role);
  }

  /** The member-table index of `disk` (matched by its device: re-add opens a member's disk afresh). */
  indexOfDisk(disk: MemberDisk): number {
    const found = [...this.open].find(([, candidate]) => candidate === disk || candidate.device === disk.device);
    assert(found, `disk ${disk.path} belongs to the array`);
    return found[0];
  }

  /** Open members in sync (state active). */
  inSyncDisks(): MemberDisk[] {
    return [...this.open].filter(([index]) => this.current.members[index]!.state === 'active').map(([, disk]) => disk);
  }

  /** Open members in the array (active or rebuilding): they carry the bitmap and bad-block list. */
  inArrayDisks(): MemberDisk[] {
    return [...this.open].filter(([index]) => ['active', 'rebuilding'].includes(this.current.members[index]!.state)).map(([, disk]) => disk);
  }

  /** The failure of member `index` under way (settles once its faulty mark is durable and reported), if any. */
  failureOf(index: number): Promise<void> | undefined {
    return this.failing.get(index);
  }

  /** True while member `index` is being failed (its faulty mark or its marks not yet durable). */
  isFailing(index: number): boolean {
    return this.failing.has(index);
  }

  /** The disk to read `role` from for stripe `stripe`, or undefined when it must be reconstructed. */
  readableDisk(role: number, stripe: number): MemberDisk | undefined {
    const index = this.memberIndexForRole(role);
    if (index < 0) return undefined;
    const entry = this.current.members[index]!;
    const disk = this.open.get(index);
    if (!disk) return undefined;
    if (entry.state === 'active') return disk;
    if (entry.state === 'rebuilding' && this.rebuiltBytes(index) >= (stripe + 1) * this.chunkSizeBytes) return disk;
    return undefined;
  }

  /** The disk that must receive writes for `role`, or undefined when the role is lost. */
  writableDisk(role: number): MemberDisk | undefined {
    const index = this.memberIndexForRole(role);
    if (index < 0) return undefined;
    const entry = this.current.members[index]!;
    const disk = this.open.get(index);
    if (!disk) return undefined;
    return entry.state === 'active' || entry.state === 'rebuilding' ? disk : undefined;
  }

  /**
   * How far member `index` (rebuilding) holds rebuilt data: the rebuild's progress in memory,
   * which runs ahead of the superblocks' recovery offset (committed only after a flush makes
   * what it covers durable).
   */
  rebuiltBytes(index: number): number {
    return Math.max(this.current.members[index]?.recoveryOffsetBytes ?? 0, this.progress.get(index) ?? 0);
  }

  /** Roles that cannot be read at all (missing or faulty), whatever the stripe. */
  lostRoles(): number[] {
    const lost: number[] = [];
    for (let role = 0; role < this.current.raidDevices; role++) {
      const index = this.memberIndexForRole(role);
      const entry = index >= 0 ? this.current.members[index]! : undefined;
      if (!entry || !this.open.has(index) || (entry.state !== 'active' && entry.state !== 'rebuilding')) lost.push(role);
    }
    return lost;
  }

  /** Roles not fully in sync: lost ones plus those still rebuilding. */
  degradedRoles(): number[] {
    const roles = new Set(this.lostRoles());
    this.current.members.forEach((entry) => { if (entry.role !== null && entry.state === 'rebuilding') roles.add(entry.role); });
    return [...roles].sort((a, b) => a - b);
  }

  /** Members with a role, not faulty, and not open: absent at assembly. */
  absentIndexes(): number[] {
    return this.current.members.flatMap((entry, index) =>
      entry.role !== null && entry.state !== 'faulty' && !this.open.has(index) ? [index] : []);
  }

  // ---- changes that need no commit ------------------------------------------------------

  /** Rebuild of member `index` reached `bytes` (in memory; the checkpoint is committed apart). */
  setRebuildProgress(index: number, bytes: number): void {
    assert(this.current.members[index]?.state === 'rebuilding', `member ${index} is rebuilding while its progress moves`);
    this.progress.set(index, bytes);
  }

  /** Forgets member `index`'s rebuild progress (inside the commit that ends its rebuild). */
  dropRebuildProgress(index: number): void {
    this.progress.delete(index);
  }

  countCorrected(index: number, blocks: number): void {
    this.current.members[index]!.readErrorsCorrected += blocks;
    this.countersChanged = true;
  }

  /** True once, after counters changed since the last call: the caller commits them. */
  takeCountersChanged(): boolean {
    const changed = this.countersChanged;
    this.countersChanged = false;
    return changed;
  }

  /**
   * Opens member `index` afresh on `disk` (re-add, or a replacement whose rebuild was
   * interrupted). Its table entry must exist, and it must not be in sync: a member in use is
   * never swapped under I/O.
   */
  attach(index: number, disk: MemberDisk): void {
    const entry = this.current.members[index];
    assert(entry && !isFreeSlot(entry), `member ${index} has a table entry to attach to`);
    assert(entry.state === 'faulty' || entry.state === 'rebuilding' || !this.open.has(index), `member ${index} attached afresh is not in use (${entry.state})`);
    this.open.set(index, disk);
  }

  // ---- superblock commits ---------------------------------------------------------------

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
  async commit(mutate: (sb: Superblock) => void): Promise<void> {
    assert(!this.readOnly, 'superblock update on a read-only array');
    const run = this.commitChain.then(() => this.commitNow(mutate));
    this.commitChain = run.catch(() => {});
    const lost = await run;
    // Outside the chain: what a lost member sets off (bitmap writes) may fail more members. Its
    // unflushed stripes are marked too (after its faulty mark, here: re-add waits for this, on
    // the entry commitNow put in `failing` before the chain moved on).
    for (const { index, role, settle } of lost) {
      try {
        if (role !== null) await this.hooks.memberFailing(index, role);
        const unflushed = role !== null ? this.open.get(index)?.unflushedStripes() ?? [] : [];
        if (unflushed.length > 0) await this.hooks.markStripes(unflushed);
        await this.hooks.memberLost(index, role, 'superblock write failed');
      } finally {
        settle();
      }
    }
  }

  /** Waits for every superblock commit started so far: the state a write relied on is durable. */
  async stateDurable(): Promise<void> {
    await this.commitChain;
  }

  /** Cluster mode: from now on commits take the superblock lock and start from the newest state on the members. */
  shareCommits(shared: SharedCommits): void {
    this.shared = shared;
  }

  /** Cluster mode: adopts a newer state another node committed, if there is one; true when it did. */
  async refresh(): Promise<boolean> {
    const shared = this.shared;
    if (!shared) return false;
    const run = this.commitChain.then(async () => {
      const newest = await shared.newest();
      return newest !== undefined && newest.events > this.current.events ? await this.adopt(newest) : false;
    });
    this.commitChain = run.catch(() => {});
    return run;
  }

  /**
   * Takes `newer` (another node's commit) as the current state: members it no longer has (their
   * slot free or given to another member) leave the open members; reports members it newly
   * marks faulty; the shared commits' `adopted` brings in the members it adds.
   */
  private async adopt(newer: Superblock): Promise<true> {
    const newlyFaulty = [...this.open.keys()].filter((index) => this.current.members[index]?.state !== 'faulty' && newer.members[index]?.state === 'faulty');
    const dropped: BlockDevice[] = [];
    for (const [index, disk] of [...this.open]) {
      const entry = newer.members[index];
      if (entry && !isFreeSlot(entry) && entry.uuid.equals(this.current.members[index]!.uuid)) continue;
      this.open.delete(index);
      this.progress.delete(index);
      dropped.push(disk.device);
    }
    this.current = { ...newer, members: newer.members.map((member) => ({ ...member })) };
    for (const index of newlyFaulty) this.progress.delete(index);
    // The members hold this state already: nobody is behind it.
    for (const [index, disk] of this.open) {
      const entry = this.current.members[index];
      if (entry && disk.sb.events < newer.events && disk.sb.memberUuid.equals(entry.uuid)) disk.sb = { ...this.current, memberUuid: entry.uuid, thisIndex: index };
    }
    await this.shared!.adopted(newlyFaulty, dropped);
    return true;
  }

  private async commitNow(mutate: (sb: Superblock) => void): Promise<LostInCommit[]> {
    if (!this.shared) return this.commitLocked(mutate);
    const release = await this.shared.lock();
    try {
      const newest = await this.shared.newest();
      if (newest !== undefined && newest.events > this.current.events) await this.adopt(newest);
      return await this.commitLocked(mutate);
    } finally {
      release();
    }
  }

  private async commitLocked(mutate: (sb: Superblock) => void): Promise<LostInCommit[]> {
    await this.levelLaggards();
    const next: Superblock = { ...this.current, members: this.current.members.map((member) => ({ ...member })) };
    mutate(next);
    for (const index of this.open.keys()) assert(next.members[index] !== undefined && !isFreeSlot(next.members[index]!), `open member ${index} keeps a table entry`);
    const lost: LostInCommit[] = [];
    for (;;) {
      next.events = this.current.events + 1;
      next.updatedAtMs = Date.now();
      this.current = next;
      const failed: number[] = [];
      await Promise.all([...this.open].map(async ([index, disk]) => {
        const entry = next.members[index]!;
        if (entry.state === 'faulty') return;
        try {
          await disk.writeSuperblock({ ...next, memberUuid: entry.uuid, thisIndex: index });
        } catch (error) {
          if (!(error instanceof DeviceIoError)) throw error;
          failed.push(index);
        }
      }));
      if (failed.length === 0) return lost;
      for (const index of failed) {
        next.members[index] = { ...next.members[index]!, state: 'faulty', recoveryOffsetBytes: 0 };
        this.progress.delete(index);
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
    const laggards = [...this.open].filter(([index, disk]) => {
      const entry = this.current.members[index];
      return entry !== undefined && entry.state !== 'faulty' && disk.sb.events + 1 === this.current.events;
    });
    await Promise.all(laggards.map(async ([index, disk]) => {
      try {
        await disk.writeSuperblock({ ...this.current, memberUuid: this.current.members[index]!.uuid, thisIndex: index });
      } catch (error) {
        if (!(error instanceof DeviceIoError)) throw error; // the commit that follows fails it
      }
    }));
  }

  /**
   * Enters a member whose own superblock is written already into the member table at `index`
   * (a free slot, or one past the end) and the open members, in one commit: every open member
   * always has a table entry.
   */
  async enrol(index: number, disk: MemberDisk, entry: MemberEntry): Promise<void> {
    assert(!this.open.has(index), `slot ${index} has no open member`);
    await this.commit((next) => {
      assert(index >= next.members.length || isFreeSlot(next.members[index]!), 'no other member took the slot meanwhile');
      const members = [...next.members];
      members[index] = { ...entry };
      next.members = members;
      this.open.set(index, disk);
    });
  }

  /**
   * Takes members `indexes` (faulty or spare) out: they leave the open members, their entries
   * become free slots (trailing ones leave the table). Returns the devices they were open on,
   * for the caller to unlock and close.
   */
  async remove(indexes: readonly number[], freeSlot: () => MemberEntry): Promise<BlockDevice[]> {
    for (const index of indexes) {
      const state = this.current.members[index]?.state;
      assert(state === 'faulty' || state === 'spare', `member ${index} removed is faulty or spare (${state})`);
    }
    const devices = indexes.flatMap((index) => {
      const disk = this.open.get(index);
      this.open.delete(index);
      return disk ? [disk.device] : [];
    });
    await this.commit((sb) => {
      for (const index of indexes) sb.members[index] = freeSlot();
      while (sb.members.length > sb.raidDevices && isFreeSlot(sb.members[sb.members.length - 1]!)) sb.members.pop();
    });
    return devices;
  }

  // ---- member failure -------------------------------------------------------------------

  /**
   * Marks a member faulty everywhere; the array carries on degraded if it can. Returns once the
   * faulty mark is durable on the other members (a caller that finds the member already being
   * failed waits for that). Safe to call from inside the journal's record writes: it only asks
   * the journal for a rewrite, it does not wait for one.
   */
  failMember(index: number, reason: string): Promise<void> {
    const entry = this.current.members[index];
    assert(entry, `member index ${index} exists`);
    const inProgress = this.failing.get(index);
    if (inProgress) return inProgress;
    // Faulty already: a commit that marked it may still be running (a failed superblock write).
    if (entry.state === 'faulty') return this.stateDurable();
    const run = (async () => {
      // Writes it took since its last flush may never reach its medium: their stripes are
      // marked (on the other members) before it is failed, so its return rebuilds them.
      if (entry.role !== null && !this.readOnly) await this.hooks.memberFailing(index, entry.role);
      const unflushed = entry.role !== null && !this.readOnly ? this.open.get(index)?.unflushedStripes() ?? [] : [];
      if (unflushed.length > 0) await this.hooks.markStripes(unflushed);
      await this.commit((sb) => {
        sb.members[index]!.state = 'faulty';
        sb.members[index]!.recoveryOffsetBytes = 0;
        this.progress.delete(index);
      });
      await this.hooks.memberLost(index, entry.role, reason);
      // Cluster mode: the other nodes may still read the member's (now stale) blocks until they
      // follow; the write that failed it is acknowledged only once they have.
      await this.shared?.followed(index);
    })().finally(() => this.failing.delete(index));
    this.failing.set(index, run);
    return run;
  }

  /**
   * Waits until every member failure under way is fully handled: faulty marks committed, and
   * the write-intent marks of the writes those members missed durable (`marksIdle`). Re-add
   * decides on them.
   */
  async failuresSettled(marksIdle: () => Promise<void>): Promise<void> {
    for (let round = 0; round <= this.current.members.length; round++) {
      await Promise.allSettled([...this.failing.values()]);
      await marksIdle();
      await this.commitChain;
      if (this.failing.size === 0) return;
    }
  }

  /** Cluster mode: member `index` (its entry already in the state) opens on `disk`, found after another node brought it in. */
  attachFound(index: number, disk: MemberDisk): void {
    assert(!this.open.has(index), `member ${index} found is not open yet`);
    this.open.set(index, disk);
  }

  /** Closes every open member's device. */
  async closeAll(): Promise<void> {
    await Promise.all([...this.open.values()].map((disk) => disk.device.close()));
  }
}
