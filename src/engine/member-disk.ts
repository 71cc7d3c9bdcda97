// One member as the engine sees it, and the one door every member read and write passes.
// memberIo() is that checkpoint: it asserts the transfer is aligned, non-empty, and lies inside
// one declared zone of the member (a region of its table, or one of the few declared spans
// below), which itself lies inside the device. Nothing is ever written outside them. MemberDisk
// is a BlockDevice plus its region table, doing all its I/O through memberIo().

import type { BlockDevice } from '../device/block-device.js';
import { DATA_OFFSET_BYTES, SUPERBLOCK_SIZE_BYTES, buildMemberLayout, findRegion, type Region } from '../format/layout.js';
import type { RegionKind } from '../format/types.js';
import { encodeSuperblock, type Superblock } from '../format/superblock.js';
import { BLOCK_SIZE_BYTES, assert } from '../units.js';

/** A span of a member the door lets I/O into. */
export interface Zone {
  readonly name: string;
  readonly offsetBytes: number;
  readonly sizeBytes: number;
  /** A zone only ever read (probes for signatures, superblocks before the region table is known). */
  readonly readOnly?: boolean;
}

/** Both superblock copies, read together before a member's region table is known. */
export const SUPERBLOCKS_ZONE: Zone = { name: 'superblocks', offsetBytes: 0, sizeBytes: 2 * SUPERBLOCK_SIZE_BYTES, readOnly: true };

/** Everything between the superblock copies and the data area: cleared when a member is made. */
export const METADATA_ZONE: Zone = { name: 'metadata', offsetBytes: 2 * SUPERBLOCK_SIZE_BYTES, sizeBytes: DATA_OFFSET_BYTES - 2 * SUPERBLOCK_SIZE_BYTES };

// The two declared spans agree with the member layout: the superblock copies, then everything
// up to the data area.
{
  const layout = buildMemberLayout(DATA_OFFSET_BYTES + BLOCK_SIZE_BYTES);
  const primary = findRegion(layout, 'superblock-primary')!;
  const secondary = findRegion(layout, 'superblock-secondary')!;
  assert(primary.offsetBytes === SUPERBLOCKS_ZONE.offsetBytes && secondary.offsetBytes + secondary.sizeBytes === SUPERBLOCKS_ZONE.offsetBytes + SUPERBLOCKS_ZONE.sizeBytes,
    'the superblocks zone is the two superblock regions');
  assert(METADATA_ZONE.offsetBytes === SUPERBLOCKS_ZONE.offsetBytes + SUPERBLOCKS_ZONE.sizeBytes && METADATA_ZONE.offsetBytes + METADATA_ZONE.sizeBytes === findRegion(layout, 'data')!.offsetBytes,
    'the metadata zone runs from the superblocks to the data area');
}

/** The whole device, for reading only: foreign-signature probes of a would-be member. */
export function probeZone(device: BlockDevice): Zone {
  return { name: 'probe', offsetBytes: 0, sizeBytes: device.sizeBytes, readOnly: true };
}

function regionZone(regions: readonly Region[], kind: RegionKind, path: string): Zone {
  const region = findRegion(regions, kind);
  assert(region, `member ${path} has a ${kind} region`);
  return { name: kind, offsetBytes: region.offsetBytes, sizeBytes: region.sizeBytes };
}

/** Probes read whole devices: only the superblock and member zones are block-aligned. */
function alignmentOf(zone: Zone): number {
  return zone.name === 'probe' ? 1 : BLOCK_SIZE_BYTES;
}

/** What memberIo does: read, write, or a write durable on its own (BlockDevice.writeDurable). */
export type MemberOp = 'read' | 'write' | 'write-durable';

