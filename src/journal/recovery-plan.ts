// Recovery planning after an unclean shutdown, as decision tables: whether recovery is needed
// and which kind, how a checked block is classified, and which stripes a lost member puts at
// risk. Pure: the engine's recovery (engine/recover.ts) carries the plan out.
//
// dirty-log: the newest journal record lists the stripes that may be inconsistent; each gets
// its parity recomputed from its data, and torn blocks go to the bad-block list.
// journal: the data journals hold updates past their checkpoint; each is settled by the table in
// data-journal-plan.ts.
// resync: no journal, so a dirty flag means every stripe.

import { crc32c } from '../format/crc32c.js';
import type { BadBlockRange } from '../format/bad-blocks.js';
import type { BlockCheck, JournalRecord } from '../format/journal-record.js';
import { FLAG_DIRTY, type Superblock } from '../format/superblock.js';
import { POLICIES, type Policy } from '../format/types.js';
import type { Geometry } from '../geometry/geometry.js';
import { decide, type DecisionTable } from '../decision-table.js';
import { BLOCK_SIZE_BYTES, SECTOR_SIZE_BYTES } from '../units.js';

// ---- torn-block classification ----------------------------------------------------------

export type BlockVerdict = 'new' | 'old' | 'torn';

/** What a block's contents say against the record's checks for that block. */
export interface BlockFacts {
  /** Its CRC equals a new CRC: the write landed. */
  matchesNew: boolean;
  /** Its CRC equals an old CRC: the write did not land. */
  matchesOld: boolean;
  /** A check carries the old contents' CRC (the old block was read before the write). */
  oldKnown: boolean;
  /** Its first sector's CRC equals a first-sector check (part of the write landed). */
  firstSectorMatchesNew: boolean;
}

const BOOLEAN = [false, true] as const;

export const BLOCK_VERDICTS: DecisionTable<BlockFacts, BlockVerdict> = {
  name: 'torn-block classification',
  domains: { matchesNew: BOOLEAN, matchesOld: BOOLEAN, oldKnown: BOOLEAN, firstSectorMatchesNew: BOOLEAN },
  rows: [
    { when: { matchesNew: true }, then: 'new' },
    { when: { matchesNew: false, matchesOld: true }, then: 'old' },
    // An old CRC is known and the block matches neither: torn.
    { when: { matchesNew: false, matchesOld: false, oldKnown: true }, then: 'torn' },
    // No old CRC: a first sector like the new one means part of the write landed.
    { when: { matchesNew: false, matchesOld: false, oldKnown: false, firstSectorMatchesNew: true }, then: 'torn' },
    { when: { matchesNew: false, matchesOld: false, oldKnown: false, firstSectorMatchesNew: false }, then: 'old' },
  ],
};

export function blockFacts(block: Uint8Array, checks: readonly BlockCheck[]): BlockFacts {
  const crc = crc32c(block);
  const firstSector = crc32c(block.subarray(0, SECTOR_SIZE_BYTES));
  return {
    matchesNew: checks.some((check) => check.newCrc === crc),
    matchesOld: checks.some((check) => check.kind === 'old' && check.checkCrc === crc),
    oldKnown: checks.some((check) => check.kind === 'old'),
    firstSectorMatchesNew: checks.some((check) => check.kind === 'first-sector' && check.checkCrc === firstSector),
  };
}

export function classifyBlock(block: Uint8Array, checks: readonly BlockCheck[]): BlockVerdict {
  return decide(BLOCK_VERDICTS, blockFacts(block, checks));
}

// ---- whether recovery is needed ---------------------------------------------------------

export type RecoveryAction = 'none' | 'dirty-stripes' | 'data-journal' | 'full-resync';

export interface RecoveryFacts {
  policy: Policy;
  /** dirty-log: the newest journal record: none found, clean, or listing stripes. journal: the data journals hold updates past their checkpoint (dirty) or not. */
  journal: 'none' | 'clean' | 'dirty';
  /** The superblock's dirty flag (set by resync arrays while writes run). */
  dirtyFlag: boolean;
  /** A full resync (at creation, or an earlier recovery) stopped before the end. */
  resyncIncomplete: boolean;
}

const NO_JOURNAL: Policy[] = POLICIES.map((policy) => policy.name).filter((name) => name !== 'dirty-log' && name !== 'journal');

