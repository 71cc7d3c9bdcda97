// Recovery after an unclean shutdown.
//
// dirty-log: the newest journal record lists the stripes that may be inconsistent. Each listed
// stripe gets its parity recomputed from its data; each block check in the record classifies
// its block (table below), and torn blocks go to the bad-block list. Nothing else is touched.
// resync: no journal, so a dirty flag means every stripe is resynced.
//
// Degraded and dirty: a lost member's block in a dirty stripe cannot be rebuilt with
// confidence (the parity may be mid-update). That is refused unless forced; forced, those
// blocks go to the bad-block list and read as EIO until rewritten. A lost parity chunk puts
// nothing at risk.
//
// Block verdicts (content CRC against the record's checks for that block):
//   equals a new CRC                         -> new (the write landed)
//   equals an old CRC                        -> old (it did not)
//   an old CRC is known, matches neither     -> torn
//   no old CRC, first sector equals new's    -> torn (part of the write landed)
//   no old CRC, first sector differs         -> old

import { crc32c } from '../format/crc32c.js';
import type { BlockCheck, JournalRecord } from '../format/journal-record.js';
import type { BadBlockRange } from '../format/bad-blocks.js';
import { FLAG_DIRTY } from '../format/superblock.js';
import { computeP, computeQ, reconstructRow } from '../parity/parity.js';
import { JraidError } from '../errors.js';
import { BLOCK_SIZE_BYTES, SECTOR_SIZE_BYTES } from '../units.js';
import { resyncStripes } from './create.js';
import type { RaidArray } from './raid-array.js';

export type BlockVerdict = 'new' | 'old' | 'torn';

export function classifyBlock(block: Uint8Array, checks: readonly BlockCheck[]): BlockVerdict {
  const crc = crc32c(block);
  if (checks.some((check) => check.newCrc === crc)) return 'new';
  if (checks.some((check) => check.kind === 'old' && check.checkCrc === crc)) return 'old';
  if (checks.some((check) => check.kind === 'old')) return 'torn';
  const firstSector = crc32c(block.subarray(0, SECTOR_SIZE_BYTES));
  return checks.some((check) => check.kind === 'first-sector' && check.checkCrc === firstSector) ? 'torn' : 'old';
}

export type RecoveryAction = 'none' | 'dirty-stripes' | 'full-resync';

export interface RecoveryOutcome {
  policy: string;
  action: RecoveryAction;
  /** Generation of the record recovery worked from (dirty-log). */
  generation: number | null;
  stripes: number[];
  tornBlocks: BadBlockRange[];
  lostBlocks: BadBlockRange[];
  seconds: number;
}

export function recoveryNeeded(array: RaidArray): RecoveryAction {
  if (array.sb.policy === 'dirty-log') {
    const record = array.journalRecord;
    if (record && !record.clean) return 'dirty-stripes';
    return array.sb.resyncOffsetBytes < array.sb.dataSizeBytes ? 'full-resync' : 'none';
  }
  return array.sb.flags & FLAG_DIRTY || array.sb.resyncOffsetBytes < array.sb.dataSizeBytes ? 'full-resync' : 'none';
}

/** Stripes whose lost data chunks cannot be trusted, with the array ranges at risk. */
export function atRisk(array: RaidArray, stripes: readonly number[]): { stripes: number[]; blocks: BadBlockRange[] } {
  const lost = new Set(array.lostRoles());
  const risky: number[] = [];
  const blocks: BadBlockRange[] = [];
  if (lost.size === 0) return { stripes: risky, blocks };
  const g = array.geometry;
  for (const stripe of stripes) {
    const map = g.stripeMap(stripe);
    let hit = false;
    map.dataRoles.forEach((role, dataIndex) => {
      if (!lost.has(role)) return;
      hit = true;
      const firstBlock = (stripe * g.stripeDataBytes + dataIndex * g.chunkSizeBytes) / BLOCK_SIZE_BYTES;
      blocks.push({ firstBlock, blockCount: g.blocksPerChunk, reason: 'lost' });
    });
    if (hit) risky.push(stripe);
  }
  return { stripes: risky, blocks };
}

export interface RecoverOptions {
  force?: boolean;
  onProgress?: (progress: { doneBytes: number; totalBytes: number }) => void;
}

