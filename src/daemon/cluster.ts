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
// - Membership changes with every node running (change): quiesce (every stripe's parity lock),
//   commit, wait until every running node follows (its node byte on each member it must have
//   open, its use byte on each member it must write to), let writes go on, then copy. A node
//   follows by adopting the newer superblock: it opens the members it names that it lacks
//   (bringInMembers finds them by member uuid) and closes the ones it no longer has.
// - Spare takeover: the node that takes the takeover lock runs it (tryLeadTakeover).

import { performance } from 'node:perf_hooks';
import { readdir, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import fsx from 'fs-native-extensions';
import { JraidError } from '../errors.js';
import type { BlockDevice } from '../device/block-device.js';
import { FileDevice } from '../device/file-device.js';
import { MEMBER_USE_OFFSET_BYTES, NODE_LOCK_OFFSET_BYTES, NODE_USE_OFFSET_BYTES, SUPERBLOCK_LOCK_OFFSET_BYTES, TAKEOVER_LOCK_OFFSET_BYTES, unlockMember } from '../device/lock.js';
import { openMemberDevice, underlyingFile } from '../device/open-member.js';
import { OfdRangeLock, type RangeLock } from '../device/range-lock.js';
import { encodeJournalRecord, type BlockCheck, type JournalRecord } from '../format/journal-record.js';
import { isFreeSlot, type Superblock } from '../format/superblock.js';
import { formatUuid } from '../format/uuid.js';
import { journalAreas, journalLayoutFor, MemberJournalStore, readJournal } from '../journal/store.js';
import { MemberDisk } from '../engine/member-disk.js';
import { lockAll } from '../engine/member-locks.js';
import type { MemberParityLocks } from '../engine/parity-lock.js';
import type { RaidArray } from '../engine/raid-array.js';
import { recoverStripe } from '../engine/recover.js';
import { readSuperblocks } from '../engine/superblock-io.js';
import type { Logger } from './daemon.js';

/** How often a node looks for a newer superblock (another node's commit) and for nodes that died with stripes listed dirty. */
export const CLUSTER_WATCH_MS = 200;
/** How long a node that changed the membership (fail-disk, a write error, add, remove, rebuild) waits for every running node to follow. */
export const CLUSTER_FOLLOW_TIMEOUT_MS = 10_000;
/** How long the membership change's quiesce waits for one stripe's parity lock before it lets go of all and starts again. */
const QUIESCE_STRIPE_WAIT_MS = 2_000;
/** Stripes a membership change tries to pause with one lock per member (falling back to one stripe at a time when some are busy). */
const QUIESCE_BATCH_STRIPES = 4096;

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
  /** Open members this node holds its node byte on. */
  private readonly nodeHeld = new Set<MemberDisk>();
  private watching: Promise<void> | undefined;
  private stopped = false;
  readonly stats: ClusterStats = { takeovers: 0, stripesResynced: 0 };

  /** Paths where a member another node brought in may be (the array's config entry): searched first. */
  private readonly configPaths: () => Promise<string[]>;
  /** Member uuids searched for and not found (warned once). */
  private readonly notFound = new Set<string>();

  constructor(array: RaidArray, node: number, log: Logger, configPaths: () => Promise<string[]> = async () => []) {
    this.array = array;
    this.node = node;
    this.log = log;
    this.configPaths = configPaths;
  }

  get nodes(): number {
    return journalAreas(this.array.sb);
  }

  /** Takes this node's lock on every open member, waiting while a survivor recovers this node's area. */
  async takeNodeLock(): Promise<void> {
    const startedMs = performance.now();
    for (const disk of this.openDisks()) {
      await this.lockFor(disk).lock(this.nodeRange(this.node));
      this.nodeHeld.add(disk);
    }
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
      adopted: async (newlyFaulty, dropped) => {
        this.log('info', `cluster: adopted superblock events ${this.array.sb.events} committed by another node${newlyFaulty.length ? `; member(s) ${newlyFaulty.join(', ')} now faulty: this node writes no more to them` : ''}`);
        for (const device of dropped) await this.closeDropped(device);
        await this.bringInMembers();
        this.holdMemberUse();
        for (const index of newlyFaulty) {
          this.array.report({ kind: 'member-failed', path: this.array.disks.get(index)?.path ?? '(missing)', role: this.array.sb.members[index]?.role ?? null, reason: 'marked faulty by another cluster node' });
        }
      },
      followed: async (index) => {
        const waitedMs = await this.waitFollowed(index);
        this.log('info', `cluster: every running node followed member ${index}'s faulty mark (${waitedMs} ms)`);
      },
    });
  }

  /** A member the adopted state no longer has (removed by another node): its locks go, and it is closed. */
  private async closeDropped(device: BlockDevice): Promise<void> {
    const file = underlyingFile(device);
    for (const [disk, lock] of this.locks) if (disk.device === device) { lock.unlock(this.nodeRange(this.node)); this.locks.delete(disk); this.nodeHeld.delete(disk); }
    if (file) unlockMember(file.fd);
    await device.close();
    this.log('info', `cluster: ${device.path} left the array (another node removed it): closed`);
  }

  /**
   * Opens the members the current state names (spare, active or rebuilding) that this node has
   * not open: another node brought them in. The superblock names each by its member uuid; the
   * node looks for the file or block device whose own superblock carries that uuid and this
   * array's uuid, among: the array's config entry, every file in the directories of the members
   * it has open, and /dev/loop*. It opens it as it opens its members (array lock shared, node
   * lock) and writes to it from then on. Also at assembly: a node restarting after a change
   * whose new member its config entry does not list yet finds it the same way.
   */
  async bringInMembers(): Promise<void> {
    const array = this.array;
    const wanted = array.sb.members.flatMap((entry, index) =>
      !isFreeSlot(entry) && entry.state !== 'faulty' && !array.disks.has(index) ? [{ index, uuid: entry.uuid }] : []);
    if (wanted.length === 0) return;
    const open = new Set([...array.disks.values()].map((disk) => resolve(disk.path)));
    for (const path of await this.candidatePaths()) {
      if (wanted.length === 0) break;
      if (open.has(path)) continue;
      const own = await readOwnSuperblock(path);
      if (!own || !own.arrayUuid.equals(array.sb.arrayUuid)) continue;
      const at = wanted.findIndex((want) => want.uuid.equals(own.memberUuid));
      if (at < 0) continue;
      const { index } = wanted.splice(at, 1)[0]!;
      const device = await openMemberDevice(path, {});
      try {
        await lockAll([device], 'cluster');
        const disk = new MemberDisk(device, own);
        await this.lockFor(disk).lock(this.nodeRange(this.node));
        this.nodeHeld.add(disk);
        array.members.attachFound(index, disk);
      } catch (error) {
        await device.close();
        throw error;
      }
      this.notFound.delete(formatUuid(own.memberUuid));
      this.log('info', `cluster: member ${index} (${array.sb.members[index]!.state}${array.sb.members[index]!.role === null ? '' : `, role ${array.sb.members[index]!.role}`}) brought in by another node: found at ${path} and opened`);
    }
    for (const { index, uuid } of wanted) {
      const id = formatUuid(uuid);
      if (this.notFound.has(id)) continue;
      this.notFound.add(id);
      this.log('warn', `cluster: member ${index} (uuid ${id}) brought in by another node was not found in the config entry, the members' directories or /dev/loop*: this node does not write to it (the change waits for it, then fails)`);
    }
  }

  /** Where to look for a member another node brought in, without the members open already. */
  private async candidatePaths(): Promise<string[]> {
    const paths: string[] = [];
    const add = (path: string) => { const full = resolve(path); if (!paths.includes(full)) paths.push(full); };
    for (const path of await this.configPaths().catch(() => [])) add(path);
    const minimumBytes = this.array.sb.dataSizeBytes;
    for (const dir of new Set([...this.array.disks.values()].map((disk) => dirname(resolve(disk.path))))) {
      for (const name of await readdir(dir).catch(() => [] as string[])) {
        const info = await stat(join(dir, name)).catch(() => undefined);
        if (info && (info.isFile() || info.isBlockDevice()) && info.size >= minimumBytes) add(join(dir, name));
      }
    }
    for (const name of await readdir('/dev').catch(() => [] as string[])) if (/^loop\d+$/.test(name)) add(join('/dev', name));
    return paths;
  }

  /**
   * Holds the use lock (MEMBER_USE_OFFSET_BYTES on the member itself, shared) of every member
   * this node may write to, and lets go of the others: a node that fails a member waits until
   * every node has let go (followed), so once fail-disk returns no node writes to it.
   */
  holdMemberUse(): void {
    const range = { offsetBytes: MEMBER_USE_OFFSET_BYTES, lengthBytes: 1 };
    const own = NODE_USE_OFFSET_BYTES + this.node;
    for (const index of [...this.using]) if (!this.array.disks.has(index)) this.using.delete(index); // closed: its locks went with it
    const open = new Set(this.array.disks.values());
    for (const disk of [...this.nodeHeld]) if (!open.has(disk)) this.nodeHeld.delete(disk);
    for (const [index, disk] of this.array.disks) {
      const file = underlyingFile(disk.device);
      if (!file) continue;
      // Its node byte on every member it has open, also one it opened itself (add, rebuild
      // --replacement): a node that makes the next change checks it there.
      if (!this.nodeHeld.has(disk) && this.lockFor(disk).tryLock(this.nodeRange(this.node))) this.nodeHeld.add(disk);
      const state = this.array.sb.members[index]?.state;
      const writable = state === 'active' || state === 'rebuilding';
      if (writable && !this.using.has(index)) {
        // The node's own use byte as well: the node that brings a member in sees each node take it up.
        if (fsx.tryLock(file.fd, range.offsetBytes, range.lengthBytes, { shared: true }) && fsx.tryLock(file.fd, own, 1)) this.using.add(index);
      } else if (!writable && this.using.has(index)) {
        fsx.unlock(file.fd, range.offsetBytes, range.lengthBytes);
        fsx.unlock(file.fd, own, 1);
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
      const fd = underlyingFile(disk.device)!.fd;
      const lagging = [...Array(this.nodes).keys()].filter((node) => node !== this.node && heldByOther(fd, NODE_USE_OFFSET_BYTES + node));
      throw new JraidError('E_DAEMON', `${disk.path} is marked faulty, but cluster node(s) ${lagging.join(', ') || '(unknown)'} still had it in use after ${CLUSTER_FOLLOW_TIMEOUT_MS} ms`, {
        path: disk.path, hint: 'check that node (jraid detail, its log); a hung node must be stopped',
      });
    }
    lock.unlock(range);
    return Math.round(performance.now() - startedMs);
  }

  /**
   * Runs `fn` only when no other node runs, holding every other node's lock meanwhile so none
   * starts: replace, whose copy mirrors the old member's writes to the new one in this process
   * only (another node's writes would not reach the new member).
   */
  async alone<T>(what: string, fn: () => Promise<T>): Promise<T> {
    const held: number[] = [];
    try {
      for (let node = 0; node < this.nodes; node++) {
        if (node === this.node) continue;
        if (!this.hold(node)) {
          throw new JraidError('E_REFUSED', `${what} in a cluster needs the other nodes stopped: node ${node} runs`, {
            hint: 'stop the other nodes (jraid stop on each) and run it on this node; or, with every node running, add the new member (jraid add), fail the old one (jraid fail-disk) and rebuild (jraid rebuild)',
          });
        }
        held.push(node);
      }
      return await fn();
    } finally {
      for (const node of held) this.release(node);
    }
  }

  /**
   * Runs a membership change that brings a member in or out (add, remove, rebuild, re-add)
   * with every node running. First it quiesces the array: it takes every stripe's
   * parity lock where the current state puts it, through descriptors of its own, so no node
   * writes (its own writes wait too) while the change moves a role to another member, which
   * moves where nodes lock. Then `fn` commits the change (under the superblock lock) and calls
   * `settle` once the members are in place: `settle` waits until every running node has followed
   * (waitChangeFollowed) and lets the writes go on; whatever `fn` does after (a rebuild's copy,
   * each stripe under its parity lock) runs while every node writes to the new member too.
   * `settle` runs at the end if `fn` did not call it.
   */
  async change<T>(what: string, fn: (settle: (removedPaths?: string[]) => Promise<void>) => Promise<T>): Promise<T> {
    const startedMs = performance.now();
    const resume = await this.quiesce();
    const quiescedMs = Math.round(performance.now() - startedMs);
    let settling: Promise<void> | undefined;
    const settle = (removedPaths: string[] = []) => settling ??= (async () => {
      try {
        const waitedMs = await this.waitChangeFollowed(what, removedPaths);
        this.log('info', `cluster: ${what}: every running node followed (writes paused ${Math.round(performance.now() - startedMs)} ms: quiesced in ${quiescedMs} ms, followed in ${waitedMs} ms)`);
      } finally {
        await resume();
      }
    })();
    try {
      const result = await fn(settle);
      await settle();
      return result;
    } catch (error) {
      await settle().catch((settleError: Error) => this.log('warn', `cluster: ${what} failed, and then: ${settleError.message}`));
      throw error;
    }
  }

  /**
   * Takes the parity lock of every stripe, in stripe order, where the current state puts it, on
   * descriptors of its own (its own writers' locks, on the node's descriptors, conflict with
   * them). Resolves to the release.
   */
  private async quiesce(): Promise<() => Promise<void>> {
    // (Stripes are tried QUIESCE_BATCH_STRIPES at a time with one lock per member first: one
    // lock call per stripe paused a large array's writes for seconds.)
    const locks = this.array.parityLocks as MemberParityLocks | undefined;
    if (!locks) return async () => {};
    const files = new Map<MemberDisk, { device: FileDevice; lock: OfdRangeLock }>();
    const resume = async () => {
      for (const { device } of files.values()) await device.close(); // closing lets the locks go
      files.clear();
    };
    const fileFor = async (disk: MemberDisk) => {
      let file = files.get(disk);
      if (!file) {
        const device = await FileDevice.open(disk.path, {});
        file = { device, lock: new OfdRangeLock(device.fd, disk.path, { timeoutMs: QUIESCE_STRIPE_WAIT_MS }) };
        files.set(disk, file);
      }
      return file;
    };
    /**
     * Fast path: the rows of stripes [first, end) on every member that carries a parity lock in
     * them, one try each (no wait, so no deadlock). False when any is held: the caller then
     * takes the batch stripe by stripe, waiting (a batch always busy somewhere would starve).
     * What a failed try took stays held: the same descriptor's locks merge, never conflict.
     */
    const tryBatch = async (first: number, end: number): Promise<boolean> => {
      const disks = new Set<MemberDisk>();
      for (let stripe = first; stripe < end; stripe++) for (const { disk } of locks.rangesOf(stripe)) disks.add(disk);
      for (const disk of disks) {
        const startBytes = disk.dataOffsetBytes + this.array.geometry.memberDataOffsetBytes(first, 0);
        const endBytes = disk.dataOffsetBytes + this.array.geometry.memberDataOffsetBytes(end - 1, 0) + this.array.geometry.chunkSizeBytes;
        if (!(await fileFor(disk)).lock.tryLock({ offsetBytes: startBytes, lengthBytes: endBytes - startBytes })) return false;
      }
      return true;
    };
    try {
      for (let attempt = 0; ; attempt++) {
        let stalled = false;
        const stripeCount = this.array.geometry.stripeCount;
        for (let first = 0; first < stripeCount && !stalled; first += QUIESCE_BATCH_STRIPES) {
          const end = Math.min(stripeCount, first + QUIESCE_BATCH_STRIPES);
          if (await tryBatch(first, end)) continue;
          for (let stripe = first; stripe < end && !stalled; stripe++) {
            for (const { disk, range } of locks.rangesOf(stripe)) {
              try {
                await (await fileFor(disk)).lock.lock(range);
              } catch {
                stalled = true; // a writer holds P and waits for Q this holds (RAID-6): let go of all
                break;
              }
            }
          }
        }
        if (!stalled) return resume;
        await resume();
        if (attempt >= 5) throw new JraidError('E_DAEMON', `the cluster's writes could not be paused for a membership change (a parity lock stayed held ${QUIESCE_STRIPE_WAIT_MS} ms, ${attempt + 1} times)`, { hint: 'check the other nodes (jraid detail); retry' });
        await new Promise((done) => setTimeout(done, 50 + Math.random() * 200));
      }
    } catch (error) {
      await resume();
      throw error;
    }
  }

  /**
   * After a membership change: waits until every running node follows the current state: holds
   * its node lock on every member open here that is in the array or a spare (it opened it),
   * and its use byte on every member it must write to (active, rebuilding) and on no other.
   * and no node has a removed member (`removedPaths`, closed here already) open any more: a
   * probe descriptor finds no running node's node byte held there.
   */
  async waitChangeFollowed(what: string, removedPaths: string[] = []): Promise<number> {
    this.holdMemberUse();
    const startedMs = performance.now();
    const probes: FileDevice[] = [];
    for (const path of removedPaths) {
      const probe = await FileDevice.open(path, {}).catch(() => undefined);
      if (probe) probes.push(probe);
    }
    try {
      return await this.waitLagging(what, probes, startedMs);
    } finally {
      for (const probe of probes) await probe.close();
    }
  }

  private async waitLagging(what: string, probes: FileDevice[], startedMs: number): Promise<number> {
    for (;;) {
      const lagging = this.laggingNodes(probes);
      if (lagging.length === 0) return Math.round(performance.now() - startedMs);
      if (performance.now() - startedMs > CLUSTER_FOLLOW_TIMEOUT_MS) {
        throw new JraidError('E_DAEMON', `${what} is committed, but cluster node(s) ${lagging.map((lag) => `${lag.node} (${lag.why})`).join(', ')} had not followed after ${CLUSTER_FOLLOW_TIMEOUT_MS} ms`, {
          hint: 'check that node\'s log (a member it cannot find: list the member in the config entry) and jraid detail; a hung node must be stopped',
        });
      }
      await new Promise((done) => setTimeout(done, 20));
    }
  }

  /** Running nodes that do not yet follow the current state, and the first thing each lacks. */
  private laggingNodes(removed: FileDevice[]): { node: number; why: string }[] {
    const lagging: { node: number; why: string }[] = [];
    for (let node = 0; node < this.nodes; node++) {
      if (node === this.node || this.holds.has(node)) continue;
      if (this.hold(node)) { this.release(node); continue; } // not running
      const stillOpen = removed.find((probe) => heldByOther(probe.fd, NODE_LOCK_OFFSET_BYTES + node));
      if (stillOpen) { lagging.push({ node, why: `still has the removed ${stillOpen.path} open` }); continue; }
      for (const [index, disk] of this.array.disks) {
        const file = underlyingFile(disk.device);
        const state = this.array.sb.members[index]?.state;
        if (!file || state === undefined || state === 'faulty') continue;
        const writes = state === 'active' || state === 'rebuilding';
        if (!heldByOther(file.fd, NODE_LOCK_OFFSET_BYTES + node)) { lagging.push({ node, why: `has not opened ${disk.path}` }); break; }
        if (heldByOther(file.fd, NODE_USE_OFFSET_BYTES + node) !== writes) { lagging.push({ node, why: `${writes ? 'does not write' : 'still writes'} to ${disk.path}` }); break; }
      }
    }
    return lagging;
  }

  /**
   * An automatic spare takeover: the node that takes the takeover lock (byte
   * TAKEOVER_LOCK_OFFSET_BYTES of every in-sync member, tried in member order, so the first
   * member decides between two nodes that try at once) runs it; resolves to its release, or
   * undefined when another node runs one.
   */
  tryLeadTakeover(): (() => void) | undefined {
    const range = { offsetBytes: TAKEOVER_LOCK_OFFSET_BYTES, lengthBytes: 1 };
    const held: RangeLock[] = [];
    const disks = [...this.array.disks].sort(([a], [b]) => a - b)
      .filter(([index, disk]) => this.array.sb.members[index]?.state === 'active' && underlyingFile(disk.device)).map(([, disk]) => disk);
    for (const disk of disks) {
      const lock = this.lockFor(disk);
      if (!lock.tryLock(range)) {
        for (const taken of held) taken.unlock(range);
        return undefined;
      }
      held.push(lock);
    }
    return held.length > 0 ? () => { for (const lock of held.reverse()) lock.unlock(range); } : undefined;
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

/** Whether another open file description holds byte `offsetBytes` (a try through this one, let go at once). */
function heldByOther(fd: number, offsetBytes: number): boolean {
  if (!fsx.tryLock(fd, offsetBytes, 1)) return true;
  fsx.unlock(fd, offsetBytes, 1);
  return false;
}

/** A path's own superblock, or undefined when it has none that reads. */
async function readOwnSuperblock(path: string): Promise<Superblock | undefined> {
  const device = await FileDevice.open(path, { readOnly: true }).catch(() => undefined);
  if (!device) return undefined;
  try {
    return (await readSuperblocks(device).catch(() => undefined))?.superblock;
  } finally {
    await device.close();
  }
}