/** The single checkpoint: every member read and write passes here. */
export async function memberIo(device: BlockDevice, op: MemberOp, zone: Zone, offsetInZoneBytes: number, buf: Uint8Array): Promise<void> {
  const alignment = alignmentOf(zone);
  assert(op === 'read' || !zone.readOnly, `${op} of ${device.path} in ${zone.name}, a zone only ever read`);
  assert(Number.isSafeInteger(offsetInZoneBytes) && zone.offsetBytes % alignment === 0 && offsetInZoneBytes % alignment === 0 && buf.length % alignment === 0,
    `${op} of ${zone.name} of ${device.path} aligned to ${alignment}`);
  assert(buf.length > 0 && offsetInZoneBytes >= 0 && offsetInZoneBytes + buf.length <= zone.sizeBytes,
    `${op} of ${buf.length} bytes at ${offsetInZoneBytes} inside ${zone.name} (${zone.sizeBytes} bytes) of ${device.path}`);
  assert(zone.offsetBytes + zone.sizeBytes <= device.sizeBytes, `${zone.name} lies inside ${device.path} (${device.sizeBytes} bytes)`);
  const memberOffsetBytes = zone.offsetBytes + offsetInZoneBytes;
  if (op === 'read') await device.read(buf, memberOffsetBytes);
  else if (op === 'write') await device.write(buf, memberOffsetBytes);
  else await device.writeDurable(buf, memberOffsetBytes);
}

/** Writes both superblock copies of `sb` on `device`: primary, flush, secondary, flush. */
export async function writeSuperblockCopies(device: BlockDevice, sb: Superblock): Promise<void> {
  const bytes = encodeSuperblock(sb);
  await memberIo(device, 'write', regionZone(sb.regions, 'superblock-primary', device.path), 0, bytes);
  await device.flush();
  await memberIo(device, 'write', regionZone(sb.regions, 'superblock-secondary', device.path), 0, bytes);
  await device.flush();
}

/** Clears a new member's metadata (bitmap, bad-block list, journal, and the gaps between). */
export async function zeroMetadata(device: BlockDevice): Promise<void> {
  await memberIo(device, 'write', METADATA_ZONE, 0, Buffer.alloc(METADATA_ZONE.sizeBytes));
}

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

  private io(op: MemberOp, kind: RegionKind, offsetInRegionBytes: number, buf: Uint8Array): Promise<void> {
    return memberIo(this.device, op, regionZone(this.regions, kind, this.path), offsetInRegionBytes, buf);
  }

  readData(memberDataOffsetBytes: number, buf: Uint8Array): Promise<void> {
    return this.io('read', 'data', memberDataOffsetBytes, buf);
  }

  async writeData(memberDataOffsetBytes: number, buf: Uint8Array): Promise<void> {
    await this.io('write', 'data', memberDataOffsetBytes, buf);
    const chunkSizeBytes = this.sb.chunkSizeBytes;
    const seq = ++this.dataWrites;
    for (let stripe = Math.floor(memberDataOffsetBytes / chunkSizeBytes); stripe * chunkSizeBytes < memberDataOffsetBytes + buf.length; stripe++) this.unflushed.set(stripe, seq);
  }

  /** Stripes whose data written here is not yet known durable (no flush completed since). */
  unflushedStripes(): number[] {
    return [...this.unflushed.keys()].sort((a, b) => a - b);
  }

  readRegion(kind: RegionKind, offsetInRegionBytes: number, buf: Uint8Array): Promise<void> {
    return this.io('read', kind, offsetInRegionBytes, buf);
  }

  async writeRegion(kind: RegionKind, offsetInRegionBytes: number, buf: Uint8Array): Promise<void> {
    assert(kind !== 'superblock-primary' && kind !== 'superblock-secondary', `superblocks of ${this.path} are written whole, by writeSuperblock`);
    await this.io('write', kind, offsetInRegionBytes, buf);
  }

  /** Writes `buf` in a metadata region, durable on its own when it resolves (the journal's record barrier). */
  async writeRegionDurable(kind: RegionKind, offsetInRegionBytes: number, buf: Uint8Array): Promise<void> {
    assert(kind !== 'superblock-primary' && kind !== 'superblock-secondary' && kind !== 'data', `durable writes of ${this.path} go to metadata regions, not ${kind}`);
    await this.io('write-durable', kind, offsetInRegionBytes, buf);
  }

  /** Writes this member's own superblock (both copies) and keeps it as the member's. */
  async writeSuperblock(sb: Superblock): Promise<void> {
    assert(sb.memberUuid.equals(sb.members[sb.thisIndex]!.uuid), `superblock for ${this.path} names its own member entry`);
    await writeSuperblockCopies(this.device, sb);
    this.sb = sb;
  }

  async flush(): Promise<void> {
    const coveredSeq = this.dataWrites; // a flush covers the writes completed before it was issued
    await this.device.flush();
    for (const [stripe, seq] of this.unflushed) if (seq <= coveredSeq) this.unflushed.delete(stripe);
  }
}
