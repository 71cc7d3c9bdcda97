// The read path, and the repairs reads lead to: a block that fails to read is rebuilt from the
// rest of its row, handed back, and rewritten to its member (as md does); whole chunks are read
// or rebuilt for scrub and rebuild. Every method that reads a stripe runs under its lock.

import { DeviceIoError } from '../device/block-device.js';
import type { StripeMap } from '../geometry/geometry.js';
import { computeP, computeQ, reconstructRow } from '../parity/parity.js';
import { JraidError } from '../errors.js';
import { defaultArena } from '../memory/arena.js';
import type { BufferPool } from '../memory/buffer-pool.js';
import { BLOCK_SIZE_BYTES, assert } from '../units.js';
import type { MemberDisk } from './member-disk.js';
import { slotRoles, type StripeHost } from './stripe-host.js';

export class ReadPath {
  private readonly host: StripeHost;
  private readonly pool: BufferPool;

  constructor(host: StripeHost) {
    this.host = host;
    this.pool = defaultArena().pool;
  }

  /**
   * One whole chunk per slot of `stripe`, lent by the arena's pool as one set (waiting for room,
   * as a write's stripe buffers do): scrub and rebuild read into them and compute on them in
   * place, instead of allocating (and the kernels copying) two fresh chunks a member per stripe.
   * `spare` more chunks follow the slots' (scrub's recomputed parity). Give them back with
   * giveBackStripeChunks before waiting for any other set (a repair's write).
   */
  async lendStripeChunks(stripe: number, spare = 0): Promise<Buffer[]> {
    const slots = slotRoles(this.host.geometry.stripeMap(stripe)).length;
    const set = this.pool.acquireSet(Array.from({ length: slots + spare }, () => this.host.geometry.chunkSizeBytes));
    return Array.isArray(set) ? set : await set;
  }

  giveBackStripeChunks(chunks: Buffer[]): void {
    this.pool.releaseSet(chunks);
  }

  /**
   * Reads `target.length` bytes of data chunk `dataIndex` of `stripe` from `chunkOffsetBytes`.
   * Call under the stripe's lock; `parityHeld`: the caller holds the parity rows read (cluster
   * mode, degraded), else a block rebuilt after a read error takes its row's parity lock.
   */
  async readExtent(stripe: number, dataIndex: number, chunkOffsetBytes: number, target: Buffer, parityHeld = false): Promise<void> {
    assert(this.host.locks.isHeld(stripe), `stripe ${stripe} read under its lock`);
    this.host.checkAlive();
    const map = this.host.geometry.stripeMap(stripe);
    const role = map.dataRoles[dataIndex]!;
    const disk = this.host.members.readableDisk(role, stripe);
    this.host.refuseUnrecovered(stripe, disk === undefined);
    const memberDataOffsetBytes = this.host.geometry.memberDataOffsetBytes(stripe, chunkOffsetBytes);
    const B = BLOCK_SIZE_BYTES;
    const alignedStart = Math.floor(memberDataOffsetBytes / B) * B;
    const alignedEnd = Math.ceil((memberDataOffsetBytes + target.length) / B) * B;
    if (disk) {
      const buf = alignedStart === memberDataOffsetBytes && alignedEnd === memberDataOffsetBytes + target.length ? target : Buffer.alloc(alignedEnd - alignedStart);
      try {
        await disk.readData(alignedStart, buf);
      } catch (error) {
        if (!(error instanceof DeviceIoError)) throw error;
        // A latent sector error: block by block, rebuild what fails from parity, hand it back,
        // and rewrite it to the member (as md does).
        for (let at = alignedStart; at < alignedEnd; at += B) {
          const block = buf.subarray(at - alignedStart, at - alignedStart + B);
          try {
            // The member may have been failed meanwhile (the error above, or another task), and
            // may even answer again with stale contents: read it only while it is still readable.
            if (this.host.members.readableDisk(role, stripe) !== disk) throw new DeviceIoError('EIO', disk.path, at, `${disk.path} left the array during the read`);
            await disk.readData(at, block);
          } catch (blockError) {
            if (!(blockError instanceof DeviceIoError)) throw blockError;
            // Cluster mode: rebuilt from parity and rewritten under the row's parity lock, so no
            // other node's write to that row lands half before and half after (the rewrite
            // would then put back stale data).
            const parityLocks = parityHeld ? undefined : this.host.parityLocks;
            const release = await parityLocks?.lockRows(stripe, (at - this.host.geometry.memberDataOffsetBytes(stripe, 0)) / B, 1);
            try {
              const rebuilt = await this.reconstructRange(stripe, map, dataIndex, at, B, new Set([role]));
              rebuilt.copy(block);
              // A member that left the array gets the block back from its rebuild, not from here.
              if (this.host.members.readableDisk(role, stripe) === disk) await this.repairReadError(disk, at, rebuilt);
            } finally {
              release?.();
            }
          }
        }
      }
      if (buf !== target) buf.copy(target, 0, memberDataOffsetBytes - alignedStart, memberDataOffsetBytes - alignedStart + target.length);
      return;
    }
    const rebuilt = await this.reconstructRange(stripe, map, dataIndex, alignedStart, alignedEnd - alignedStart, new Set([role]));
    rebuilt.copy(target, 0, memberDataOffsetBytes - alignedStart, memberDataOffsetBytes - alignedStart + target.length);
  }


