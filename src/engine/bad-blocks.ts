// The bad-block list in memory: array block ranges that must read as EIO until rewritten.
// Persisted to the bad-block region of every in-sync member (highest sequence wins on load).

import { DeviceIoError } from '../device/block-device.js';
import { badBlockCapacity, decodeBadBlocks, encodeBadBlocks, type BadBlockRange, type BadBlockReason } from '../format/bad-blocks.js';
import { JraidError } from '../errors.js';
import { BLOCK_SIZE_BYTES, alignUp } from '../units.js';
import type { MemberDisk } from './member-disk.js';

export class BadBlocks {
  ranges: BadBlockRange[] = [];
  sequence = 0;
  private readonly arrayUuid: Buffer;

  constructor(arrayUuid: Buffer) {
    this.arrayUuid = arrayUuid;
  }

  async load(disks: MemberDisk[]): Promise<void> {
    for (const disk of disks) {
      const region = disk.region('bad-blocks');
      const bytes = Buffer.alloc(region.sizeBytes);
      try {
        await disk.readRegion('bad-blocks', 0, bytes);
      } catch (error) {
        if (error instanceof DeviceIoError) continue;
        throw error;
      }
      const decoded = decodeBadBlocks(bytes);
      if (!decoded.ok || !decoded.value.arrayUuid.equals(this.arrayUuid)) continue;
      if (decoded.value.sequence > this.sequence || (this.sequence === 0 && this.ranges.length === 0)) {
        this.sequence = decoded.value.sequence;
        this.ranges = decoded.value.ranges;
      }
    }
  }

  get blockCount(): number {
    return this.ranges.reduce((sum, range) => sum + range.blockCount, 0);
  }

  /** The first bad range touching [offset, offset + length), if any. */
  find(arrayOffsetBytes: number, lengthBytes: number): BadBlockRange | undefined {
    if (this.ranges.length === 0 || lengthBytes === 0) return undefined;
    const first = Math.floor(arrayOffsetBytes / BLOCK_SIZE_BYTES);
    const end = Math.ceil((arrayOffsetBytes + lengthBytes) / BLOCK_SIZE_BYTES);
    return this.ranges.find((range) => range.firstBlock < end && first < range.firstBlock + range.blockCount);
  }

  /** Adds ranges (in array blocks); true when the list changed. */
  add(ranges: BadBlockRange[]): boolean {
    if (ranges.length === 0) return false;
    const blocks = new Map<number, BadBlockReason>();
    for (const range of [...this.ranges, ...ranges]) {
      for (let b = range.firstBlock; b < range.firstBlock + range.blockCount; b++) if (!blocks.has(b)) blocks.set(b, range.reason);
    }
    this.ranges = coalesce(blocks);
    return true;
  }

  /** Forgets blocks wholly inside [offset, offset + length): they were rewritten. True when changed. */
  clearCovered(arrayOffsetBytes: number, lengthBytes: number): boolean {
    const first = Math.ceil(arrayOffsetBytes / BLOCK_SIZE_BYTES);
    const end = Math.floor((arrayOffsetBytes + lengthBytes) / BLOCK_SIZE_BYTES);
    if (end <= first || !this.ranges.some((range) => range.firstBlock < end && first < range.firstBlock + range.blockCount)) return false;
    const blocks = new Map<number, BadBlockReason>();
    for (const range of this.ranges) {
      for (let b = range.firstBlock; b < range.firstBlock + range.blockCount; b++) if (b < first || b >= end) blocks.set(b, range.reason);
    }
    this.ranges = coalesce(blocks);
    return true;
  }

  /** Writes the list to `disks`; returns those whose write failed (the caller fails them). */
  async persist(disks: MemberDisk[]): Promise<{ disk: MemberDisk; error: DeviceIoError }[]> {
    this.sequence++;
    const bytes = encodeBadBlocks({ arrayUuid: this.arrayUuid, sequence: this.sequence, ranges: this.ranges });
    const regionBytes = disks[0]?.region('bad-blocks').sizeBytes ?? 0;
    if (this.ranges.length > badBlockCapacity(regionBytes)) {
      throw new JraidError('E_IO', `the bad-block list is full (${this.ranges.length} ranges)`, { hint: 'rewrite or restore the damaged ranges, then run jraid recover' });
    }
    const padded = Buffer.alloc(alignUp(bytes.length, BLOCK_SIZE_BYTES));
    bytes.copy(padded);
    const failed: { disk: MemberDisk; error: DeviceIoError }[] = [];
    await Promise.all(disks.map(async (disk) => {
      try {
        await disk.writeRegion('bad-blocks', 0, padded);
        await disk.flush();
      } catch (error) {
        if (!(error instanceof DeviceIoError)) throw error;
        failed.push({ disk, error });
      }
    }));
    return failed;
  }
}

function coalesce(blocks: Map<number, BadBlockReason>): BadBlockRange[] {
  const sorted = [...blocks].sort((a, b) => a[0] - b[0]);
  const out: BadBlockRange[] = [];
  for (const [block, reason] of sorted) {
    const last = out[out.length - 1];
    if (last && last.firstBlock + last.blockCount === block && last.reason === reason) last.blockCount++;
    else out.push({ firstBlock: block, blockCount: 1, reason });
  }
  return out;
}