export async function recoverArray(array: RaidArray, options: RecoverOptions = {}): Promise<RecoveryOutcome> {
  const startedMs = Date.now();
  const action = recoveryNeeded(array);
  const outcome: RecoveryOutcome = { policy: array.sb.policy, action, generation: array.journalRecord?.generation ?? null, stripes: [], tornBlocks: [], lostBlocks: [], seconds: 0 };
  if (action === 'none') return outcome;
  const g = array.geometry;
  const record: JournalRecord | undefined = action === 'dirty-stripes' ? array.journalRecord : undefined;
  const firstResyncStripe = Math.floor(array.sb.resyncOffsetBytes / g.chunkSizeBytes);
  const stripes = record
    ? [...new Set(record.entries.map((entry) => entry.stripe))].filter((stripe) => stripe < g.stripeCount).sort((a, b) => a - b)
    : Array.from({ length: g.stripeCount - (array.sb.flags & FLAG_DIRTY ? 0 : firstResyncStripe) }, (_, i) => i + (array.sb.flags & FLAG_DIRTY ? 0 : firstResyncStripe));
  const risk = atRisk(array, stripes);
  if (risk.stripes.length > 0 && !options.force) {
    const shown = risk.stripes.slice(0, 20).join(', ') + (risk.stripes.length > 20 ? `, ... (${risk.stripes.length} in all)` : '');
    throw new JraidError('E_ARRAY_DIRTY', `the array was not shut down cleanly and is degraded: the lost member's blocks in stripe(s) ${shown} cannot be trusted`, {
      hint: 'bring the missing member back, or run jraid recover --force to mark those blocks bad (they read as EIO until rewritten)',
      details: { stripes: risk.stripes },
    });
  }
  outcome.stripes = stripes;
  outcome.lostBlocks = risk.blocks;

  if (!record && array.lostRoles().length === 0) {
    // The baseline: no journal, so every stripe from the resync point on.
    await resyncStripes(g, (role) => array.writableDisk(role)!, stripes[0] ?? 0, g.stripeCount, async (done) => {
      options.onProgress?.({ doneBytes: done * g.chunkSizeBytes * g.dataDisks, totalBytes: g.arraySizeBytes });
    });
  } else {
    const checksByStripe = new Map<number, BlockCheck[]>();
    for (const entry of record?.entries ?? []) checksByStripe.set(entry.stripe, [...(checksByStripe.get(entry.stripe) ?? []), ...entry.checks]);
    let done = 0;
    for (const stripe of stripes) {
      const torn = await array.withStripe(stripe, () => recoverStripe(array, stripe, checksByStripe.get(stripe) ?? []));
      outcome.tornBlocks.push(...torn);
      done++;
      options.onProgress?.({ doneBytes: done, totalBytes: stripes.length });
    }
  }
  await array.flushMembers();
  if (array.badBlocks.add([...outcome.tornBlocks, ...outcome.lostBlocks])) await array.persistBadBlocks();
  await array.markRecovered();
  outcome.seconds = (Date.now() - startedMs) / 1000;
  return outcome;
}

/** Classifies the stripe's checked blocks, then makes its parity agree with its data. */
async function recoverStripe(array: RaidArray, stripe: number, checks: BlockCheck[]): Promise<BadBlockRange[]> {
  const g = array.geometry;
  const k = g.dataDisks;
  const hasQ = g.parityDisks === 2;
  const { map, roles, chunks } = await array.readStripeChunks(stripe);
  const torn: BadBlockRange[] = [];
  const byBlock = new Map<number, BlockCheck[]>();
  for (const check of checks) byBlock.set(check.blockIndex, [...(byBlock.get(check.blockIndex) ?? []), check]);
  for (const [blockIndex, blockChecks] of byBlock) {
    const dataIndex = Math.floor(blockIndex / g.blocksPerChunk);
    const row = blockIndex % g.blocksPerChunk;
    const chunk = chunks[dataIndex];
    if (dataIndex >= k || !chunk) continue; // a lost member's block: handled as lost
    if (classifyBlock(chunk.subarray(row * BLOCK_SIZE_BYTES, (row + 1) * BLOCK_SIZE_BYTES), blockChecks) === 'torn') {
      torn.push({ firstBlock: (stripe * g.stripeDataBytes + dataIndex * g.chunkSizeBytes) / BLOCK_SIZE_BYTES + row, blockCount: 1, reason: 'torn' });
    }
  }
  const missingData = chunks.slice(0, k).filter((chunk) => chunk === null).length;
  const presentParity = chunks.slice(k).filter((chunk) => chunk !== null).length;
  if (missingData === 0) {
    const data = chunks.slice(0, k) as Buffer[];
    const writes: Promise<void>[] = [];
    const offset = g.memberDataOffsetBytes(stripe, 0);
    const pDisk = array.writableDisk(roles[k]!);
    if (pDisk) writes.push(pDisk.writeData(offset, computeP(data)));
    if (hasQ) {
      const qDisk = array.writableDisk(roles[k + 1]!);
      if (qDisk) writes.push(qDisk.writeData(offset, computeQ(data, undefined, map.qExponents)));
    }
    await Promise.all(writes);
  } else if (missingData < presentParity) {
    // RAID-6 with one data chunk lost: take it as P defines it and make Q agree (the chunk is
    // on the bad-block list either way), so a later rebuild and scrub find the stripe consistent.
    const row = reconstructRow({ data: chunks.slice(0, k), p: chunks[k]!, q: null }, g.chunkSizeBytes, map.qExponents);
    await array.writableDisk(roles[k + 1]!)!.writeData(g.memberDataOffsetBytes(stripe, 0), row.q!);
  }
  return torn;
}
