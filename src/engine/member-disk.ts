// One member as the engine sees it: a BlockDevice plus its region table. Every member read
// and write goes through io(), the single checkpoint that asserts the transfer is aligned and
// lies inside one of the member's regions: nothing is ever written outside them.

import type { BlockDevice } from '../device/block-device.js';
import { findRegion, type Region } from '../format/layout.js';
import type { RegionKind } from '../format/types.js';
import type { Superblock } from '../format/superblock.js';
import { BLOCK_SIZE_BYTES, assert } from '../units.js';

export class MemberDisk {
  readonly device: BlockDevice;
  sb: Superblock;
  readonly regions: Region[];
  readonly dataOffsetBytes: number;
  /** Set when the superblock was read from the secondary copy because the primary was bad. */
  primaryProblem: string | undefined;
  /**
   * Stripes (chunk indexes of the data area) written since this member's last completed flush,
   * with the sequence of the newest such write: should the member fail, those writes may never
   * have reached its medium, and it must get those stripes back when it returns.
   */
  private readonly unflushed = new Map<number, number>();
  private dataWrites = 0;

  constructor(device: BlockDevice, sb: Superblock) {
    this.device = device;
    this.sb = sb;
    this.regions = sb.regions;
    const data = findRegion(sb.regions, 'data');
    assert(data, 'data region present (decoder checked)');
    this.dataOffsetBytes = data.offsetBytes;
  }

  get path(): string {
    return this.device.path;
  }

  get uuid(): Buffer {
    return this.sb.memberUuid;
  }

  region(kind: RegionKind): Region {
    const region = findRegion(this.regions, kind);
    assert(region, `member ${this.path} has a ${kind} region`);
    return region;
  }

  private async io(op: 'read' | 'write', kind: RegionKind, offsetInRegionBytes: number, buf: Uint8Array): Promise<void> {
    const region = this.region(kind);
    assert(offsetInRegionBytes % BLOCK_SIZE_BYTES === 0 && buf.length % BLOCK_SIZE_BYTES === 0, `${op} of ${kind} aligned to ${BLOCK_SIZE_BYTES}`);
    assert(buf.length > 0 && offsetInRegionBytes >= 0 && offsetInRegionBytes + buf.length <= region.sizeBytes,
      `${op} of ${buf.length} bytes at ${offsetInRegionBytes} inside ${kind} region (${region.sizeBytes} bytes) of ${this.path}`);
    const memberOffsetBytes = region.offsetBytes + offsetInRegionBytes;
    if (op === 'read') await this.device.read(buf, memberOffsetBytes);
    else await this.device.write(buf, memberOffsetBytes);
  }

  readData(memberDataOffsetBytes: number, buf: Uint8Array): Promise<void> {
    return this.io('read', 'data', memberDataOffsetBytes, buf);
  }

  async writeData(memberDataOffsetBytes: number, buf: Uint8Array): Promise<void> {
    await this.io('write', 'data', memberDataOffsetBytes, buf);
    const chunk = this.sb.chunkSizeBytes;
    const seq = ++this.dataWrites;
    for (let stripe = Math.floor(memberDataOffsetBytes / chunk); stripe * chunk < memberDataOffsetBytes + buf.length; stripe++) this.unflushed.set(stripe, seq);
  }

  /** Stripes whose data written here is not yet known durable (no flush completed since). */
  unflushedStripes(): number[] {
    return [...this.unflushed.keys()].sort((a, b) => a - b);
  }

  readRegion(kind: RegionKind, offsetInRegionBytes: number, buf: Uint8Array): Promise<void> {
    return this.io('read', kind, offsetInRegionBytes, buf);
  }

  writeRegion(kind: RegionKind, offsetInRegionBytes: number, buf: Uint8Array): Promise<void> {
    return this.io('write', kind, offsetInRegionBytes, buf);
  }

  async flush(): Promise<void> {
    const coveredSeq = this.dataWrites; // a flush covers the writes completed before it was issued
    await this.device.flush();
    for (const [stripe, seq] of this.unflushed) if (seq <= coveredSeq) this.unflushed.delete(stripe);
  }
}
