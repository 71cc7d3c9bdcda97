// Write-intent marks (seed 002's proxy marking): while a role is lost, every stripe written is
// first marked in a bitmap on the surviving members, durably, before its data lands. A member
// that comes back (re-add) then needs only the marked regions rebuilt. Tracking starts when a
// whole array loses a member, and records the event count of that state change; the bitmap is
// cleared only when the array is whole again. A returning member whose own events are older
// than the start (a stale copy from before an earlier failure) gets a full rebuild instead.

import type { Geometry } from '../geometry/geometry.js';
import {
  WRITE_INTENT_BIT_COUNT, WRITE_INTENT_HEADER_BYTES, decodeWriteIntentHeader, encodeWriteIntentHeader,
} from '../format/write-intent.js';
import { BLOCK_SIZE_BYTES, assert } from '../units.js';
import { DeviceIoError } from '../device/block-device.js';
import type { MemberDisk } from './member-disk.js';

export interface WriteIntentHost {
  readonly geometry: Geometry;
  readonly arrayUuid: Buffer;
  readonly chunkBytes: number;
  readonly events: number;
  /** Members the bitmap is kept on: in the array, not faulty. */
  bitmapDisks(): MemberDisk[];
  /** A member failed to take the bitmap: fail it. */
  diskFailed(disk: MemberDisk, error: Error): Promise<void>;
}

export class WriteIntent {
  private readonly host: WriteIntentHost;
  private readonly bits = new Uint8Array(WRITE_INTENT_BIT_COUNT / 8);
  startEvents = 0;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(host: WriteIntentHost) {
    this.host = host;
    assert(host.geometry.dataSizeBytes / host.chunkBytes <= WRITE_INTENT_BIT_COUNT, 'write-intent bitmap covers the member');
  }

  /** Reads the bitmap from the first in-sync member whose header belongs to this array. */
  async load(from: MemberDisk[]): Promise<void> {
    for (const disk of from) {
      const header = Buffer.alloc(WRITE_INTENT_HEADER_BYTES);
      try {
        await disk.readRegion('write-intent', 0, header);
      } catch {
        continue;
      }
      const decoded = decodeWriteIntentHeader(header);
      if (!decoded.ok || !decoded.value.arrayUuid.equals(this.host.arrayUuid) || decoded.value.chunkBytes !== this.host.chunkBytes) continue;
      this.startEvents = decoded.value.startEvents;
      if (this.startEvents > 0) await disk.readRegion('write-intent', WRITE_INTENT_HEADER_BYTES, this.bits);
      return;
    }
  }

  get tracking(): boolean {
    return this.startEvents > 0;
  }

  private bitRange(stripe: number): [number, number] {
    const chunkSizeBytes = this.host.geometry.chunkSizeBytes;
    const first = Math.floor((stripe * chunkSizeBytes) / this.host.chunkBytes);
    const last = Math.floor(((stripe + 1) * chunkSizeBytes - 1) / this.host.chunkBytes);
    return [first, last];
  }

  isStripeMarked(stripe: number): boolean {
    const [first, last] = this.bitRange(stripe);
    for (let bit = first; bit <= last; bit++) if (this.bits[bit >> 3]! & (1 << (bit & 7))) return true;
    return false;
  }

  markedBitCount(): number {
    let count = 0;
    for (const byte of this.bits) for (let b = byte; b; b &= b - 1) count++;
    return count;
  }

  /** Begins tracking at `events` (the commit that marked a member faulty), unless already tracking. */
  startTracking(events: number): Promise<void> {
    // Checked before queueing: a member failing inside a bitmap write calls back here.
    if (this.tracking) return Promise.resolve();
    return this.enqueue(async () => {
      if (this.tracking) return [];
      this.startEvents = events;
      return this.persistHeader();
    });
  }

  /**
   * Runs `op` (bitmap writes) after the ones queued before it. A member that fails a bitmap
   * write is failed once the op has left the queue: failing it may start tracking, which queues
   * behind the op, so doing it inside would wait for itself. Resolves after those failures are
   * durable, so a mark counts only members the array still trusts.
   */
  private async enqueue(op: () => Promise<FailedDisk[]>): Promise<void> {
    const run = this.queue.then(op);
    this.queue = run.catch(() => {});
    const failed = await run;
    for (const { disk, error } of failed) await this.host.diskFailed(disk, error);
  }

