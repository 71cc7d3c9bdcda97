// Bad-block list codec: array block ranges whose contents cannot be trusted (a torn write, or a
// lost member's block in a stripe that was dirty at a crash). Reads of them fail with EIO until
// they are rewritten. Kept on every in-sync member; the highest valid sequence wins. Pure.

import { crc32c } from './crc32c.js';
import type { DecodeResult } from './superblock.js';
import { UUID_SIZE_BYTES } from './uuid.js';

export const BAD_BLOCKS_MAGIC = Buffer.from('JRAIDBB1', 'ascii');
export const BAD_BLOCKS_HEADER_BYTES = 64;
export const BAD_BLOCK_ENTRY_BYTES = 16;

export type BadBlockReason = 'torn' | 'lost';

export interface BadBlockRange {
  /** In 4 KiB array blocks. */
  firstBlock: number;
  blockCount: number;
  reason: BadBlockReason;
}

export interface BadBlockList {
  arrayUuid: Buffer;
  sequence: number;
  ranges: BadBlockRange[];
}

const AT = { magic: 0, arrayUuid: 8, sequence: 24, count: 32, crc: 60 } as const;
const REASON_ID: Record<BadBlockReason, number> = { torn: 1, lost: 2 };

export function badBlockCapacity(regionBytes: number): number {
  return Math.floor((regionBytes - BAD_BLOCKS_HEADER_BYTES) / BAD_BLOCK_ENTRY_BYTES);
}

export function encodeBadBlocks(list: BadBlockList): Buffer {
  const bytes = Buffer.alloc(BAD_BLOCKS_HEADER_BYTES + list.ranges.length * BAD_BLOCK_ENTRY_BYTES);
  BAD_BLOCKS_MAGIC.copy(bytes, AT.magic);
  list.arrayUuid.copy(bytes, AT.arrayUuid);
  bytes.writeBigUInt64LE(BigInt(list.sequence), AT.sequence);
  bytes.writeUInt32LE(list.ranges.length, AT.count);
  list.ranges.forEach((range, i) => {
    const at = BAD_BLOCKS_HEADER_BYTES + i * BAD_BLOCK_ENTRY_BYTES;
    bytes.writeBigUInt64LE(BigInt(range.firstBlock), at);
    bytes.writeUInt32LE(range.blockCount, at + 8);
    bytes.writeUInt8(REASON_ID[range.reason], at + 12);
  });
  bytes.writeUInt32LE(crc32c(bytes), AT.crc);
  return bytes;
}

export function decodeBadBlocks(bytes: Buffer): DecodeResult<BadBlockList> {
  if (bytes.length < BAD_BLOCKS_HEADER_BYTES || !bytes.subarray(0, 8).equals(BAD_BLOCKS_MAGIC)) return { ok: false, reason: 'no bad-block list here' };
  const count = bytes.readUInt32LE(AT.count);
  const size = BAD_BLOCKS_HEADER_BYTES + count * BAD_BLOCK_ENTRY_BYTES;
  if (bytes.length < size) return { ok: false, reason: 'bad-block list overruns its region' };
  const body = Buffer.from(bytes.subarray(0, size));
  const stored = body.readUInt32LE(AT.crc);
  body.writeUInt32LE(0, AT.crc);
  if (crc32c(body) !== stored) return { ok: false, reason: 'bad-block list checksum mismatch' };
  const ranges: BadBlockRange[] = [];
  for (let i = 0; i < count; i++) {
    const at = BAD_BLOCKS_HEADER_BYTES + i * BAD_BLOCK_ENTRY_BYTES;
    const reasonId = body.readUInt8(at + 12);
    const reason = reasonId === 1 ? 'torn' : reasonId === 2 ? 'lost' : undefined;
    if (!reason) return { ok: false, reason: `unknown bad-block reason ${reasonId}` };
    ranges.push({ firstBlock: Number(body.readBigUInt64LE(at)), blockCount: body.readUInt32LE(at + 8), reason });
  }
  return { ok: true, value: { arrayUuid: Buffer.from(body.subarray(AT.arrayUuid, AT.arrayUuid + UUID_SIZE_BYTES)), sequence: Number(body.readBigUInt64LE(AT.sequence)), ranges } };
}