  private async repairReadError(disk: MemberDisk, memberOffsetBytes: number, bytes: Buffer): Promise<void> {
    if (this.host.readOnly) {
      this.host.report({ kind: 'read-error-rebuilt', path: disk.path, memberDataOffsetBytes: memberOffsetBytes });
      return;
    }
    const index = this.host.members.indexOfDisk(disk);
    try {
      await disk.writeData(memberOffsetBytes, bytes);
      this.host.members.countCorrected(index, bytes.length / BLOCK_SIZE_BYTES);
      this.host.report({ kind: 'read-error-corrected', path: disk.path, memberDataOffsetBytes: memberOffsetBytes });
    } catch (error) {
      if (!(error instanceof DeviceIoError)) throw error;
      await this.host.failMember(index, `rewrite after a read error failed: ${error.message}`);
    }
  }

  /**
   * Rebuilds `lengthBytes` of data chunk `dataIndex` at member data offset `memberOffsetBytes`
   * from the other members of the stripe. `avoid` lists roles known unreadable.
   */
  private async reconstructRange(stripe: number, map: StripeMap, dataIndex: number, memberOffsetBytes: number, lengthBytes: number, avoid: Set<number>): Promise<Buffer> {
    const k = this.host.geometry.dataDisks;
    const slots = slotRoles(map);
    for (;;) {
      const missing = slots.map((role, slot) => avoid.has(role) || !this.host.members.readableDisk(role, stripe) ? slot : -1).filter((slot) => slot >= 0);
      if (missing.length > this.host.geometry.parityDisks) {
        throw new JraidError('E_ARRAY_FAILED', `stripe ${stripe} has lost ${missing.length} chunks; level ${this.host.members.sb.level} can rebuild ${this.host.geometry.parityDisks}`, {
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
        q: this.host.geometry.parityDisks === 2 ? bufs[k + 1]! : undefined,
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
        await this.host.members.readableDisk(role, stripe)!.readData(memberOffsetBytes, buf);
      } catch (error) {
        if (!(error instanceof DeviceIoError)) throw error;
        failed = role;
      }
    }));
    return failed;
  }

  /**
   * Buffers for a span of `count` stripes read whole: one of `count` chunks per role (a member
   * holds consecutive stripes' chunks back to back), then `spare` single chunks. Lent by the
   * pool as one set; give them back with giveBackStripeChunks.
   */
  async lendStripeSpan(count: number, spare = 0): Promise<Buffer[]> {
    const chunkSizeBytes = this.host.geometry.chunkSizeBytes;
    const sizes = [...Array.from({ length: this.host.geometry.raidDevices }, () => count * chunkSizeBytes), ...Array.from({ length: spare }, () => chunkSizeBytes)];
    const set = this.pool.acquireSet(sizes);
    return Array.isArray(set) ? set : await set;
  }

