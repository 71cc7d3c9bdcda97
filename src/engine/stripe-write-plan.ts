// The stripe-write planner: pure, no I/O. Given which data blocks of a stripe a write covers
// (whole or in part) and which slots can be read and must be written, it picks for each block
// row the way to compute the new parity that reads the fewest blocks:
//   rmw          read the touched data and the parity, apply the difference;
//   rcw          read the untouched data (and the partly covered), compute parity afresh;
//   reconstruct  read every slot that can be read, rebuild what cannot, compute afresh
//                (the only way when a block the other two need cannot be read).
// and says which blocks to read and which to write. Slots are data 0..k-1, then P, then Q.

import { JraidError } from '../errors.js';
import { assert } from '../units.js';

export type RowMode = 'rmw' | 'rcw' | 'reconstruct';

/** Coverage of one block by the write. */
export const COVER_NONE = 0;
export const COVER_PARTIAL = 1;
export const COVER_WHOLE = 2;

/** One data chunk's part of the write, in bytes of the chunk. */
export interface PlannedPiece {
  dataIndex: number;
  chunkOffsetBytes: number;
  lengthBytes: number;
}

export interface StripeWriteInput {
  /** For messages only. */
  stripe: number;
  dataSlots: number;
  paritySlots: number;
  blockSizeBytes: number;
  pieces: readonly PlannedPiece[];
  /** By slot: the old block can be read (its member holds this stripe, and did not just fail a read). */
  readable: readonly boolean[];
  /** By slot: the member must receive the stripe's new contents (active or rebuilding). */
  writable: readonly boolean[];
  /** By slot: its read failed but its member stays in the array: rewrite the rows rebuilt. */
  repair: readonly boolean[];
}

export interface StripeWritePlan {
  /** First block row of the chunk the write touches, and how many rows. */
  rowFirst: number;
  rows: number;
  /** coverage[slot * rows + r] for data slots: COVER_NONE, COVER_PARTIAL or COVER_WHOLE. */
  coverage: Uint8Array;
  modes: RowMode[];
  /** By slot, by row: 1 where the old block is read. */
  reads: Uint8Array[];
  /** By slot, by row: 1 where the new block is written. */
  writes: Uint8Array[];
}

export function planStripeWrite(input: StripeWriteInput): StripeWritePlan {
  const { dataSlots: k, paritySlots: m, blockSizeBytes: B, pieces, readable, writable, repair } = input;
  const slotCount = k + m;
  assert(readable.length === slotCount && writable.length === slotCount && repair.length === slotCount, 'one readable, writable and repair flag per slot');
  assert(pieces.length > 0, 'a stripe write has something to write');
  let rowFirst = Infinity;
  let rowLast = -1;
  for (const piece of pieces) {
    assert(piece.dataIndex >= 0 && piece.dataIndex < k && piece.lengthBytes > 0 && piece.chunkOffsetBytes >= 0, `piece of data slot ${piece.dataIndex} lies in the stripe`);
    rowFirst = Math.min(rowFirst, Math.floor(piece.chunkOffsetBytes / B));
    rowLast = Math.max(rowLast, Math.floor((piece.chunkOffsetBytes + piece.lengthBytes - 1) / B));
  }
  const rows = rowLast - rowFirst + 1;
  const coverage = new Uint8Array(k * rows);
  for (const piece of pieces) {
    const start = piece.chunkOffsetBytes;
    const end = start + piece.lengthBytes;
    for (let row = Math.floor(start / B); row * B < end; row++) {
      const whole = start <= row * B && end >= (row + 1) * B;
      coverage[piece.dataIndex * rows + (row - rowFirst)] = whole ? COVER_WHOLE : COVER_PARTIAL;
    }
  }
  const present = Array.from({ length: slotCount }, (_, slot) => slot).filter((slot) => readable[slot]);
  if (slotCount - present.length > m) {
    throw new JraidError('E_ARRAY_FAILED', `stripe ${input.stripe} has lost ${slotCount - present.length} chunks; writes stop`, {
      hint: 'too many members failed; nothing acknowledged was lost; bring a member back before writing',
    });
  }
  const paritySlotList = Array.from({ length: m }, (_, i) => k + i);
  const writableParity = paritySlotList.filter((slot) => writable[slot]);
  const reads = Array.from({ length: slotCount }, () => new Uint8Array(rows));
  const modes: RowMode[] = [];
  for (let r = 0; r < rows; r++) {
    const touched: number[] = [];
    const partial: number[] = [];
    const untouched: number[] = [];
    for (let slot = 0; slot < k; slot++) {
      const c = coverage[slot * rows + r]!;
      if (c === COVER_NONE) untouched.push(slot);
      else touched.push(slot);
      if (c === COVER_PARTIAL) partial.push(slot);
    }
    // Candidates in order of preference on a tie (the sort below is stable).
    const candidates: { mode: RowMode; reads: number[] }[] = [];
    if (touched.every((slot) => readable[slot]) && writableParity.every((slot) => readable[slot])) {
      candidates.push({ mode: 'rmw', reads: [...touched, ...writableParity] });
    }
    if (untouched.every((slot) => readable[slot]) && partial.every((slot) => readable[slot])) {
      candidates.push({ mode: 'rcw', reads: [...untouched, ...partial] });
    }
    candidates.push({ mode: 'reconstruct', reads: present });
    candidates.sort((a, b) => a.reads.length - b.reads.length);
    const chosen = candidates[0]!;
    modes.push(chosen.mode);
    for (const slot of chosen.reads) reads[slot]![r] = 1;
  }
  const writes = Array.from({ length: slotCount }, (_, slot) => {
    const flags = new Uint8Array(rows);
    if (!writable[slot]) return flags;
    for (let r = 0; r < rows; r++) {
      // Rows of a member whose read failed were reconstructed: writing them back repairs the error.
      flags[r] = slot >= k || coverage[slot * rows + r]! > 0 || (repair[slot] && modes[r] === 'reconstruct') ? 1 : 0;
    }
    return flags;
  });
  return { rowFirst, rows, coverage, modes, reads, writes };
}

/** [first, count] for each run of non-zero entries. */
export function* runs(flags: Uint8Array): Generator<[number, number]> {
  let i = 0;
  while (i < flags.length) {
    if (!flags[i]) { i++; continue; }
    let j = i;
    while (j < flags.length && flags[j]) j++;
    yield [i, j - i];
    i = j;
  }
}
