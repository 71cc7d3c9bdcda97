// A cluster node (seed 004, README "Cluster mode"): one of several daemons serving one array on
// shared members, each with its own node id, journal area and NBD export. Nodes send each other
// no message: everything they agree on goes through byte-range locks on the members.
//
// - Node lock: node N holds byte NODE_LOCK_OFFSET_BYTES + N of every member it has open,
//   exclusive, for as long as it runs; the kernel drops it when the process dies.
// - Takeover of a dead node's journal area: every CLUSTER_WATCH_MS a node tries the other nodes'
//   locks. A node whose lock it can take on every open member is not running; if that node's
//   newest journal record is dirty, this node resyncs the stripes it lists, each under the
//   stripe's parity lock (so the nodes still serving wait only for that stripe), and writes a
//   clean record (generation + 1) into that node's area; then it lets the lock go. A node that
//   restarts waits for its own lock, so it never reads its area while another node recovers it,
//   and recovers what is still listed itself at assembly.

import { performance } from 'node:perf_hooks';
import { JraidError } from '../errors.js';
import { MEMBER_USE_OFFSET_BYTES, SUPERBLOCK_LOCK_OFFSET_BYTES } from '../device/lock.js';
import { readSuperblocks } from '../engine/superblock-io.js';
import type { Superblock } from '../format/superblock.js';
import fsx from 'fs-native-extensions';
import { OfdRangeLock, type RangeLock } from '../device/range-lock.js';
import { NODE_LOCK_OFFSET_BYTES } from '../device/lock.js';
import { underlyingFile } from '../device/open-member.js';
import { encodeJournalRecord, type BlockCheck, type JournalRecord } from '../format/journal-record.js';
import { journalAreas, journalLayoutFor, MemberJournalStore, readJournal } from '../journal/store.js';
import { recoverStripe } from '../engine/recover.js';
import type { RaidArray } from '../engine/raid-array.js';
import type { MemberDisk } from '../engine/member-disk.js';
import type { Logger } from './daemon.js';

/** How often a node looks for a newer superblock (another node's commit) and for nodes that died with stripes listed dirty. */
export const CLUSTER_WATCH_MS = 200;
/** How long fail-disk waits for every running node to follow the member's faulty mark. */
export const CLUSTER_FOLLOW_TIMEOUT_MS = 10_000;

/** One node as `detail` shows it. */
export interface ClusterNodeView {
  node: number;
  /** This daemon. */
  self: boolean;
  /** Its node lock is held: a daemon serves as that node. */
  running: boolean;
  /** Its newest journal record: generation, clean flag and the stripes it lists (null: none). */
  journal: { generation: number; clean: boolean; stripes: number } | null;
}

export interface ClusterStats {
  /** Dead nodes whose listed stripes this node resynced. */
  takeovers: number;
  stripesResynced: number;
}

export class ClusterNode {
  readonly node: number;
  private readonly array: RaidArray;
  private readonly log: Logger;
  private readonly locks = new Map<MemberDisk, RangeLock>();
  private timer: NodeJS.Timeout | undefined;
  /**
   * Other nodes' locks this process holds, and how many of its tasks hold each (a takeover, a
   * membership change, detail's probe): two locks through one open file never conflict, so
   * without the count one task's release would drop another's hold.
   */
  private readonly holds = new Map<number, number>();
  /** Members this node may write to, by member index: it holds their use lock shared (see followed). */
  private readonly using = new Set<number>();
  private watching: Promise<void> | undefined;
  private stopped = false;
  readonly stats: ClusterStats = { takeovers: 0, stripesResynced: 0 };

  constructor(array: RaidArray, node: number, log: Logger) {
    this.array = array;
    this.node = node;
    this.log = log;
  }

  get nodes(): number {
    return journalAreas(this.array.sb);
  }

  /** Takes this node's lock on every open member, waiting while a survivor recovers this node's area. */
  async takeNodeLock(): Promise<void> {
    const startedMs = performance.now();
    for (const disk of this.openDisks()) await this.lockFor(disk).lock(this.nodeRange(this.node));
    const waitedMs = performance.now() - startedMs;
    if (waitedMs > 50) this.log('info', `cluster: node ${this.node}'s lock was held for ${Math.round(waitedMs)} ms (a node recovered this node's journal area meanwhile)`);
  }

