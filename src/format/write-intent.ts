// Write-intent region codec: a 4 KiB header, then one bit per `chunkBytes` of member data.
// A set bit means "written while a member was missing": a member that returns (re-add) needs
// only those regions rebuilt. Pure encode/decode of the header; the bitmap after it is raw
// bits (docs/FORMAT.md, "Write-intent region").

import { assert, isPowerOfTwo } from '../units.js';
import {
  asBuffer, checksumProblem, corrupt, crcBefore, declareFields, hasMagic, readBytes, readUint,
  truncatedProblem, writeBytes, writeUint, type DecodeResult,
} from './codec.js';
import { WRITE_INTENT_REGION_BYTES } from './layout.js';
import { MIN_CHUNK_SIZE_BYTES } from './types.js';
import { UUID_SIZE_BYTES } from './uuid.js';

export const WRITE_INTENT_MAGIC = Buffer.from('JRAIDWI1', 'ascii');
export const WRITE_INTENT_HEADER_BYTES = 4096;
export const WRITE_INTENT_BIT_COUNT = (WRITE_INTENT_REGION_BYTES - WRITE_INTENT_HEADER_BYTES) * 8;

export interface WriteIntentHeader {
  arrayUuid: Buffer;
  /** The array's event count when tracking began; 0 when nothing is tracked. */
  startEvents: number;
  chunkBytes: number;
}

export const WRITE_INTENT_HEADER_FIELDS = declareFields('write-intent header', WRITE_INTENT_HEADER_BYTES, {
  magic: [0, 8, 'bytes'], arrayUuid: [8, UUID_SIZE_BYTES, 'bytes'], startEvents: [24, 8, 'u64'], chunk: [32, 8, 'u64'],
  reserved40: [40, 4052, 'reserved'], crc: [4092, 4, 'u32'],
});
const H = WRITE_INTENT_HEADER_FIELDS.field;

/**
 * Why `chunkBytes` cannot be a write-intent chunk (member data bytes per bit), or undefined.
 * The superblock's copy of the chunk is held to the same rule.
 */
export function writeIntentChunkProblem(chunkBytes: number): string | undefined {
  if (isPowerOfTwo(chunkBytes) && chunkBytes >= MIN_CHUNK_SIZE_BYTES) return undefined;
  return `write-intent chunk ${chunkBytes} is not a power of two of at least 4 KiB`;
}

export function encodeWriteIntentHeader(header: WriteIntentHeader): Buffer {
  assert(header.arrayUuid.length === UUID_SIZE_BYTES, 'array uuid size');
  assert(writeIntentChunkProblem(header.chunkBytes) === undefined, `write-intent chunk ${header.chunkBytes}`);
  const bytes = Buffer.alloc(WRITE_INTENT_HEADER_BYTES);
  writeBytes(bytes, H.magic, WRITE_INTENT_MAGIC);
  writeBytes(bytes, H.arrayUuid, header.arrayUuid);
  writeUint(bytes, H.startEvents, header.startEvents);
  writeUint(bytes, H.chunk, header.chunkBytes);
  writeUint(bytes, H.crc, crcBefore(bytes, H.crc));
  return bytes;
}

export function decodeWriteIntentHeader(bytes: Uint8Array): DecodeResult<WriteIntentHeader> {
  const buf = asBuffer(bytes);
  if (!hasMagic(buf, H.magic, WRITE_INTENT_MAGIC)) return corrupt('bad magic: no write-intent header here');
  if (buf.length < WRITE_INTENT_HEADER_BYTES) return corrupt(truncatedProblem(buf.length, 'a write-intent header', WRITE_INTENT_HEADER_BYTES));
  const crcProblem = checksumProblem(buf, H.crc, crcBefore(buf, H.crc));
  if (crcProblem) return corrupt(crcProblem);
  const startEvents = readUint(buf, H.startEvents);
  if (!Number.isSafeInteger(startEvents)) return corrupt('start events exceed 2^53');
  const chunkBytes = readUint(buf, H.chunk);
  if (!Number.isSafeInteger(chunkBytes)) return corrupt('write-intent chunk exceeds 2^53');
  const chunkProblem = writeIntentChunkProblem(chunkBytes);
  if (chunkProblem) return corrupt(chunkProblem);
  return { ok: true, value: { arrayUuid: readBytes(buf, H.arrayUuid), startEvents, chunkBytes } };
}