  private persistHeader(): Promise<FailedDisk[]> {
    const header = encodeWriteIntentHeader({ arrayUuid: this.host.arrayUuid, startEvents: this.startEvents, chunkBytes: this.host.chunkBytes });
    return this.onEachDisk(async (disk) => {
      await disk.writeRegion('write-intent', 0, header);
      await disk.flush();
    });
  }

  /** Runs `write` on every bitmap member; returns the members that failed (the rest carry on). */
  private async onEachDisk(write: (disk: MemberDisk) => Promise<void>): Promise<FailedDisk[]> {
    const failed: FailedDisk[] = [];
    await Promise.all(this.host.bitmapDisks().map(async (disk) => {
      try {
        await write(disk);
      } catch (error) {
        if (!(error instanceof DeviceIoError)) throw error;
        failed.push({ disk, error });
      }
    }));
    return failed;
  }

  /** Resolves once every bitmap write queued so far is done. */
  async idle(): Promise<void> {
    let seen: Promise<unknown> | undefined;
    while (seen !== this.queue) {
      seen = this.queue;
      await seen;
    }
  }

  /** Marks the stripe and makes the mark durable on every bitmap member before returning. */
  markStripe(stripe: number): Promise<void> {
    return this.markStripes([stripe]);
  }

  /** Marks the stripes and makes the marks durable on every bitmap member before returning. */
  markStripes(stripes: readonly number[]): Promise<void> {
    return this.enqueue(async () => {
      const unmarked = stripes.filter((stripe) => !this.isFullyMarked(stripe));
      if (unmarked.length === 0) return [];
      const firstTracking = !this.tracking;
      if (firstTracking) this.startEvents = this.host.events;
      let firstBit = Infinity;
      let lastBit = -1;
      for (const stripe of unmarked) {
        const [first, last] = this.bitRange(stripe);
        for (let bit = first; bit <= last; bit++) this.bits[bit >> 3]! |= 1 << (bit & 7);
        firstBit = Math.min(firstBit, first);
        lastBit = Math.max(lastBit, last);
      }
      const firstBlock = Math.floor((firstBit >> 3) / BLOCK_SIZE_BYTES);
      const lastBlock = Math.floor((lastBit >> 3) / BLOCK_SIZE_BYTES);
      return this.persist(firstTracking, firstBlock, lastBlock);
    });
  }

  private isFullyMarked(stripe: number): boolean {
    const [first, last] = this.bitRange(stripe);
    for (let bit = first; bit <= last; bit++) if (!(this.bits[bit >> 3]! & (1 << (bit & 7)))) return false;
    return true;
  }

  /** Forgets every mark: the array is whole again. */
  clear(): Promise<void> {
    return this.enqueue(async () => {
      this.bits.fill(0);
      this.startEvents = 0;
      return this.persist(true, 0, this.bits.length / BLOCK_SIZE_BYTES - 1);
    });
  }

  /** Writes the whole bitmap and its header to every bitmap member (one that joins gets it all). */
  persistAll(): Promise<void> {
    return this.enqueue(() => this.persist(true, 0, this.bits.length / BLOCK_SIZE_BYTES - 1));
  }

  private persist(withHeader: boolean, firstBlock: number, lastBlock: number): Promise<FailedDisk[]> {
    const blocks = Buffer.from(this.bits.buffer, this.bits.byteOffset + firstBlock * BLOCK_SIZE_BYTES, (lastBlock - firstBlock + 1) * BLOCK_SIZE_BYTES);
    const header = encodeWriteIntentHeader({ arrayUuid: this.host.arrayUuid, startEvents: this.startEvents, chunkBytes: this.host.chunkBytes });
    return this.onEachDisk(async (disk) => {
      await disk.writeRegion('write-intent', WRITE_INTENT_HEADER_BYTES + firstBlock * BLOCK_SIZE_BYTES, blocks);
      if (withHeader) await disk.writeRegion('write-intent', 0, header);
      await disk.flush();
    });
  }
}

interface FailedDisk {
  disk: MemberDisk;
  error: Error;
}