export const RECOVERY_ACTIONS: DecisionTable<RecoveryFacts, RecoveryAction> = {
  name: 'recovery needed',
  domains: { policy: POLICIES.map((policy) => policy.name), journal: ['none', 'clean', 'dirty'], dirtyFlag: BOOLEAN, resyncIncomplete: BOOLEAN },
  rows: [
    // dirty-log: the journal's word; the dirty flag is not used by this policy.
    { when: { policy: 'dirty-log', journal: 'dirty' }, then: 'dirty-stripes' },
    { when: { policy: 'dirty-log', journal: ['none', 'clean'], resyncIncomplete: true }, then: 'full-resync' },
    { when: { policy: 'dirty-log', journal: ['none', 'clean'], resyncIncomplete: false }, then: 'none' },
    // journal: the data journals' word first (their updates are settled before anything else).
    { when: { policy: 'journal', journal: 'dirty' }, then: 'data-journal' },
    { when: { policy: 'journal', journal: ['none', 'clean'], dirtyFlag: true }, then: 'full-resync' },
    { when: { policy: 'journal', journal: ['none', 'clean'], dirtyFlag: false, resyncIncomplete: true }, then: 'full-resync' },
    { when: { policy: 'journal', journal: ['none', 'clean'], dirtyFlag: false, resyncIncomplete: false }, then: 'none' },
    // No journal: a dirty flag or an unfinished resync means every stripe from the resync point.
    { when: { policy: NO_JOURNAL, dirtyFlag: true }, then: 'full-resync' },
    { when: { policy: NO_JOURNAL, dirtyFlag: false, resyncIncomplete: true }, then: 'full-resync' },
    { when: { policy: NO_JOURNAL, dirtyFlag: false, resyncIncomplete: false }, then: 'none' },
  ],
};

/** What recovery planning reads of an array: its superblock, the newest journal record, the data journals' live updates. */
export interface RecoveryInputs {
  readonly sb: Pick<Superblock, 'policy' | 'flags' | 'resyncOffsetBytes' | 'dataSizeBytes'>;
  readonly journalRecord: JournalRecord | undefined;
  /** journal policy: updates in the data journals past their checkpoint (undefined: none read). */
  readonly dataJournalLive?: number;
}

export function recoveryFacts(array: RecoveryInputs): RecoveryFacts {
  const record = array.journalRecord;
  const journal = array.sb.policy === 'journal'
    ? (array.dataJournalLive === undefined ? 'none' : array.dataJournalLive > 0 ? 'dirty' : 'clean')
    : !record ? 'none' : record.clean ? 'clean' : 'dirty';
  return {
    policy: array.sb.policy,
    journal,
    dirtyFlag: (array.sb.flags & FLAG_DIRTY) !== 0,
    resyncIncomplete: array.sb.resyncOffsetBytes < array.sb.dataSizeBytes,
  };
}

export function recoveryNeeded(array: RecoveryInputs): RecoveryAction {
  return decide(RECOVERY_ACTIONS, recoveryFacts(array));
}

// ---- stripes a lost member puts at risk -------------------------------------------------

/** What atRisk reads of an array: its geometry and which roles can be read where. */
export interface RiskInputs {
  readonly geometry: Geometry;
  degradedRoles(): number[];
  /** A member that can serve `role` in `stripe` (in sync, or rebuilt past it), if any. */
  readableDisk(role: number, stripe: number): unknown;
}

/**
 * Stripes whose unreadable data chunks cannot be trusted, with the array ranges at risk. A data
 * chunk is unreadable when its member is lost, or still being rebuilt and not yet past this
 * stripe: either way it would be rebuilt from parity that a crash may have left mid-update.
 */
export function atRisk(array: RiskInputs, stripes: readonly number[]): { stripes: number[]; blocks: BadBlockRange[] } {
  const risky: number[] = [];
  const blocks: BadBlockRange[] = [];
  if (array.degradedRoles().length === 0) return { stripes: risky, blocks };
  const g = array.geometry;
  for (const stripe of stripes) {
    const map = g.stripeMap(stripe);
    let hit = false;
    map.dataRoles.forEach((role, dataIndex) => {
      if (array.readableDisk(role, stripe)) return;
      hit = true;
      const firstBlock = (stripe * g.stripeDataBytes + dataIndex * g.chunkSizeBytes) / BLOCK_SIZE_BYTES;
      blocks.push({ firstBlock, blockCount: g.blocksPerChunk, reason: 'lost' });
    });
    if (hit) risky.push(stripe);
  }
  return { stripes: risky, blocks };
}