  /**
   * From here on superblock commits are shared with the other nodes (member-set.ts): each takes
   * the superblock lock (byte SUPERBLOCK_LOCK_OFFSET_BYTES of every open member, in member order)
   * and starts from the newest superblock on the members.
   */
  shareCommits(): void {
    const disks = () => [...this.array.disks].sort(([a], [b]) => a - b).map(([, disk]) => disk).filter((disk) => underlyingFile(disk.device));
    const range = { offsetBytes: SUPERBLOCK_LOCK_OFFSET_BYTES, lengthBytes: 1 };
    this.array.members.shareCommits({
      lock: async () => {
        const held: RangeLock[] = [];
        try {
          for (const disk of disks()) {
            const lock = this.lockFor(disk);
            await lock.lock(range);
            held.push(lock);
          }
        } catch (error) {
          for (const lock of held) lock.unlock(range);
          throw error;
        }
        return () => { for (const lock of held.reverse()) lock.unlock(range); };
      },
      newest: async () => {
        let newest: Superblock | undefined;
        for (const disk of this.array.members.inSyncDisks()) {
          const read = await readSuperblocks(disk.device).catch(() => undefined);
          if (read?.superblock && (!newest || read.superblock.events > newest.events)) newest = read.superblock;
        }
        return newest;
      },
      adopted: (newlyFaulty) => {
        this.log('info', `cluster: adopted superblock events ${this.array.sb.events} committed by another node${newlyFaulty.length ? `; member(s) ${newlyFaulty.join(', ')} now faulty: this node writes no more to them` : ''}`);
        this.holdMemberUse();
        for (const index of newlyFaulty) {
          this.array.report({ kind: 'member-failed', path: this.array.disks.get(index)?.path ?? '(missing)', role: this.array.sb.members[index]?.role ?? null, reason: 'marked faulty by another cluster node' });
        }
      },
    });
  }

  /**
   * Holds the use lock (MEMBER_USE_OFFSET_BYTES on the member itself, shared) of every member
   * this node may write to, and lets go of the others: a node that fails a member waits until
   * every node has let go (followed), so once fail-disk returns no node writes to it.
   */
  holdMemberUse(): void {
    const range = { offsetBytes: MEMBER_USE_OFFSET_BYTES, lengthBytes: 1 };
    for (const [index, disk] of this.array.disks) {
      const file = underlyingFile(disk.device);
      if (!file) continue;
      const state = this.array.sb.members[index]?.state;
      const writable = state === 'active' || state === 'rebuilding';
      if (writable && !this.using.has(index)) {
        if (fsx.tryLock(file.fd, range.offsetBytes, range.lengthBytes, { shared: true })) this.using.add(index);
      } else if (!writable && this.using.has(index)) {
        fsx.unlock(file.fd, range.offsetBytes, range.lengthBytes);
        this.using.delete(index);
      }
    }
  }

  /** After this node marked member `index` faulty: waits until every running node has followed (let go of its use lock). */
  async waitFollowed(index: number): Promise<number> {
    this.holdMemberUse();
    const disk = this.array.disks.get(index);
    if (!disk || !underlyingFile(disk.device)) return 0;
    const startedMs = performance.now();
    const lock = new OfdRangeLock(underlyingFile(disk.device)!.fd, disk.path, { timeoutMs: CLUSTER_FOLLOW_TIMEOUT_MS });
    const range = { offsetBytes: MEMBER_USE_OFFSET_BYTES, lengthBytes: 1 };
    try {
      await lock.lock(range);
    } catch {
      throw new JraidError('E_DAEMON', `${disk.path} is marked faulty, but a cluster node still had it in use after ${CLUSTER_FOLLOW_TIMEOUT_MS} ms`, {
        path: disk.path, hint: 'check the other nodes (jraid detail); a hung node must be stopped',
      });
    }
    lock.unlock(range);
    return Math.round(performance.now() - startedMs);
  }

  /**
   * Runs a membership change that brings a member in or out of the array (add, remove, rebuild,
   * re-add, replace) only when no other node runs, holding every other node's lock meanwhile so
   * none starts: a node cannot open a member it does not know of.
   */
  async alone<T>(what: string, fn: () => Promise<T>): Promise<T> {
    const held: number[] = [];
    try {
      for (let node = 0; node < this.nodes; node++) {
        if (node === this.node) continue;
        if (!this.hold(node)) {
          throw new JraidError('E_REFUSED', `${what} in a cluster needs the other nodes stopped: node ${node} runs`, {
            hint: 'stop the other nodes (jraid stop on each), run it on this node, then start them again; fail-disk works with every node running',
          });
        }
        held.push(node);
      }
      return await fn();
    } finally {
      for (const node of held) this.release(node);
    }
  }

  /** Starts following other nodes' superblock commits and looking for dead nodes' dirty journal areas. */
  start(): void {
    this.holdMemberUse();
    this.timer = setInterval(() => {
      this.watching ??= (async () => {
        await this.array.members.refresh();
        this.holdMemberUse(); // also after this node's own commits (a member it failed on a write error)
        await this.recoverDeadNodes();
      })().catch((error: Error) => this.log('warn', `cluster: following the other nodes failed: ${error.message}`)).finally(() => { this.watching = undefined; });
    }, CLUSTER_WATCH_MS);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await this.watching;
  }

