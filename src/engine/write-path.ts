// The write path of one stripe, under its lock: plan (stripe-write-plan.ts), read what the plan
// needs, compute the new data and parity, make the journal record and write-intent mark durable,
// write, and wait for any member failure it caused to be durable before acknowledging.
// The stripe's buffers are lent by the arena's pool (where the parity kernels run without a
// copy) and given back once no member I/O on them is in flight: nothing is allocated per
// request. The pool is the bound on stripe memory in flight (STRIPE_BUFFER_POOL_BYTES): a
// stripe whose buffers do not fit waits for others to give theirs back (backpressure).

import { DeviceIoError } from '../device/block-device.js';
import type { StripeMap } from '../geometry/geometry.js';
import { computeP, computePQ, gfMulXorInto, reconstructRow, xorInto } from '../parity/parity.js';
import { defaultArena } from '../memory/arena.js';
import type { BufferPool } from '../memory/buffer-pool.js';
import { gfPow2 } from '../parity/gf256.js';
import { defaultKernels } from '../parity/wasm-kernels.js';
import type { WriteTicket } from '../journal/write-journal.js';
import type { BlockCheck } from '../format/journal-record.js';
import { crc32c } from '../format/crc32c.js';
import { JraidError } from '../errors.js';
import { BLOCK_SIZE_BYTES, SECTOR_SIZE_BYTES, assert } from '../units.js';
import type { MemberDisk } from './member-disk.js';
import { slotRoles, type StripeHost } from './stripe-host.js';
import { COVER_NONE, planStripeWrite, runs, type StripeWritePlan } from './stripe-write-plan.js';

/** One data chunk's part of a write, with its bytes. */
export interface StripePiece {
  dataIndex: number;
  chunkOffsetBytes: number;
  data: Buffer;
}

/** [first block row, rows] of the chunk that `pieces` touch: what the planner plans, and the parity they change. */
function rowSpan(pieces: readonly StripePiece[]): [number, number] {
  let first = Infinity;
  let last = -1;
  for (const piece of pieces) {
    first = Math.min(first, Math.floor(piece.chunkOffsetBytes / BLOCK_SIZE_BYTES));
    last = Math.max(last, Math.floor((piece.chunkOffsetBytes + piece.data.length - 1) / BLOCK_SIZE_BYTES));
  }
  return [first, last - first + 1];
}

/** A plan with the members and buffers it runs on. */
interface StripeWork {
  stripe: number;
  map: StripeMap;
  roles: number[];
  plan: StripeWritePlan;
  readable: (MemberDisk | undefined)[];
  writable: (MemberDisk | undefined)[];
  /** Slots whose read failed but whose member is still in the array: rewrite what was rebuilt. */
  repair: boolean[];
  /** One per slot, zeroed: plan.rows blocks each, lent by the pool as one set (acquireSet). */
  bufs: Buffer[];
}

export class WritePath {
  private readonly host: StripeHost;
  private readonly pool: BufferPool;

  constructor(host: StripeHost) {
    this.host = host;
    this.pool = defaultArena().pool;
    // The kernels' and computeRows' own buffers come from the pool for good: take them before
    // any stripe's, or a flood of stripes filling the pool would leave no room for them.
    defaultKernels();
    deltaScratch(this.pool);
  }

  /** Zeroed stripe buffers, one per slot, from the pool: waits for room when it is full. */
  private async lend(map: StripeMap, sizeBytes: number): Promise<Buffer[]> {
    const set = this.pool.acquireSet(Array.from({ length: slotRoles(map).length }, () => sizeBytes));
    const bufs = Array.isArray(set) ? set : await set;
    for (const buf of bufs) buf.fill(0);
    return bufs;
  }

  /** Gives back a stripe's buffers once its member I/O has all settled. */
  private giveBack(bufs: Buffer[] | undefined): void {
    if (bufs) this.pool.releaseSet(bufs);
  }

