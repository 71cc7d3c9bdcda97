// Write-intent region codec: a 4 KiB header, then one bit per `chunkBytes` of member data.
// A set bit means "written while a member was missing": a member that returns (re-add) needs
// only those regions rebuilt. Pure encode/decode; docs/FORMAT.md has the byte map.

import { crc32c } from './crc32c.js';
import { WRITE_INTENT_REGION_BYTES } from './layout.js';
import type { DecodeResult } from './superblock.js';
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

const AT = { magic: 0, arrayUuid: 8, startEvents: 24, chunkBytes: 32, crc: 4092 } as const;

export function encodeWriteIntentHeader(header: WriteIntentHeader): Buffer {
  const bytes = Buffer.alloc(WRITE_INTENT_HEADER_BYTES);
  WRITE_INTENT_MAGIC.copy(bytes, AT.magic);
  header.arrayUuid.copy(bytes, AT.arrayUuid);
  bytes.writeBigUInt64LE(BigInt(header.startEvents), AT.startEvents);
  bytes.writeBigUInt64LE(BigInt(header.chunkBytes), AT.chunkBytes);
  bytes.writeUInt32LE(crc32c(bytes.subarray(0, AT.crc)), AT.crc);
  return bytes;
}

export function decodeWriteIntentHeader(bytes: Buffer): DecodeResult<WriteIntentHeader> {
  if (bytes.length < WRITE_INTENT_HEADER_BYTES) return { ok: false, reason: 'truncated write-intent header' };
  if (!bytes.subarray(0, WRITE_INTENT_MAGIC.length).equals(WRITE_INTENT_MAGIC)) return { ok: false, reason: 'no write-intent header' };
  if (bytes.readUInt32LE(AT.crc) !== crc32c(bytes.subarray(0, AT.crc))) return { ok: false, reason: 'write-intent header checksum mismatch' };
  return {
    ok: true,
    value: {
      arrayUuid: Buffer.from(bytes.subarray(AT.arrayUuid, AT.arrayUuid + UUID_SIZE_BYTES)),
      startEvents: Number(bytes.readBigUInt64LE(AT.startEvents)),
      chunkBytes: Number(bytes.readBigUInt64LE(AT.chunkBytes)),
    },
  };
}
