// Journal record codec (dirty-log policy, seeds 000/001): a generation number, a clean flag,
// and the stripes that may hold a parity inconsistency. Each stripe entry may carry block
// checks (seed 003): CRCs of the new contents of the data blocks being written, and of their
// old contents (or, when the old contents were never read, of the new first sector), so that
// recovery can tell a block's new, old and torn states apart. Pure; docs/FORMAT.md has the map.

import { crc32c } from './crc32c.js';
import type { DecodeResult } from './superblock.js';
import { UUID_SIZE_BYTES } from './uuid.js';

export const JOURNAL_RECORD_MAGIC = Buffer.from('JRAIDJR1', 'ascii');
export const RECORD_HEADER_BYTES = 64;
export const STRIPE_ENTRY_BYTES = 16;
export const BLOCK_CHECK_BYTES = 16;
export const RECORD_FLAG_CLEAN = 1 << 0;

export type BlockCheckKind = 'old' | 'first-sector';

export interface BlockCheck {
  /** Block within the stripe: dataIndex * blocksPerChunk + row. */
  blockIndex: number;
  newCrc: number;
  /** 'old': CRC of the block before the write. 'first-sector': CRC of the new first 512 bytes. */
  kind: BlockCheckKind;
  checkCrc: number;
}

export interface StripeEntry {
  volumeId: number;
  stripe: number;
  checks: BlockCheck[];
}

export interface JournalRecord {
  arrayUuid: Buffer;
  generation: number;
  clean: boolean;
  entries: StripeEntry[];
}

const AT = { magic: 0, arrayUuid: 8, generation: 24, flags: 32, entryCount: 36, payloadBytes: 40, crc: 60 } as const;
const KIND_ID: Record<BlockCheckKind, number> = { old: 1, 'first-sector': 2 };

export function recordSizeBytes(entries: readonly { checks: readonly unknown[] }[]): number {
  let bytes = RECORD_HEADER_BYTES;
  for (const entry of entries) bytes += STRIPE_ENTRY_BYTES + entry.checks.length * BLOCK_CHECK_BYTES;
  return bytes;
}

export function encodeJournalRecord(record: JournalRecord): Buffer {
  const size = recordSizeBytes(record.entries);
  const bytes = Buffer.alloc(size);
  JOURNAL_RECORD_MAGIC.copy(bytes, AT.magic);
  record.arrayUuid.copy(bytes, AT.arrayUuid);
  bytes.writeBigUInt64LE(BigInt(record.generation), AT.generation);
  bytes.writeUInt32LE(record.clean ? RECORD_FLAG_CLEAN : 0, AT.flags);
  bytes.writeUInt32LE(record.entries.length, AT.entryCount);
  bytes.writeUInt32LE(size - RECORD_HEADER_BYTES, AT.payloadBytes);
  let at = RECORD_HEADER_BYTES;
  for (const entry of record.entries) {
    bytes.writeUInt32LE(entry.volumeId, at);
    bytes.writeBigUInt64LE(BigInt(entry.stripe), at + 4);
    bytes.writeUInt16LE(entry.checks.length, at + 12);
    at += STRIPE_ENTRY_BYTES;
    for (const check of entry.checks) {
      bytes.writeUInt32LE(check.blockIndex, at);
      bytes.writeUInt8(KIND_ID[check.kind], at + 4);
      bytes.writeUInt32LE(check.newCrc >>> 0, at + 8);
      bytes.writeUInt32LE(check.checkCrc >>> 0, at + 12);
      at += BLOCK_CHECK_BYTES;
    }
  }
  bytes.writeUInt32LE(crc32c(bytes), AT.crc);
  return bytes;
}

/** The record's total size from its header, to know how much to read; undefined when no record starts here. */
export function peekRecordSizeBytes(header: Buffer): number | undefined {
  if (header.length < RECORD_HEADER_BYTES || !header.subarray(0, 8).equals(JOURNAL_RECORD_MAGIC)) return undefined;
  return RECORD_HEADER_BYTES + header.readUInt32LE(AT.payloadBytes);
}

export function decodeJournalRecord(bytes: Buffer): DecodeResult<JournalRecord> {
  const size = peekRecordSizeBytes(bytes);
  if (size === undefined) return { ok: false, reason: 'no journal record here' };
  if (bytes.length < size) return { ok: false, reason: `truncated record: ${bytes.length} of ${size} bytes` };
  const body = Buffer.from(bytes.subarray(0, size));
  const stored = body.readUInt32LE(AT.crc);
  body.writeUInt32LE(0, AT.crc);
  if (crc32c(body) !== stored) return { ok: false, reason: 'record checksum mismatch (torn or corrupt)' };
  const generation = body.readBigUInt64LE(AT.generation);
  if (generation > BigInt(Number.MAX_SAFE_INTEGER)) return { ok: false, reason: 'generation exceeds 2^53' };
  const flags = body.readUInt32LE(AT.flags);
  if (flags & ~RECORD_FLAG_CLEAN) return { ok: false, reason: `unknown record flags 0x${flags.toString(16)}` };
  const entryCount = body.readUInt32LE(AT.entryCount);
  const entries: StripeEntry[] = [];
  let at = RECORD_HEADER_BYTES;
  for (let i = 0; i < entryCount; i++) {
    if (at + STRIPE_ENTRY_BYTES > size) return { ok: false, reason: 'entries overrun the record' };
    const stripe = body.readBigUInt64LE(at + 4);
    if (stripe > BigInt(Number.MAX_SAFE_INTEGER)) return { ok: false, reason: 'stripe number exceeds 2^53' };
    const checkCount = body.readUInt16LE(at + 12);
    const entry: StripeEntry = { volumeId: body.readUInt32LE(at), stripe: Number(stripe), checks: [] };
    at += STRIPE_ENTRY_BYTES;
    if (at + checkCount * BLOCK_CHECK_BYTES > size) return { ok: false, reason: 'block checks overrun the record' };
    for (let c = 0; c < checkCount; c++) {
      const kindId = body.readUInt8(at + 4);
      const kind = kindId === 1 ? 'old' : kindId === 2 ? 'first-sector' : undefined;
      if (!kind) return { ok: false, reason: `unknown block check kind ${kindId}` };
      entry.checks.push({ blockIndex: body.readUInt32LE(at), kind, newCrc: body.readUInt32LE(at + 8), checkCrc: body.readUInt32LE(at + 12) });
      at += BLOCK_CHECK_BYTES;
    }
    entries.push(entry);
  }
  if (at !== size) return { ok: false, reason: 'record size does not match its entries' };
  return {
    ok: true,
    value: {
      arrayUuid: Buffer.from(body.subarray(AT.arrayUuid, AT.arrayUuid + UUID_SIZE_BYTES)),
      generation: Number(generation),
      clean: (flags & RECORD_FLAG_CLEAN) !== 0,
      entries,
    },
  };
}