  /** Writes `pieces` of one stripe. Call under the stripe's lock. */
  async writeStripe(stripe: number, pieces: StripePiece[]): Promise<void> {
    const host = this.host;
    assert(host.locks.isHeld(stripe), `stripe ${stripe} written under its lock`);
    host.checkAlive();
    const ticket: WriteTicket | undefined = host.journal ? await host.journal.begin(stripe) : undefined;
    let touched = false;
    // Cluster mode (seed 004): the rows' parity is locked on its member before it is read, and
    // released once the new parity is written; no other node changes it in between.
    let releaseParity: (() => void) | undefined;
    let bufs: Buffer[] | undefined;
    try {
      if (host.parityLocks) releaseParity = await host.parityLocks.lockRows(stripe, ...rowSpan(pieces));
      // A member whose read fails (a latent sector error) is planned around: its blocks are
      // reconstructed from the others and rewritten with the stripe, which repairs them.
      const avoid = new Set<number>();
      // The stripe's buffers first (waiting for room), then the plan, made from the members'
      // state after any wait. A plan made again reuses the buffers: its rows are the pieces'.
      bufs = await this.lend(this.host.geometry.stripeMap(stripe), rowSpan(pieces)[1] * BLOCK_SIZE_BYTES);
      let work = this.plan(stripe, pieces, avoid, bufs);
      while (!(await this.readPlanned(work, avoid))) {
        for (const buf of bufs!) buf.fill(0);
        work = this.plan(stripe, pieces, avoid, bufs);
      }
      const checks = this.computeRows(work, pieces, !!ticket);
      // Degraded: the stripe's write-intent mark is durable before its data lands. Judged by the
      // plan (a member it leaves out), not only by the roles lost now: a member failed when the
      // plan was made may be re-added by now, and must still get this stripe back.
      if (work.writable.includes(undefined) || host.members.lostRoles().length > 0) await host.writeIntent.markStripe(stripe);
      if (ticket) await ticket.durable(checks);
      touched = true;
      await this.writePlanned(work);
      // A member this write planned around (or failed) is faulty in memory at once: the write is
      // acknowledged only once that is durable, or a crash could bring the member back in with
      // this stripe's chunk missing.
      await host.members.stateDurable();
    } catch (error) {
      releaseParity?.();
      this.giveBack(bufs);
      if (ticket && !touched) ticket.abandon();
      else if (ticket) ticket.done();
      throw error;
    }
    releaseParity?.();
    this.giveBack(bufs);
    ticket?.done();
  }

  private plan(stripe: number, pieces: StripePiece[], avoid: ReadonlySet<number>, bufs: Buffer[]): StripeWork {
    const { geometry: g, members } = this.host;
    const map = g.stripeMap(stripe);
    const roles = slotRoles(map);
    const readable = roles.map((role) => avoid.has(role) ? undefined : members.readableDisk(role, stripe));
    const writable = roles.map((role) => members.writableDisk(role));
    const repair = roles.map((role) => avoid.has(role) && members.readableDisk(role, stripe) !== undefined);
    const plan = planStripeWrite({
      stripe, dataSlots: g.dataDisks, paritySlots: g.parityDisks, blockSizeBytes: BLOCK_SIZE_BYTES,
      pieces: pieces.map((piece) => ({ dataIndex: piece.dataIndex, chunkOffsetBytes: piece.chunkOffsetBytes, lengthBytes: piece.data.length })),
      readable: readable.map((disk) => disk !== undefined),
      writable: writable.map((disk) => disk !== undefined),
      repair,
    });
    assert(bufs.length === roles.length && bufs[0]!.length === plan.rows * BLOCK_SIZE_BYTES, 'the stripe\'s buffers hold the plan\'s rows');
    return { stripe, map, roles, plan, readable, writable, repair, bufs };
  }

