// Bad-block list codec: array block ranges whose contents cannot be trusted (a torn write, or a
// lost member's block in a stripe that was dirty at a crash). Reads of them fail with EIO until
// they are rewritten. Kept on every in-sync member; the highest valid sequence wins. Pure;
// docs/FORMAT.md, "Bad-block region", has the byte map.

import { BLOCK_SIZE_BYTES, assert } from '../units.js';
import {
  SAFE_LIMIT, asBuffer, checksumProblem, corrupt, crcWithFieldZeroed, declareFields, hasMagic, idOfName, nameOfId,
  readBytes, readUint, truncatedProblem, writeBytes, writeUint, type DecodeResult,
} from './codec.js';
import { UUID_SIZE_BYTES } from './uuid.js';

export const BAD_BLOCKS_MAGIC = Buffer.from('JRAIDBB1', 'ascii');
export const BAD_BLOCKS_HEADER_BYTES = 64;
export const BAD_BLOCK_ENTRY_BYTES = 16;

export type BadBlockReason = 'torn' | 'lost';
const BAD_BLOCK_REASONS: readonly { id: number; name: BadBlockReason }[] = [
  { id: 1, name: 'torn' },
  { id: 2, name: 'lost' },
];

export interface BadBlockRange {
  /** In 4 KiB array blocks. */
  firstBlock: number;
  blockCount: number;
  reason: BadBlockReason;
}

export interface BadBlockList {
  arrayUuid: Buffer;
  sequence: number;
  /** In increasing block order, none empty, none overlapping another. */
  ranges: BadBlockRange[];
}

export const BAD_BLOCKS_HEADER_FIELDS = declareFields('bad-block list header', BAD_BLOCKS_HEADER_BYTES, {
  magic: [0, 8, 'bytes'], arrayUuid: [8, UUID_SIZE_BYTES, 'bytes'], sequence: [24, 8, 'u64'], rangeCount: [32, 4, 'u32'],
  reserved36: [36, 24, 'reserved'], crc: [60, 4, 'u32'],
});
export const BAD_BLOCK_RANGE_FIELDS = declareFields('bad-block range', BAD_BLOCK_ENTRY_BYTES, {
  firstBlock: [0, 8, 'u64'], blockCount: [8, 4, 'u32'], reason: [12, 1, 'u8'], reserved13: [13, 3, 'reserved'],
});
const H = BAD_BLOCKS_HEADER_FIELDS.field;
const R = BAD_BLOCK_RANGE_FIELDS.field;
/** Array byte offsets are below 2^53, so no range reaches past this block. */
const ARRAY_BLOCKS_MAX = SAFE_LIMIT / BLOCK_SIZE_BYTES;

export function badBlockCapacity(regionBytes: number): number {
  return Math.floor((regionBytes - BAD_BLOCKS_HEADER_BYTES) / BAD_BLOCK_ENTRY_BYTES);
}

const rangeAt = (index: number) => BAD_BLOCKS_HEADER_BYTES + index * BAD_BLOCK_ENTRY_BYTES;

export function encodeBadBlocks(list: BadBlockList): Buffer {
  assert(list.arrayUuid.length === UUID_SIZE_BYTES, 'array uuid size');
  const size = rangeAt(list.ranges.length);
  const bytes = Buffer.alloc(size);
  writeBytes(bytes, H.magic, BAD_BLOCKS_MAGIC);
  writeBytes(bytes, H.arrayUuid, list.arrayUuid);
  writeUint(bytes, H.sequence, list.sequence);
  writeUint(bytes, H.rangeCount, list.ranges.length);
  let endBlock = 0;
  list.ranges.forEach((range, index) => {
    assert(range.blockCount > 0 && range.firstBlock >= endBlock, 'bad-block ranges are ascending, disjoint and not empty');
    endBlock = range.firstBlock + range.blockCount;
    assert(endBlock <= ARRAY_BLOCKS_MAX, 'bad-block range inside 2^53 bytes');
    const at = rangeAt(index);
    writeUint(bytes, R.firstBlock, range.firstBlock, at);
    writeUint(bytes, R.blockCount, range.blockCount, at);
    writeUint(bytes, R.reason, idOfName(BAD_BLOCK_REASONS, range.reason), at);
  });
  writeUint(bytes, H.crc, crcWithFieldZeroed(bytes, H.crc, size));
  return bytes;
}

/** Decodes the list at the start of `bytes` (the whole region); bytes past the list are ignored. */
export function decodeBadBlocks(bytes: Uint8Array): DecodeResult<BadBlockList> {
  const buf = asBuffer(bytes);
  if (!hasMagic(buf, H.magic, BAD_BLOCKS_MAGIC)) return corrupt('bad magic: no bad-block list here');
  if (buf.length < BAD_BLOCKS_HEADER_BYTES) return corrupt(truncatedProblem(buf.length, 'a bad-block list header', BAD_BLOCKS_HEADER_BYTES));
  const count = readUint(buf, H.rangeCount);
  const size = rangeAt(count);
  if (buf.length < size) return corrupt(truncatedProblem(buf.length, `a list of ${count} ranges`, size));
  const crcProblem = checksumProblem(buf, H.crc, crcWithFieldZeroed(buf, H.crc, size));
  if (crcProblem) return corrupt(crcProblem);
  const sequence = readUint(buf, H.sequence);
  if (!Number.isSafeInteger(sequence)) return corrupt('sequence exceeds 2^53');
  const ranges: BadBlockRange[] = [];
  let endBlock = 0;
  for (let index = 0; index < count; index++) {
    const at = rangeAt(index);
    const reasonId = readUint(buf, R.reason, at);
    const reason = nameOfId(BAD_BLOCK_REASONS, reasonId);
    if (!reason) return corrupt(`range ${index} has unknown reason ${reasonId}`);
    const firstBlock = readUint(buf, R.firstBlock, at);
    const blockCount = readUint(buf, R.blockCount, at);
    if (blockCount === 0) return corrupt(`range ${index} is empty`);
    if (!(firstBlock + blockCount <= ARRAY_BLOCKS_MAX)) return corrupt(`range ${index} ends past 2^53 bytes of array`);
    if (firstBlock < endBlock) return corrupt(`range ${index} starts at block ${firstBlock}, before range ${index - 1} ends (${endBlock})`);
    endBlock = firstBlock + blockCount;
    ranges.push({ firstBlock, blockCount, reason });
  }
  return { ok: true, value: { arrayUuid: readBytes(buf, H.arrayUuid), sequence, ranges } };
}
