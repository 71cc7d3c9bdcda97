// Cluster mode's parity locks (seed 004): before a node reads a stripe's parity to change it,
// it takes an exclusive byte-range lock over those parity bytes on the parity member itself,
// and keeps it until the new parity is written; no message goes to another node. The lock
// covers the rows (4 KiB blocks of each chunk) the write touches, on P and then Q (always in
// that order, so two nodes never wait on each other), at the member offsets where that parity
// lives. Maintenance (recovery of a dead node's stripes, scrub, rebuild) locks whole stripes.
//
// A parity member that is gone (missing, or failed and closed) cannot carry the lock: its rows
// are then locked on the lowest role of the stripe whose member is open, the same member for
// every node that sees the same member states (docs/FORMAT.md, "Cluster locks"). A membership
// change can move where a stripe's lock lives: the node making it quiesces every node's writes
// until all follow (daemon/cluster.ts), and a lock taken across the change is taken again where
// the state now puts it (lockRows).
//
// Within one node the stripe locks already order writers of one stripe; two locks this node
// takes through one open file never conflict, so that order is what keeps its own writers
// apart, and these locks keep the nodes apart.

import { OfdRangeLock, type ByteRange, type RangeLock, type RangeLockStats } from '../device/range-lock.js';
import { underlyingFile } from '../device/open-member.js';
import { BLOCK_SIZE_BYTES, assert, assertNever } from '../units.js';
import type { Geometry } from '../geometry/geometry.js';
import type { MemberSet } from './member-set.js';
import type { MemberDisk } from './member-disk.js';

export interface ParityLocks {
  /** Locks parity rows [rowFirst, rowFirst + rows) of `stripe`; resolves to the release. */
  lockRows(stripe: number, rowFirst: number, rows: number): Promise<() => void>;
  /** Locks the whole stripe's parity (maintenance). */
  lockStripe(stripe: number): Promise<() => void>;
  /** Lock use so far, summed over members (daemon status, bench). */
  stats(): RangeLockStats;
}

export class MemberParityLocks implements ParityLocks {
  private readonly geometry: Geometry;
  private readonly members: MemberSet;
  private readonly byDisk = new Map<MemberDisk, RangeLock>();
  private readonly retired: RangeLockStats = { acquired: 0, contended: 0, waitMs: 0 };

  constructor(geometry: Geometry, members: MemberSet) {
    this.geometry = geometry;
    this.members = members;
  }

  lockStripe(stripe: number): Promise<() => void> {
    return this.lockRows(stripe, 0, this.geometry.blocksPerChunk);
  }

  async lockRows(stripe: number, rowFirst: number, rows: number): Promise<() => void> {
    assert(rows > 0 && rowFirst >= 0 && rowFirst + rows <= this.geometry.blocksPerChunk, `parity rows ${rowFirst}+${rows} lie in one chunk`);
    for (;;) {
      const held: { lock: RangeLock; range: ByteRange }[] = [];
      const release = () => {
        for (const { lock, range } of held.splice(0).reverse()) lock.unlock(range);
      };
      const disks = this.lockDisks(stripe);
      try {
        for (const { disk, range } of this.rangesOf(stripe, rowFirst, rows, disks)) {
          const lock = this.lockFor(disk);
          await lock.lock(range);
          held.push({ lock, range });
        }
      } catch (error) {
        release();
        throw error;
      }
      // Locked where the member state of the moment puts the lock: a membership change this node
      // followed while it waited may have moved it (another member carries P now), and a node
      // that already follows the change locks there. Taken again there.
      const now = this.lockDisks(stripe);
      if (now.length === disks.length && now.every((disk, i) => disk === disks[i])) return release;
      release();
    }
  }

  /** Where stripe `stripe`'s parity rows are locked now: the member and its byte range, in locking order (cluster.ts quiesces with these). */
  rangesOf(stripe: number, rowFirst = 0, rows = this.geometry.blocksPerChunk, disks = this.lockDisks(stripe)): { disk: MemberDisk; range: ByteRange }[] {
    return disks.map((disk) => ({ disk, range: { offsetBytes: disk.dataOffsetBytes + this.geometry.memberDataOffsetBytes(stripe, rowFirst * BLOCK_SIZE_BYTES), lengthBytes: rows * BLOCK_SIZE_BYTES } }));
  }

  stats(): RangeLockStats {
    const total = { ...this.retired };
    for (const lock of this.byDisk.values()) {
      total.acquired += lock.stats.acquired;
      total.contended += lock.stats.contended;
      total.waitMs += lock.stats.waitMs;
    }
    return total;
  }

  /** The members that carry the stripe's parity lock: P's, then Q's; the lowest open role's when both are gone. */
  private lockDisks(stripe: number): MemberDisk[] {
    const map = this.geometry.stripeMap(stripe);
    const parityRoles = map.qRole >= 0 ? [map.pRole, map.qRole] : [map.pRole];
    const open = (role: number) => {
      const index = this.members.memberIndexForRole(role);
      return index >= 0 ? this.members.disks.get(index) : undefined;
    };
    const disks = parityRoles.map(open).filter((disk): disk is MemberDisk => disk !== undefined && underlyingFile(disk.device) !== undefined);
    if (disks.length > 0) return disks;
    for (let role = 0; role < this.geometry.raidDevices; role++) {
      const disk = open(role);
      if (disk && underlyingFile(disk.device)) return [disk];
    }
    return assertNever(`stripe ${stripe} has an open member to carry its parity lock`);
  }

  private lockFor(disk: MemberDisk): RangeLock {
    let lock = this.byDisk.get(disk);
    if (!lock) {
      const file = underlyingFile(disk.device);
      assert(file, `${disk.path} is a file or block device (cluster mode locks its bytes)`);
      lock = new OfdRangeLock(file.fd, disk.path);
      this.byDisk.set(disk, lock);
    }
    return lock;
  }
}