  /**
   * Stripes `first` to `first + count - 1` whole with one read per member, into `into` (from
   * lendStripeSpan): each stripe's chunks by slot, as views of those buffers. Undefined when a
   * role cannot be read over the whole span or a read fails: the caller then reads stripe by
   * stripe (readStripeChunks), which reads around the failure. Call under every span stripe's lock.
   */
  async readStripeSpan(first: number, count: number, into: readonly Buffer[]): Promise<{ stripe: number; map: StripeMap; roles: number[]; chunks: Buffer[] }[] | undefined> {
    const g = this.host.geometry;
    const spanBytes = count * g.chunkSizeBytes;
    assert(count >= 1 && first + count <= g.stripeCount, `stripes ${first}+${count} inside the array`);
    assert(into.length >= g.raidDevices && into.slice(0, g.raidDevices).every((buf) => buf.length === spanBytes), 'a span buffer for every role');
    const disks: MemberDisk[] = [];
    for (let role = 0; role < g.raidDevices; role++) {
      const disk = this.host.members.readableDisk(role, first);
      for (let stripe = first; stripe < first + count; stripe++) {
        assert(this.host.locks.isHeld(stripe), `stripe ${stripe} read whole under its lock`);
        if (!disk || this.host.members.readableDisk(role, stripe) !== disk) return undefined;
      }
      disks.push(disk!);
    }
    let failed = false;
    await Promise.all(disks.map((disk, role) => disk.readData(g.memberDataOffsetBytes(first, 0), into[role]!).catch((error) => {
      if (!(error instanceof DeviceIoError)) throw error;
      failed = true;
    })));
    if (failed) return undefined;
    return Array.from({ length: count }, (_, i) => {
      const stripe = first + i;
      const map = g.stripeMap(stripe);
      const roles = slotRoles(map);
      const chunks = roles.map((role) => into[role]!.subarray(i * g.chunkSizeBytes, (i + 1) * g.chunkSizeBytes));
      return { stripe, map, roles, chunks };
    });
  }

  /**
   * Reads one whole chunk of every role of the stripe that can be read, except `exclude`.
   * Returns buffers by slot (data 0..k-1, P, Q) with null where a role is lost or excluded;
   * a member whose read fails is left out too. `into` (from lendStripeChunks): read slot i into
   * into[i] rather than a new buffer. Call under the stripe's lock.
   */
  async readStripeChunks(stripe: number, exclude: ReadonlySet<number> = new Set(), into?: readonly Buffer[]): Promise<{ map: StripeMap; roles: number[]; chunks: (Buffer | null)[] }> {
    assert(this.host.locks.isHeld(stripe), `stripe ${stripe} read whole under its lock`);
    const map = this.host.geometry.stripeMap(stripe);
    const roles = slotRoles(map);
    assert(!into || (into.length >= roles.length && into.every((buf) => buf.length === this.host.geometry.chunkSizeBytes)), 'a whole chunk buffer for every slot');
    const avoid = new Set(exclude);
    for (;;) {
      const chunks = roles.map((role, slot) => avoid.has(role) || !this.host.members.readableDisk(role, stripe) ? null : into?.[slot] ?? Buffer.allocUnsafe(this.host.geometry.chunkSizeBytes));
      const failed = await this.readSlots(roles, chunks, stripe, this.host.geometry.memberDataOffsetBytes(stripe, 0));
      if (failed === undefined) return { map, roles, chunks };
      avoid.add(failed);
    }
  }

