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
import { OfdRangeLock, type RangeLock } from '../device/range-lock.js';
import { NODE_LOCK_OFFSET_BYTES } from '../device/lock.js';
import { underlyingFile } from '../device/open-member.js';
import { encodeJournalRecord, type BlockCheck, type JournalRecord } from '../format/journal-record.js';
import { journalAreas, journalLayoutFor, MemberJournalStore, readJournal } from '../journal/store.js';
import { recoverStripe } from '../engine/recover.js';
import type { RaidArray } from '../engine/raid-array.js';
import type { MemberDisk } from '../engine/member-disk.js';
import type { Logger } from './daemon.js';

/** How often a node looks for other nodes that died with stripes listed dirty. */
export const CLUSTER_WATCH_MS = 500;

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

  /** Starts looking for dead nodes' dirty journal areas. */
  start(): void {
    this.timer = setInterval(() => {
      this.watching ??= this.recoverDeadNodes().catch((error: Error) => this.log('warn', `cluster: looking after dead nodes failed: ${error.message}`)).finally(() => { this.watching = undefined; });
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
      if (!self) {
        running = !this.tryLockAll(node);
        if (!running) this.unlockAll(node);
      }
      const { record } = await readJournal(this.array.members.inSyncDisks(), this.array.sb.arrayUuid, journalLayoutFor(this.array.sb, node));
      views.push({ node, self, running, journal: record ? { generation: record.generation, clean: record.clean, stripes: new Set(record.entries.map((entry) => entry.stripe)).size } : null });
    }
    return views;
  }

  /** One pass: every other node that is not running and left stripes listed gets them resynced. */
  async recoverDeadNodes(): Promise<void> {
    for (let node = 0; node < this.nodes && !this.stopped; node++) {
      if (node === this.node || !this.tryLockAll(node)) continue;
      try {
        await this.recoverNode(node);
      } finally {
        this.unlockAll(node);
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
