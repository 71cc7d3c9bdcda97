// Recovery after an unclean shutdown.
//
// dirty-log: the newest journal record lists the stripes that may be inconsistent. Each listed
// stripe gets its parity recomputed from its data; each block check in the record classifies
// its block (a table in journal/recovery-plan.ts), and torn blocks go to the bad-block list. Nothing else is touched.
// resync: no journal, so a dirty flag means every stripe is resynced.
//
// Degraded and dirty: a lost member's block in a dirty stripe cannot be rebuilt with
// confidence (the parity may be mid-update). That is refused unless forced; forced, those
// blocks go to the bad-block list and read as EIO until rewritten. A lost parity chunk puts
// nothing at risk.
//
// The plan (whether recovery is needed, block verdicts, stripes at risk) is decision tables in
// journal/recovery-plan.ts; this module carries it out on the members.

import type { BlockCheck, JournalRecord } from '../format/journal-record.js';
import type { BadBlockRange } from '../format/bad-blocks.js';
import { FLAG_DIRTY } from '../format/superblock.js';
import { computeP, computeQ, reconstructRow } from '../parity/parity.js';
import { DeviceIoError } from '../device/block-device.js';
import { JraidError } from '../errors.js';
import { BLOCK_SIZE_BYTES } from '../units.js';
import { atRisk, classifyBlock, recoveryNeeded, type RecoveryAction } from '../journal/recovery-plan.js';
import { resyncStripes } from './create.js';
import { recoverDataJournal, type DataJournalRecovery } from './journal-policy-recover.js';
import type { RaidArray } from './raid-array.js';

export type { RecoveryAction } from '../journal/recovery-plan.js';

export interface RecoveryOutcome {
  policy: string;
  action: RecoveryAction;
  /** Generation of the record recovery worked from (dirty-log). */
  generation: number | null;
  stripes: number[];
  tornBlocks: BadBlockRange[];
  lostBlocks: BadBlockRange[];
  /** Blocks a member could not read in a row the crash left mid-update: recorded bad. */
  unreadableBlocks: BadBlockRange[];
  /** journal policy: the interrupted updates settled, and by which rule. */
  dataJournal?: DataJournalRecovery;
  seconds: number;
}

export interface RecoverOptions {
  force?: boolean;
  onProgress?: (progress: { doneBytes: number; totalBytes: number }) => void;
}

export async function recoverArray(array: RaidArray, options: RecoverOptions = {}): Promise<RecoveryOutcome> {
  const startedMs = Date.now();
  const action = recoveryNeeded(array);
  const outcome: RecoveryOutcome = { policy: array.sb.policy, action, generation: array.journalRecord?.generation ?? null, stripes: [], tornBlocks: [], lostBlocks: [], unreadableBlocks: [], seconds: 0 };
  if (action === 'none') return outcome;
  if (action === 'data-journal') {
    // No stripe is at risk from a lost member: each update is rolled forward or left whole.
    outcome.dataJournal = await recoverDataJournal(array, array.dataJournalState!, { force: options.force });
    outcome.stripes = outcome.dataJournal.stripes;
    outcome.lostBlocks = outcome.dataJournal.lostBlocks;
    outcome.unreadableBlocks = outcome.dataJournal.unreadableBlocks;
    if (array.badBlocks.add([...outcome.lostBlocks, ...outcome.unreadableBlocks])) await array.persistBadBlocks();
    await array.markRecovered();
    outcome.seconds = (Date.now() - startedMs) / 1000;
    return outcome;
  }
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
    await resyncStripes(g, (role) => array.writableDisk(role)!, stripes[0] ?? 0, g.stripeCount, async (doneStripes) => {
      options.onProgress?.({ doneBytes: doneStripes * g.stripeDataBytes, totalBytes: g.arraySizeBytes });
    });
  } else {
    const checksByStripe = new Map<number, BlockCheck[]>();
    for (const entry of record?.entries ?? []) checksByStripe.set(entry.stripe, [...(checksByStripe.get(entry.stripe) ?? []), ...entry.checks]);
    let doneStripes = 0;
    for (const stripe of stripes) {
      // Bounded: each pass that fails a member has one member fewer.
      for (let pass = 0; pass <= array.sb.members.length; pass++) {
        // A member failed during recovery (a write error) leaves this stripe degraded: judge it again.
        const late = atRisk(array, [stripe]);
        if (late.stripes.length > 0 && !options.force) {
          throw new JraidError('E_ARRAY_DIRTY', `a member failed during recovery: the lost member's blocks in stripe ${stripe} cannot be trusted`, {
            hint: 'run jraid recover --force to mark those blocks bad (they read as EIO until rewritten)',
            details: { stripes: [stripe] },
          });
        }
        for (const range of late.blocks) if (!outcome.lostBlocks.some((known) => known.firstBlock === range.firstBlock)) outcome.lostBlocks.push(range);
        if (late.stripes.length > 0) {
          // The unreadable chunks are given up and taken as zeros (or as P defines them): the
          // member that holds them, back later (re-add) or still being rebuilt, must get this
          // stripe rebuilt to match: absent members are recorded faulty, the stripe marked.
          await array.markAbsentFaulty();
          await array.writeIntent.markStripe(stripe);
        }
        const result = await array.withStripe(stripe, () => recoverStripe(array, stripe, checksByStripe.get(stripe) ?? []));
        if (result.memberFailed) continue;
        outcome.tornBlocks.push(...result.torn);
        outcome.unreadableBlocks.push(...result.unreadable);
        break;
      }
      doneStripes++;
      // Array data bytes, like every other progress report: a listed stripe covers stripeDataBytes.
      options.onProgress?.({ doneBytes: doneStripes * g.stripeDataBytes, totalBytes: stripes.length * g.stripeDataBytes });
    }
  }
  array.checkAlive();
  await array.flushMembers();
  if (array.badBlocks.add([...outcome.tornBlocks, ...outcome.lostBlocks, ...outcome.unreadableBlocks])) await array.persistBadBlocks();
  await array.markRecovered();
  outcome.seconds = (Date.now() - startedMs) / 1000;
  return outcome;
}