  /** Every node id, whether a daemon runs as it, and its journal area's newest record. */
  async describe(): Promise<ClusterNodeView[]> {
    const views: ClusterNodeView[] = [];
    for (let node = 0; node < this.nodes; node++) {
      const self = node === this.node;
      let running = self;
      // A node whose lock this process holds (recovering its area, or a membership change) is not running.
      if (!self && !this.holds.has(node)) {
        running = !this.hold(node);
        if (!running) this.release(node);
      }
      const { record } = await readJournal(this.array.members.inSyncDisks(), this.array.sb.arrayUuid, journalLayoutFor(this.array.sb, node));
      views.push({ node, self, running, journal: record ? { generation: record.generation, clean: record.clean, stripes: new Set(record.entries.map((entry) => entry.stripe)).size } : null });
    }
    return views;
  }

  /** One pass: every other node that is not running and left stripes listed gets them resynced. */
  async recoverDeadNodes(): Promise<void> {
    for (let node = 0; node < this.nodes && !this.stopped; node++) {
      if (node === this.node || !this.hold(node)) continue;
      try {
        await this.recoverNode(node);
      } finally {
        this.release(node);
      }
    }
  }

  /** Resyncs what dead node `node` lists, under the stripes' parity locks; holds `node`'s lock. */
  private async recoverNode(node: number): Promise<void> {
    const array = this.array;
    const layout = journalLayoutFor(array.sb, node);
    const { record } = await readJournal(array.members.inSyncDisks(), array.sb.arrayUuid, layout);
    if (!record || record.clean) return;
    const startedMs = performance.now();
    const checksByStripe = new Map<number, BlockCheck[]>();
    for (const entry of record.entries) checksByStripe.set(entry.stripe, [...(checksByStripe.get(entry.stripe) ?? []), ...entry.checks]);
    const stripes = [...checksByStripe.keys()].filter((stripe) => stripe < array.geometry.stripeCount).sort((a, b) => a - b);
    this.log('warn', `cluster: node ${node} is not running and its journal (generation ${record.generation}) lists ${stripes.length} stripe(s): resyncing them`);
    const bad = [];
    for (const stripe of stripes) {
      const result = await array.withStripe(stripe, () => recoverStripe(array, stripe, checksByStripe.get(stripe) ?? []));
      bad.push(...result.torn, ...result.unreadable);
    }
    await array.flushMembers();
    if (array.badBlocks.add(bad)) await array.persistBadBlocks();
    const clean: JournalRecord = { arrayUuid: array.sb.arrayUuid, generation: record.generation + 1, clean: true, entries: [] };
    await new MemberJournalStore(array, node).writeRecord(clean.generation, encodeJournalRecord(clean));
    this.stats.takeovers++;
    this.stats.stripesResynced += stripes.length;
    this.log('warn', `cluster: node ${node}'s ${stripes.length} stripe(s) resynced in ${Math.round(performance.now() - startedMs)} ms${bad.length ? `; ${bad.length} torn block range(s) recorded bad` : ''}; its journal area is clean (generation ${clean.generation})`);
  }

  private openDisks(): MemberDisk[] {
    return [...this.array.disks.values()].filter((disk) => underlyingFile(disk.device) !== undefined);
  }

  private nodeRange(node: number) {
    return { offsetBytes: NODE_LOCK_OFFSET_BYTES + node, lengthBytes: 1 };
  }

  /** Takes (or counts one more hold of) node `node`'s lock; false when that node runs. */
  private hold(node: number): boolean {
    const count = this.holds.get(node) ?? 0;
    if (count === 0 && !this.tryLockAll(node)) return false;
    this.holds.set(node, count + 1);
    return true;
  }

  private release(node: number): void {
    const count = (this.holds.get(node) ?? 0) - 1;
    if (count > 0) {
      this.holds.set(node, count);
      return;
    }
    this.holds.delete(node);
    this.unlockAll(node);
  }

  /** Node `node`'s lock on every open member, or on none (false). */
  private tryLockAll(node: number): boolean {
    const taken: RangeLock[] = [];
    for (const disk of this.openDisks()) {
      const lock = this.lockFor(disk);
      if (!lock.tryLock(this.nodeRange(node))) {
        for (const held of taken) held.unlock(this.nodeRange(node));
        return false;
      }
      taken.push(lock);
    }
    return taken.length > 0;
  }

  private unlockAll(node: number): void {
    for (const disk of this.openDisks()) this.lockFor(disk).unlock(this.nodeRange(node));
  }

  private lockFor(disk: MemberDisk): RangeLock {
    let lock = this.locks.get(disk);
    if (!lock) {
      lock = new OfdRangeLock(underlyingFile(disk.device)!.fd, disk.path);
      this.locks.set(disk, lock);
    }
    return lock;
  }
}