  /** Reads what the plan needs; false when a member failed and the stripe must be planned again. */
  private async readPlanned(work: StripeWork, avoid: Set<number>): Promise<boolean> {
    const B = BLOCK_SIZE_BYTES;
    const { plan } = work;
    const failedRoles = new Set<number>();
    const reads: Promise<void>[] = [];
    work.roles.forEach((role, slot) => {
      for (const [first, count] of runs(plan.reads[slot]!)) {
        const disk = work.readable[slot];
        assert(disk, `the plan reads only readable slots (slot ${slot} of stripe ${work.stripe})`);
        const memberDataOffsetBytes = this.host.geometry.memberDataOffsetBytes(work.stripe, (plan.rowFirst + first) * B);
        reads.push(disk.readData(memberDataOffsetBytes, work.bufs[slot]!.subarray(first * B, (first + count) * B)).catch((error) => {
          if (!(error instanceof DeviceIoError)) throw error;
          failedRoles.add(role);
        }));
      }
    });
    await settled(reads);
    for (const role of failedRoles) avoid.add(role);
    if (avoid.size > this.host.geometry.parityDisks) {
      throw new JraidError('E_IO', `stripe ${work.stripe}: reads failed on ${avoid.size} members, more than level ${this.host.members.sb.level} can rebuild`, {
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
  private computeRows(work: StripeWork, pieces: StripePiece[], withChecks: boolean): BlockCheck[] {
    const B = BLOCK_SIZE_BYTES;
    const { plan } = work;
    const checks: BlockCheck[] = [];
    const oldKnown = (slot: number, r: number) => plan.reads[slot]![r] === 1 || !work.readable[slot] || plan.modes[r] === 'reconstruct';
    const check = (slot: number, r: number, oldCrc: number | undefined, block: Buffer) => {
      if (!withChecks || !work.writable[slot]) return;
      const blockIndex = slot * this.host.geometry.blocksPerChunk + plan.rowFirst + r;
      checks.push(oldCrc === undefined
        ? { blockIndex, newCrc: crc32c(block), kind: 'first-sector', checkCrc: crc32c(block.subarray(0, SECTOR_SIZE_BYTES)) }
        : { blockIndex, newCrc: crc32c(block), kind: 'old', checkCrc: oldCrc });
    };
    const k = this.host.geometry.dataDisks;
    const hasQ = this.host.geometry.parityDisks === 2;
    const byIndex = new Map(pieces.map((piece) => [piece.dataIndex, piece]));
    const view = (slot: number, r: number) => work.bufs[slot]!.subarray(r * B, (r + 1) * B);
    const merge = (slot: number, r: number, into: Buffer) => {
      const piece = byIndex.get(slot)!;
      const blockStart = (plan.rowFirst + r) * B;
      const from = Math.max(piece.chunkOffsetBytes, blockStart);
      const to = Math.min(piece.chunkOffsetBytes + piece.data.length, blockStart + B);
      piece.data.copy(into, from - blockStart, from - piece.chunkOffsetBytes, to - piece.chunkOffsetBytes);
    };
    const delta = deltaScratch(this.pool);
    for (let r = 0; r < plan.rows; r++) {
      const mode = plan.modes[r]!;
      const touched: number[] = [];
      for (let slot = 0; slot < k; slot++) if (plan.coverage[slot * plan.rows + r]! !== COVER_NONE) touched.push(slot);
      if (mode === 'rmw') {
        for (const slot of touched) {
          const block = view(slot, r);
          delta.set(block);
          const oldCrc = withChecks ? crc32c(block) : undefined;
          merge(slot, r, block);
          check(slot, r, oldCrc, block);
          xorInto(delta, block); // old ^ new
          if (work.writable[k]) xorInto(view(k, r), delta);
          if (hasQ && work.writable[k + 1]) gfMulXorInto(view(k + 1, r), delta, gfPow2(work.map.qExponents[slot]!));
        }
        continue;
      }
      if (mode === 'reconstruct') {
        const missing = (slot: number) => !work.readable[slot];
        const row = reconstructRow({
          data: Array.from({ length: k }, (_, i) => missing(i) ? null : view(i, r)),
          p: missing(k) ? null : view(k, r),
          q: hasQ ? (missing(k + 1) ? null : view(k + 1, r)) : undefined,
        }, B, work.map.qExponents);
        row.data.forEach((block, i) => { if (missing(i)) view(i, r).set(block); });
      }
      for (const slot of touched) {
        const block = view(slot, r);
        const oldCrc = withChecks && oldKnown(slot, r) ? crc32c(block) : undefined;
        merge(slot, r, block);
        check(slot, r, oldCrc, block);
      }
      const data = Array.from({ length: k }, (_, i) => view(i, r));
      if (hasQ) computePQ(data, view(k, r), view(k + 1, r), work.map.qExponents);
      else computeP(data, view(k, r));
    }
    return checks;
  }

  private async writePlanned(work: StripeWork): Promise<void> {
    const B = BLOCK_SIZE_BYTES;
    const { plan } = work;
    const host = this.host;
    const writes: Promise<void>[] = [];
    work.roles.forEach((role, slot) => {
      const disk = work.writable[slot];
      if (!disk) return;
      const rowsToWrite = plan.writes[slot]!;
      if (work.repair[slot]) host.members.countCorrected(host.members.memberIndexForRole(role), rowsToWrite.reduce((sum, flag) => sum + flag, 0));
      for (const [first, count] of runs(rowsToWrite)) {
        const memberDataOffsetBytes = host.geometry.memberDataOffsetBytes(work.stripe, (plan.rowFirst + first) * B);
        writes.push(disk.writeData(memberDataOffsetBytes, work.bufs[slot]!.subarray(first * B, (first + count) * B)).catch(async (error) => {
          if (!(error instanceof DeviceIoError)) throw error;
          // A member write error: that member is failed; the stripe stays readable from the rest.
          // It missed this write: the stripe is marked for its return first, so that once it is
          // faulty a re-add finds the mark.
          await host.writeIntent.markStripe(work.stripe);
          await host.failMember(host.members.memberIndexForRole(role), `write error: ${error.message}`);
        }));
      }
    });
    await settled(writes);
    host.checkAlive();
  }

  /** Writes repaired blocks (scrub) of one stripe: a member whose write fails is failed. Call under the stripe's lock. */
  async writeRepairs(stripe: number, fixes: { role: number; chunkOffsetBytes: number; block: Buffer }[]): Promise<void> {
    const host = this.host;
    assert(host.locks.isHeld(stripe), `stripe ${stripe} repaired under its lock`);
    await Promise.all(fixes.map(async (fix) => {
      const disk = host.members.writableDisk(fix.role);
      if (!disk) return; // failed meanwhile: it gets the stripe back when rebuilt
      try {
        await disk.writeData(host.geometry.memberDataOffsetBytes(stripe, fix.chunkOffsetBytes), fix.block);
      } catch (error) {
        if (!(error instanceof DeviceIoError)) throw error;
        await host.writeIntent.markStripe(stripe);
        await host.failMember(host.members.indexOfDisk(disk), `write error during scrub repair: ${error.message}`);
      }
    }));
  }
}

/** Waits for every promise to settle (no I/O left on the stripe's buffers), then rethrows the first failure. */
async function settled(promises: readonly Promise<void>[]): Promise<void> {
  const results = await Promise.allSettled(promises);
  for (const result of results) if (result.status === 'rejected') throw result.reason;
}

/** computeRows' scratch block (old ^ new): computeRows never awaits, so one block serves every stripe of every array. */
let delta: Buffer | undefined;

function deltaScratch(pool: BufferPool): Buffer {
  delta ??= pool.tryAcquire(BLOCK_SIZE_BYTES) ?? Buffer.alloc(BLOCK_SIZE_BYTES);
  return delta;
}