  /**
   * Rebuilds the whole chunk of `role` in `stripe` from the other members (data, P or Q). With
   * `into` (from lendStripeChunks) the survivors are read into it and the chunk is rebuilt in
   * place, in into[role's slot], which is what is returned.
   */
  async reconstructChunk(stripe: number, role: number, into?: readonly Buffer[]): Promise<Buffer> {
    const { map, roles, chunks } = await this.readStripeChunks(stripe, new Set([role]), into);
    const missing = chunks.filter((chunk) => chunk === null).length;
    if (missing > this.host.geometry.parityDisks) {
      throw new JraidError('E_ARRAY_FAILED', `stripe ${stripe}: ${missing} chunks unreadable, level ${this.host.members.sb.level} rebuilds ${this.host.geometry.parityDisks}`, {
        hint: 'too many members failed to rebuild this stripe',
      });
    }
    const k = this.host.geometry.dataDisks;
    const hasQ = this.host.geometry.parityDisks === 2;
    const slot = roles.indexOf(role);
    if (into && missing === 1) {
      // Only `role` is missing: a data chunk or P is the XOR of the rest of data and P; Q is
      // computed from the data.
      const out = into[slot]!;
      if (slot <= k) computeP(chunks.slice(0, k + 1).filter((chunk) => chunk !== null) as Buffer[], out);
      else computeQ(chunks.slice(0, k) as Buffer[], out, map.qExponents);
      return out;
    }
    // Parity is byte-wise: the whole chunk is one "row" of longer blocks.
    const row = reconstructRow({ data: chunks.slice(0, k), p: chunks[k]!, q: hasQ ? chunks[k + 1]! : undefined }, this.host.geometry.chunkSizeBytes, map.qExponents);
    const out = slot < k ? row.data[slot]! : slot === k ? row.p : row.q!;
    if (!into) return out;
    into[slot]!.set(out);
    return into[slot]!;
  }

  /**
   * Rewrites the blocks of `stripe` that fail to read on a member still in the array, each
   * rebuilt from the rest of its row (scrub --repair: the writing counterpart of a read that
   * rebuilt a block without rewriting it). Call under the stripe's lock.
   */
  async repairUnreadable(stripe: number): Promise<void> {
    assert(!this.host.readOnly, 'repair on a read-only array');
    assert(this.host.locks.isHeld(stripe), `stripe ${stripe} repaired under its lock`);
    const map = this.host.geometry.stripeMap(stripe);
    const roles = slotRoles(map);
    const k = this.host.geometry.dataDisks;
    const B = BLOCK_SIZE_BYTES;
    const first = this.host.geometry.memberDataOffsetBytes(stripe, 0);
    for (const [slot, role] of roles.entries()) {
      const disk = this.host.members.readableDisk(role, stripe);
      if (!disk) continue;
      for (let at = first; at < first + this.host.geometry.chunkSizeBytes; at += B) {
        const block = Buffer.alloc(B);
        if (await disk.readData(at, block).then(() => true, (error) => { if (error instanceof DeviceIoError) return false; throw error; })) continue;
        let rebuilt: Buffer;
        if (slot < k) {
          rebuilt = await this.reconstructRange(stripe, map, slot, at, B, new Set([role]));
        } else {
          const sources = map.dataRoles.map((dataRole) => this.host.members.readableDisk(dataRole, stripe));
          if (sources.some((source) => source === undefined)) {
            // A data member failed meanwhile (a rewrite above, or another task): no parity to make.
            throw new JraidError('E_ARRAY_DEGRADED', `a member failed while stripe ${stripe} was being repaired: the array is degraded`, { hint: 'rebuild the lost member first (jraid rebuild), then scrub again' });
          }
          const data = Array.from({ length: k }, () => Buffer.alloc(B));
          await Promise.all(sources.map((source, i) => source!.readData(at, data[i]!))).catch((error) => {
            if (!(error instanceof DeviceIoError)) throw error;
            throw new JraidError('E_IO', `stripe ${stripe}: a data member's read failed while its unreadable parity was being rebuilt: ${error.message}`, { hint: 'check the members with examine, then scrub --repair again' });
          });
          rebuilt = slot === k ? computeP(data) : computeQ(data, undefined, map.qExponents);
        }
        await this.repairReadError(disk, at, rebuilt);
      }
    }
  }
}
