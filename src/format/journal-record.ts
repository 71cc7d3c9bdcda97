// Journal record codec (dirty-log policy, seeds 000/001): a generation number, a clean flag,
// and the stripes that may hold a parity inconsistency. Each stripe entry may carry block
// checks (seed 003): CRCs of the new contents of the data blocks being written, and of their
// old contents (or, when the old contents were never read, of the new first sector), so that
// recovery can tell a block's new, old and torn states apart. Pure; docs/FORMAT.md has the map.

import { assert } from '../units.js';
import {
  asBuffer, checksumProblem, corrupt, crcWithFieldZeroed, declareFields, hasMagic, idOfName, nameOfId,
  readBytes, readUint, truncatedProblem, writeBytes, writeUint, type DecodeResult,
} from './codec.js';
import { UUID_SIZE_BYTES } from './uuid.js';

export const JOURNAL_RECORD_MAGIC = Buffer.from('JRAIDJR1', 'ascii');
export const RECORD_HEADER_BYTES = 64;
export const STRIPE_ENTRY_BYTES = 16;
export const BLOCK_CHECK_BYTES = 16;
export const RECORD_FLAG_CLEAN = 1 << 0;

export type BlockCheckKind = 'old' | 'first-sector';
const BLOCK_CHECK_KINDS: readonly { id: number; name: BlockCheckKind }[] = [
  { id: 1, name: 'old' },
  { id: 2, name: 'first-sector' },
];

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

// The byte maps (docs/FORMAT.md, "Record"): a header, then each stripe entry followed by its checks.
export const JOURNAL_RECORD_HEADER_FIELDS = declareFields('journal record header', RECORD_HEADER_BYTES, {
  magic: [0, 8, 'bytes'], arrayUuid: [8, UUID_SIZE_BYTES, 'bytes'], generation: [24, 8, 'u64'], flags: [32, 4, 'u32'],
  entryCount: [36, 4, 'u32'], payloadBytes: [40, 4, 'u32'], reserved44: [44, 16, 'reserved'], crc: [60, 4, 'u32'],
});
export const STRIPE_ENTRY_FIELDS = declareFields('journal stripe entry', STRIPE_ENTRY_BYTES, {
  volumeId: [0, 4, 'u32'], stripeNumber: [4, 8, 'u64'], blockCheckCount: [12, 2, 'u16'], reserved14: [14, 2, 'reserved'],
});
export const BLOCK_CHECK_FIELDS = declareFields('journal block check', BLOCK_CHECK_BYTES, {
  blockIndex: [0, 4, 'u32'], kind: [4, 1, 'u8'], reserved5: [5, 3, 'reserved'], newCrc: [8, 4, 'u32'], checkCrc: [12, 4, 'u32'],
});
const H = JOURNAL_RECORD_HEADER_FIELDS.field;
const E = STRIPE_ENTRY_FIELDS.field;
const C = BLOCK_CHECK_FIELDS.field;
/** A stripe entry's check count is a u16. */
const BLOCK_CHECKS_PER_ENTRY_MAX = 0xffff;

export function recordSizeBytes(entries: readonly { checks: readonly unknown[] }[]): number {
  let bytes = RECORD_HEADER_BYTES;
  for (const entry of entries) bytes += STRIPE_ENTRY_BYTES + entry.checks.length * BLOCK_CHECK_BYTES;
  return bytes;
}

export function encodeJournalRecord(record: JournalRecord): Buffer {
  assert(record.arrayUuid.length === UUID_SIZE_BYTES, 'array uuid size');
  const size = recordSizeBytes(record.entries);
  const bytes = Buffer.alloc(size);
  writeBytes(bytes, H.magic, JOURNAL_RECORD_MAGIC);
  writeBytes(bytes, H.arrayUuid, record.arrayUuid);
  writeUint(bytes, H.generation, record.generation);
  writeUint(bytes, H.flags, record.clean ? RECORD_FLAG_CLEAN : 0);
  writeUint(bytes, H.entryCount, record.entries.length);
  writeUint(bytes, H.payloadBytes, size - RECORD_HEADER_BYTES);
  let at = RECORD_HEADER_BYTES;
  for (const entry of record.entries) {
    if (entry.checks.length > BLOCK_CHECKS_PER_ENTRY_MAX) assert(false, `stripe ${entry.stripe} has ${entry.checks.length} block checks`);
    writeUint(bytes, E.volumeId, entry.volumeId, at);
    writeUint(bytes, E.stripeNumber, entry.stripe, at);
    writeUint(bytes, E.blockCheckCount, entry.checks.length, at);
    at += STRIPE_ENTRY_BYTES;
    for (const check of entry.checks) {
      writeUint(bytes, C.blockIndex, check.blockIndex, at);
      writeUint(bytes, C.kind, idOfName(BLOCK_CHECK_KINDS, check.kind), at);
      writeUint(bytes, C.newCrc, check.newCrc >>> 0, at);
      writeUint(bytes, C.checkCrc, check.checkCrc >>> 0, at);
      at += BLOCK_CHECK_BYTES;
    }
  }
  writeUint(bytes, H.crc, crcWithFieldZeroed(bytes, H.crc, size));
  return bytes;
}

