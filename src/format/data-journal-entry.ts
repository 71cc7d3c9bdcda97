// Data-journal entry codec (journal policy, seed 002 claim 5): one 4 KiB block in a member's
// data-journal entry ring, naming one step of one update (a write of some rows of one data
// chunk) as that member's I/O manager saw it, and where the step's block payload lies in the
// member's payload ring. Pure; docs/FORMAT.md, "Data-journal region", has the map.

import {
  asBuffer, checksumProblem, corrupt, crcBefore, declareFields, hasMagic, idOfName, nameOfId,
  readBytes, readUint, truncatedProblem, writeBytes, writeUint, type DecodeResult,
} from './codec.js';
import { UUID_SIZE_BYTES } from './uuid.js';
import { BLOCK_SIZE_BYTES, assert } from '../units.js';

export const DATA_JOURNAL_ENTRY_MAGIC = Buffer.from('JRAIDDJ1', 'ascii');
export const DATA_JOURNAL_ENTRY_BYTES = BLOCK_SIZE_BYTES;

/**
 * The steps of claim 5 a manager journals. Data side: `issued` (a5: new data written at its
 * new address, the payload), `completed` (a14: the write completed). Parity side: `received`
 * (b1/b4: the update request and its delta, old XOR new data, the payload), `completed` (b11:
 * the new parity written at its new address, the payload). `checkpoint`: no update; says every
 * update numbered below `appliedBelow` is applied in place and durable, and its space free.
 */
export type DataJournalStep = 'issued' | 'data-completed' | 'received' | 'parity-completed' | 'checkpoint';
export const DATA_JOURNAL_STEPS: readonly { id: number; name: DataJournalStep }[] = [
  { id: 1, name: 'issued' },
  { id: 2, name: 'data-completed' },
  { id: 3, name: 'received' },
  { id: 4, name: 'parity-completed' },
  { id: 5, name: 'checkpoint' },
];

/** Which manager of the update wrote the entry. */
export type DataJournalSide = 'data' | 'p' | 'q';
const SIDES: readonly { id: number; name: DataJournalSide }[] = [
  { id: 1, name: 'data' },
  { id: 2, name: 'p' },
  { id: 3, name: 'q' },
];

export interface DataJournalEntry {
  arrayUuid: Buffer;
  /** Every update numbered below this is applied in place and durable (monotonic). */
  appliedBelow: number;
  step: DataJournalStep;
  side: DataJournalSide;
  /** The update's number: one per update, increasing in the order updates begin. */
  seq: number;
  stripe: number;
  /** The data chunk written (index in the stripe's data order). */
  dataIndex: number;
  /** First row (4 KiB block of the chunk) written, and how many. */
  rowFirst: number;
  rowCount: number;
  /** Payload position: a block counter, taken modulo the payload ring's blocks. 0 with no payload. */
  payloadBlock: number;
  /** CRC32C of the payload's rowCount blocks; 0 with no payload. */
  payloadCrc: number;
  /**
   * The write session that wrote it (the superblock events when the session's journals
   * started): after a crash only the newest session's entries are live, so entries a member
   * kept from an earlier session (it was away meanwhile) never mix with them.
   */
  epoch: number;
}

export const DATA_JOURNAL_ENTRY_FIELDS = declareFields('data-journal entry', DATA_JOURNAL_ENTRY_BYTES, {
  magic: [0, 8, 'bytes'], arrayUuid: [8, UUID_SIZE_BYTES, 'bytes'], appliedBelow: [24, 8, 'u64'], step: [32, 1, 'u8'], side: [33, 1, 'u8'],
  dataIndex: [34, 2, 'u16'], rowFirst: [36, 4, 'u32'], rowCount: [40, 4, 'u32'], payloadCrc: [44, 4, 'u32'], seq: [48, 8, 'u64'],
  stripe: [56, 8, 'u64'], payloadBlock: [64, 8, 'u64'], epoch: [72, 8, 'u64'], reserved80: [80, 4012, 'reserved'], crc: [4092, 4, 'u32'],
});
const F = DATA_JOURNAL_ENTRY_FIELDS.field;

/** Steps that carry a payload of rowCount blocks. */
export function stepHasPayload(step: DataJournalStep): boolean {
  return step === 'issued' || step === 'received' || step === 'parity-completed';
}

export function encodeDataJournalEntry(entry: DataJournalEntry): Buffer {
  assert(entry.arrayUuid.length === UUID_SIZE_BYTES, 'array uuid size');
  const bytes = Buffer.alloc(DATA_JOURNAL_ENTRY_BYTES);
  writeBytes(bytes, F.magic, DATA_JOURNAL_ENTRY_MAGIC);
  writeBytes(bytes, F.arrayUuid, entry.arrayUuid);
  writeUint(bytes, F.appliedBelow, entry.appliedBelow);
  writeUint(bytes, F.step, idOfName(DATA_JOURNAL_STEPS, entry.step));
  writeUint(bytes, F.side, idOfName(SIDES, entry.side));
  writeUint(bytes, F.dataIndex, entry.dataIndex);
  writeUint(bytes, F.rowFirst, entry.rowFirst);
  writeUint(bytes, F.rowCount, entry.rowCount);
  writeUint(bytes, F.payloadCrc, entry.payloadCrc);
  writeUint(bytes, F.seq, entry.seq);
  writeUint(bytes, F.stripe, entry.stripe);
  writeUint(bytes, F.payloadBlock, entry.payloadBlock);
  writeUint(bytes, F.epoch, entry.epoch);
  writeUint(bytes, F.crc, crcBefore(bytes, F.crc));
  return bytes;
}

/** Decodes an entry block; `undefined` for a block that was never an entry (no magic). */
export function decodeDataJournalEntry(raw: Uint8Array): DecodeResult<DataJournalEntry> | undefined {
  const bytes = asBuffer(raw);
  if (!hasMagic(bytes, F.magic, DATA_JOURNAL_ENTRY_MAGIC)) return undefined;
  if (bytes.length < DATA_JOURNAL_ENTRY_BYTES) return corrupt(truncatedProblem(bytes.length, 'a data-journal entry', DATA_JOURNAL_ENTRY_BYTES));
  const crcProblem = checksumProblem(bytes, F.crc, crcBefore(bytes, F.crc));
  if (crcProblem) return corrupt(crcProblem);
  const step = nameOfId(DATA_JOURNAL_STEPS, readUint(bytes, F.step));
  if (!step) return corrupt(`unknown data-journal step ${readUint(bytes, F.step)}`);
  const side = nameOfId(SIDES, readUint(bytes, F.side));
  if (!side) return corrupt(`unknown data-journal side ${readUint(bytes, F.side)}`);
  const numbers = [F.appliedBelow, F.seq, F.stripe, F.payloadBlock, F.epoch].map((field) => readUint(bytes, field));
  if (!numbers.every(Number.isSafeInteger)) return corrupt('a data-journal entry number exceeds 2^53');
  return {
    ok: true,
    value: {
      arrayUuid: readBytes(bytes, F.arrayUuid), appliedBelow: numbers[0]!, step, side, seq: numbers[1]!, stripe: numbers[2]!,
      dataIndex: readUint(bytes, F.dataIndex), rowFirst: readUint(bytes, F.rowFirst), rowCount: readUint(bytes, F.rowCount),
      payloadBlock: numbers[3]!, payloadCrc: readUint(bytes, F.payloadCrc), epoch: numbers[4]!,
    },
  };
}