export interface StripeRecovery {
  torn: BadBlockRange[];
  /** Blocks a read error made unrecoverable: their row was being written, so parity cannot rebuild them. */
  unreadable: BadBlockRange[];
  /** A member failed a write here: the stripe must be looked at again without it. */
  memberFailed: boolean;
}

/**
 * Classifies the stripe's checked blocks, then makes its parity agree with its data, row by row
 * (a row is one 4 KiB block of every chunk). A block a member cannot read (a latent sector
 * error) is a hole: in a row nothing was writing at the crash, parity is as it was and rebuilds
 * it (and it is rewritten, which repairs it); in a row being written, parity may be mid-update,
 * so the block is given up (recorded bad) rather than rebuilt wrong.
 */
/** Resyncs one listed stripe (classifying its checked blocks); call under the stripe's lock. Cluster nodes use it for a dead node's stripes. */
export async function recoverStripe(array: RaidArray, stripe: number, checks: BlockCheck[]): Promise<StripeRecovery> {
  const g = array.geometry;
  const k = g.dataDisks;
  const B = BLOCK_SIZE_BYTES;
  const rows = g.blocksPerChunk;
  const map = g.stripeMap(stripe);
  const roles = map.qRole >= 0 ? [...map.dataRoles, map.pRole, map.qRole] : [...map.dataRoles, map.pRole];
  const memberDataOffsetBytes = g.memberDataOffsetBytes(stripe, 0);
  const outcome: StripeRecovery = { torn: [], unreadable: [], memberFailed: false };
  const blockRange = (dataIndex: number, row: number): BadBlockRange => ({ firstBlock: (stripe * g.stripeDataBytes + dataIndex * g.chunkSizeBytes) / B + row, blockCount: 1, reason: 'lost' });

  // Every readable chunk; where a read fails, block by block, and the blocks that fail are holes.
  const chunks: (Buffer | null)[] = roles.map(() => null);
  const holes: Set<number>[] = roles.map(() => new Set());
  await Promise.all(roles.map(async (role, slot) => {
    const disk = array.readableDisk(role, stripe);
    if (!disk) return;
    const chunk = Buffer.alloc(g.chunkSizeBytes);
    chunks[slot] = chunk;
    try {
      await disk.readData(memberDataOffsetBytes, chunk);
    } catch (error) {
      if (!(error instanceof DeviceIoError)) throw error;
      for (let row = 0; row < rows; row++) {
        try {
          await disk.readData(memberDataOffsetBytes + row * B, chunk.subarray(row * B, (row + 1) * B));
        } catch (blockError) {
          if (!(blockError instanceof DeviceIoError)) throw blockError;
          holes[slot]!.add(row);
          chunk.fill(0, row * B, (row + 1) * B);
        }
      }
    }
  }));
  const present = (slot: number, row: number) => chunks[slot] !== null && !holes[slot]!.has(row);

  const byBlock = new Map<number, BlockCheck[]>();
  for (const check of checks) byBlock.set(check.blockIndex, [...(byBlock.get(check.blockIndex) ?? []), check]);
  for (const [blockIndex, blockChecks] of byBlock) {
    const dataIndex = Math.floor(blockIndex / rows);
    const row = blockIndex % rows;
    if (dataIndex >= k || !present(dataIndex, row)) continue; // lost with a member, or a hole: handled below
    if (classifyBlock(chunks[dataIndex]!.subarray(row * B, (row + 1) * B), blockChecks) === 'torn') {
      outcome.torn.push({ ...blockRange(dataIndex, row), reason: 'torn' });
    }
  }

  // Rows a write may have left mid-update: those with a checked block. A write to a lost member's
  // block carries no check (nothing is written there) but updates parity: with a data chunk lost,
  // every row is suspect.
  const lostData = chunks.slice(0, k).some((chunk) => chunk === null);
  const rowsWritten = new Set(lostData ? Array.from({ length: rows }, (_, row) => row) : [...byBlock.keys()].map((blockIndex) => blockIndex % rows));
  // New parity per row where it is known; untouched rows keep what the member holds.
  const parityOut = roles.slice(k).map(() => Buffer.alloc(g.chunkSizeBytes));
  const parityKnown = roles.slice(k).map(() => new Uint8Array(rows));
  const repairs: { slot: number; row: number }[] = [];
  const view = (slot: number, row: number) => chunks[slot]!.subarray(row * B, (row + 1) * B);
  const setParity = (row: number, data: Buffer[]) => {
    parityOut[0]!.set(computeP(data), row * B);
    parityKnown[0]![row] = 1;
    if (g.parityDisks === 2) {
      parityOut[1]!.set(computeQ(data, undefined, map.qExponents), row * B);
      parityKnown[1]![row] = 1;
    }
  };
  for (let row = 0; row < rows; row++) {
    const dataMissing = Array.from({ length: k }, (_, slot) => slot).filter((slot) => !present(slot, row));
    const parityMissing = roles.slice(k).map((_, i) => k + i).filter((slot) => !present(slot, row));
    if (dataMissing.length === 0) {
      setParity(row, Array.from({ length: k }, (_, slot) => view(slot, row)));
      continue;
    }
    const rebuildable = dataMissing.length + parityMissing.length <= g.parityDisks;
    if (!rowsWritten.has(row) && rebuildable) {
      // Nothing was being written in this row: its parity is trustworthy.
      const rebuilt = reconstructRow({
        data: Array.from({ length: k }, (_, slot) => present(slot, row) ? view(slot, row) : null),
        p: present(k, row) ? view(k, row) : null,
        q: g.parityDisks === 2 ? (present(k + 1, row) ? view(k + 1, row) : null) : undefined,
      }, B, map.qExponents);
      for (const slot of dataMissing) {
        if (chunks[slot] === null) continue;
        view(slot, row).set(rebuilt.data[slot]!);
        repairs.push({ slot, row });
      }
      if (dataMissing.every((slot) => chunks[slot] !== null)) setParity(row, Array.from({ length: k }, (_, slot) => view(slot, row)));
      continue;
    }
    if (!rowsWritten.has(row)) continue; // a quiet row beyond repair: nothing to change, its reads fail
    if (dataMissing.length === 1 && g.parityDisks === 2 && chunks[dataMissing[0]!] === null && present(k, row) && present(k + 1, row)) {
      // RAID-6 with one data chunk lost: take it as P defines it and make Q agree (the chunk is
      // on the bad-block list either way), so a later rebuild and scrub find the stripe consistent.
      const rebuilt = reconstructRow({ data: Array.from({ length: k }, (_, slot) => present(slot, row) ? view(slot, row) : null), p: view(k, row), q: null }, B, map.qExponents);
      parityOut[1]!.set(rebuilt.q!, row * B);
      parityKnown[1]![row] = 1;
      continue;
    }
    // Being written at the crash: parity may be mid-update, so a missing data block cannot be
    // rebuilt from it. Each is given up (on the bad-block list: a lost member's whole chunk, a
    // hole here) and taken as zeros: a hole is rewritten with zeros (which repairs the sector)
    // and parity is computed to match, so the stripe is consistent again.
    const zero = Buffer.alloc(B);
    for (const slot of dataMissing) {
      if (chunks[slot] === null) continue;
      outcome.unreadable.push(blockRange(slot, row));
      view(slot, row).fill(0);
      repairs.push({ slot, row });
    }
    setParity(row, Array.from({ length: k }, (_, slot) => chunks[slot] === null ? zero : view(slot, row)));
  }

  const writes: Promise<void>[] = [];
  const write = (role: number, offsetBytes: number, bytes: Buffer) => {
    const disk = array.writableDisk(role);
    if (!disk) return;
    writes.push(disk.writeData(offsetBytes, bytes).catch(async (error: unknown) => {
      if (!(error instanceof DeviceIoError)) throw error;
      outcome.memberFailed = true;
      await array.writeIntent.markStripe(stripe); // it missed this stripe's repair: rebuilt on re-add
      await array.failMember(array.indexOfDisk(disk), `write during recovery failed: ${error.message}`);
    }));
  };
  parityOut.forEach((bytes, i) => {
    for (const [first, count] of runsOf(parityKnown[i]!)) write(roles[k + i]!, memberDataOffsetBytes + first * B, bytes.subarray(first * B, (first + count) * B));
  });
  for (const { slot, row } of repairs) write(roles[slot]!, memberDataOffsetBytes + row * B, Buffer.from(view(slot, row)));
  await Promise.all(writes);
  return outcome;
}

/** [first, count] for each run of non-zero entries. */
function runsOf(flags: Uint8Array): [number, number][] {
  const out: [number, number][] = [];
  for (let i = 0; i < flags.length;) {
    if (!flags[i]) { i++; continue; }
    let j = i;
    while (j < flags.length && flags[j]) j++;
    out.push([i, j - i]);
    i = j;
  }
  return out;
}