/** The record's total size from its header, to know how much to read; undefined when no record starts here. */
export function peekRecordSizeBytes(header: Uint8Array): number | undefined {
  const buf = asBuffer(header);
  if (buf.length < RECORD_HEADER_BYTES || !hasMagic(buf, H.magic, JOURNAL_RECORD_MAGIC)) return undefined;
  return RECORD_HEADER_BYTES + readUint(buf, H.payloadBytes);
}

/** Decodes the record at the start of `bytes`; bytes past its end (slot padding) are ignored. */
export function decodeJournalRecord(bytes: Uint8Array): DecodeResult<JournalRecord> {
  const buf = asBuffer(bytes);
  if (!hasMagic(buf, H.magic, JOURNAL_RECORD_MAGIC)) return corrupt('bad magic: no journal record here');
  if (buf.length < RECORD_HEADER_BYTES) return corrupt(truncatedProblem(buf.length, 'a record header', RECORD_HEADER_BYTES));
  const size = RECORD_HEADER_BYTES + readUint(buf, H.payloadBytes);
  if (buf.length < size) return corrupt(truncatedProblem(buf.length, 'this record', size));
  const crcProblem = checksumProblem(buf, H.crc, crcWithFieldZeroed(buf, H.crc, size));
  if (crcProblem) return corrupt(crcProblem);
  const generation = readUint(buf, H.generation);
  if (!Number.isSafeInteger(generation)) return corrupt('generation exceeds 2^53');
  const flags = readUint(buf, H.flags);
  if (flags & ~RECORD_FLAG_CLEAN) return corrupt(`unknown record flags 0x${flags.toString(16)}`);
  const entryCount = readUint(buf, H.entryCount);
  const entries: StripeEntry[] = [];
  let at = RECORD_HEADER_BYTES;
  // Each entry takes at least STRIPE_ENTRY_BYTES, so the payload bounds the loop, not the count.
  for (let index = 0; index < entryCount; index++) {
    if (at + STRIPE_ENTRY_BYTES > size) return corrupt(`entry ${index} of ${entryCount} overruns the ${size}-byte record`);
    const stripe = readUint(buf, E.stripeNumber, at);
    if (!Number.isSafeInteger(stripe)) return corrupt(`entry ${index} stripe number exceeds 2^53`);
    const checkCount = readUint(buf, E.blockCheckCount, at);
    const entry: StripeEntry = { volumeId: readUint(buf, E.volumeId, at), stripe, checks: [] };
    at += STRIPE_ENTRY_BYTES;
    if (at + checkCount * BLOCK_CHECK_BYTES > size) return corrupt(`entry ${index}'s ${checkCount} block checks overrun the ${size}-byte record`);
    for (let c = 0; c < checkCount; c++) {
      const kindId = readUint(buf, C.kind, at);
      const kind = nameOfId(BLOCK_CHECK_KINDS, kindId);
      if (!kind) return corrupt(`entry ${index} block check ${c} has unknown kind ${kindId}`);
      entry.checks.push({ blockIndex: readUint(buf, C.blockIndex, at), kind, newCrc: readUint(buf, C.newCrc, at), checkCrc: readUint(buf, C.checkCrc, at) });
      at += BLOCK_CHECK_BYTES;
    }
    entries.push(entry);
  }
  if (at !== size) return corrupt(`the entries fill ${at - RECORD_HEADER_BYTES} of the ${size - RECORD_HEADER_BYTES} payload bytes`);
  return { ok: true, value: { arrayUuid: readBytes(buf, H.arrayUuid), generation, clean: (flags & RECORD_FLAG_CLEAN) !== 0, entries } };
}
