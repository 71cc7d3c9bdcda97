// Recovery for the journal policy (seed 002 claims 12-14): read every member's data journal,
// review each update still in the journals (numbered at or above the newest checkpoint) in
// order, decide it with the table in journal/data-journal-plan.ts from what the data manager
// and each parity manager journaled, and roll it forward or leave it. Rolling forward writes
// the new data and the parity of the new row in place; where a member is lost its part is
// taken from the other side's journal. Then a checkpoint says every update is applied.

import { DeviceIoError } from '../device/block-device.js';
import type { DataJournalEntry, DataJournalSide } from '../format/data-journal-entry.js';
import { decideUpdate, type DataSideState, type ParitySideState, type QSideState, type UpdateFacts, type UpdateRule } from '../journal/data-journal-plan.js';
import { DataJournal, dataJournalLayoutFor, readEntryPayload, scanMemberJournal, type DataJournalLayout, type MemberJournalScan } from '../journal/data-journal.js';
import { reconstructRow, xorInto } from '../parity/parity.js';
import { JraidError } from '../errors.js';
import type { BadBlockRange } from '../format/bad-blocks.js';
import { BLOCK_SIZE_BYTES, assert } from '../units.js';
import type { MemberDisk } from './member-disk.js';
import { parityOfRows } from './journal-policy-write.js';
import { slotRoles } from './stripe-host.js';
import type { RaidArray } from './raid-array.js';

/** What the data journals held at assembly. */
export interface DataJournalState {
  layout: DataJournalLayout;
  scans: MemberJournalScan[];
  /** The newest checkpoint found: updates below it are history. */
  appliedBelow: number;
  /** One past the highest update number found anywhere. */
  nextSeq: number;
  /** Updates at or above the checkpoint, by number. */
  live: Map<number, { member: MemberDisk; entry: DataJournalEntry }[]>;
}

export async function scanDataJournals(disks: readonly MemberDisk[], arrayUuid: Buffer, regions: MemberDisk['regions']): Promise<DataJournalState | undefined> {
  const layout = dataJournalLayoutFor(regions);
  if (!layout) return undefined;
  const scans = await Promise.all(disks.map((disk) => scanMemberJournal(disk, layout, arrayUuid)));
  const appliedBelow = Math.max(0, ...scans.map((scan) => scan.appliedBelow));
  let nextSeq = appliedBelow;
  // Live entries all come from the last write session: a member that was away may still hold
  // entries of an earlier one, numbered as high.
  let epoch = 0;
  for (const scan of scans) for (const entry of scan.entries) if (entry.seq >= appliedBelow) epoch = Math.max(epoch, entry.epoch);
  const live = new Map<number, { member: MemberDisk; entry: DataJournalEntry }[]>();
  scans.forEach((scan, i) => {
    for (const entry of scan.entries) {
      nextSeq = Math.max(nextSeq, entry.seq + 1);
      if (entry.seq < appliedBelow || entry.epoch !== epoch) continue;
      const found = live.get(entry.seq) ?? [];
      found.push({ member: disks[i]!, entry });
      live.set(entry.seq, found);
    }
  });
  return { layout, scans, appliedBelow, nextSeq, live };
}

export interface DataJournalRecovery {
  updates: number;
  rolledForward: number;
  stripes: number[];
  rules: Partial<Record<UpdateRule, number>>;
  /**
   * Data blocks given up: in a row being settled, a read error on top of a lost member left more
   * blocks unknown than parity rebuilds. They read as EIO until rewritten: a lost member's as
   * `lostBlocks`, a present member's unreadable ones as `unreadableBlocks`.
   */
  lostBlocks: BadBlockRange[];
  unreadableBlocks: BadBlockRange[];
}

/** Reviews and settles every live update, then checkpoints. Call with the array open for writing. */
export async function recoverDataJournal(array: RaidArray, state: DataJournalState, options: { force?: boolean } = {}): Promise<DataJournalRecovery> {
  const outcome: DataJournalRecovery = { updates: 0, rolledForward: 0, stripes: [], rules: {}, lostBlocks: [], unreadableBlocks: [] };
  // A member whose journal could not be read whole: what it journaled is unknown (its sides count as lost).
  const unknownJournals = new Set(state.scans.filter((scan) => scan.unreadable > 0).map((scan) => scan.member as MemberDisk));
  if (array.members.absentIndexes().length > 0) await array.markAbsentFaulty();
  const stripes = new Set<number>();
  for (const seq of [...state.live.keys()].sort((a, b) => a - b)) {
    const found = state.live.get(seq)!;
    const rule = await array.withStripe(found[0]!.entry.stripe, () => settleUpdate(array, state.layout, found, unknownJournals, outcome, options.force ?? false));
    if (rule === undefined) continue;
    outcome.updates++;
    outcome.rules[rule] = (outcome.rules[rule] ?? 0) + 1;
    if (['c1d-both-completed', 'c2-parity-from-data', 'c3-data-from-parity', 'lost-data-from-parity'].includes(rule)) {
      if (array.degradedRoles().length > 0) await array.writeIntent.markStripe(found[0]!.entry.stripe);
      outcome.rolledForward++;
      stripes.add(found[0]!.entry.stripe);
    }
  }
  array.checkAlive();
  await array.flushMembers();
  const journal = new DataJournal({
    arrayUuid: array.sb.arrayUuid, layout: state.layout, nextSeq: state.nextSeq, appliedBelow: state.appliedBelow,
    members: () => array.members.inArrayDisks(),
    flushMembers: () => array.flushMembers(),
    epoch: () => array.sb.events,
    memberFailed: (member, error) => array.failMember(array.indexOfDisk(member as MemberDisk), `data-journal write failed: ${error.message}`),
  });
  await journal.checkpointAll();
  state.live.clear();
  state.appliedBelow = journal.appliedBelow;
  outcome.stripes = [...stripes].sort((a, b) => a - b);
  return outcome;
}

interface SideView {
  side: DataJournalSide;
  role: number;
  slot: number;
  /** The member holding the role, readable for this stripe (its in-place copy is written). */
  disk: MemberDisk | undefined;
  /** Its journal was read whole: what it journaled is known (else the side counts as lost). */
  known: boolean;
  /** Payloads that check, by step. */
  issued?: Buffer;
  received?: Buffer;
  completedParity?: Buffer;
  dataCompleted: boolean;
}

/** Decides one update and carries the decision out. Returns the rule, or undefined for an entry that makes no sense here. */
async function settleUpdate(
  array: RaidArray, layout: DataJournalLayout, found: { member: MemberDisk; entry: DataJournalEntry }[],
  unknownJournals: ReadonlySet<MemberDisk>, givenUp: { lostBlocks: BadBlockRange[]; unreadableBlocks: BadBlockRange[] }, force: boolean,
): Promise<UpdateRule | undefined> {
  const g = array.geometry;
  const B = BLOCK_SIZE_BYTES;
  const first = found[0]!.entry;
  const { stripe, dataIndex, rowFirst, rowCount } = first;
  if (stripe >= g.stripeCount || dataIndex >= g.dataDisks || rowCount === 0 || rowFirst + rowCount > g.blocksPerChunk) return undefined;
  if (found.some(({ entry }) => entry.stripe !== stripe || entry.dataIndex !== dataIndex || entry.rowFirst !== rowFirst || entry.rowCount !== rowCount)) return undefined;
  const map = g.stripeMap(stripe);
  const k = g.dataDisks;
  const hasQ = map.qRole >= 0;
  const views: SideView[] = [{ side: 'data', role: map.dataRoles[dataIndex]!, slot: dataIndex, disk: undefined, known: false, dataCompleted: false }];
  views.push({ side: 'p', role: map.pRole, slot: k, disk: undefined, known: false, dataCompleted: false });
  if (hasQ) views.push({ side: 'q', role: map.qRole, slot: k + 1, disk: undefined, known: false, dataCompleted: false });
  for (const view of views) {
    view.disk = array.readableDisk(view.role, stripe);
    view.known = view.disk !== undefined && ![...unknownJournals].some((member) => member.device === view.disk!.device);
    // Only what the member now holding the role journaled counts.
    for (const { member, entry } of found) {
      if (entry.side !== view.side || !view.known || member.device !== view.disk!.device) continue;
      const payload = entry.step === 'data-completed' ? undefined : await readEntryPayload(member, layout, entry);
      if (payload === 'unreadable') {
        view.known = false;
        continue;
      }
      if (entry.step === 'data-completed') view.dataCompleted = true;
      else if (entry.step === 'issued') view.issued = payload;
      else if (entry.step === 'received') view.received = payload;
      else if (entry.step === 'parity-completed') view.completedParity = payload;
    }
  }
  const dataView = views[0]!;
  const dataState: DataSideState = !dataView.known ? 'lost' : dataView.issued && dataView.dataCompleted ? 'completed' : dataView.issued ? 'issued' : 'none';
  const parityState = (view: SideView): ParitySideState => !view.known ? 'lost' : view.received && view.completedParity ? 'completed' : view.received ? 'received' : 'none';
  const facts: UpdateFacts = { data: dataState, p: parityState(views[1]!), q: hasQ ? parityState(views[2]!) : 'absent' as QSideState };
  const decision = decideUpdate(facts);
  // A side counted lost only because its member's journal could not be read is still there.
  const unknownOnly = views.some((view) => view.disk && !view.known);
  if (decision.action === 'failed' && !unknownOnly) {
    throw new JraidError('E_ARRAY_FAILED', `stripe ${stripe}: the members of an interrupted update are lost beyond what RAID-${array.sb.level} survives`, { hint: 'bring back a member with assemble --force' });
  }
  if (decision.action === 'no-change') return decision.rule;

  // Roll forward. The in-place rows as they are now (null where a member is lost or unreadable).
  const roles = slotRoles(map);
  const memberDataOffsetBytes = g.memberDataOffsetBytes(stripe, rowFirst * B);
  const inPlace: (Buffer | null)[] = await Promise.all(roles.map(async (role) => {
    const disk = array.readableDisk(role, stripe);
    if (!disk) return null;
    const buf = Buffer.alloc(rowCount * B);
    try {
      await disk.readData(memberDataOffsetBytes, buf);
      return buf;
    } catch (error) {
      if (!(error instanceof DeviceIoError)) throw error;
      return null;
    }
  }));
  const parityViews = views.slice(1);
  const knownParity = parityViews.filter((view) => view.known);
  // The in-place copies are rewritten only once every side completed: until then they are old.
  // A side whose journal is unknown may have completed: its in-place copy is then not trusted.
  const applyMayHaveStarted = (facts.data === 'completed' || facts.data === 'lost') && knownParity.every((view) => view.completedParity && view.received);
  const delta = knownParity.find((view) => view.received)?.received;
  const rows = (source: (slot: number) => Buffer | null): Buffer[] | undefined => {
    const out = Array.from({ length: k }, () => Buffer.alloc(rowCount * B));
    for (let r = 0; r < rowCount; r++) {
      const view = (slot: number) => source(slot)?.subarray(r * B, (r + 1) * B) ?? null;
      const data = Array.from({ length: k }, (_, i) => view(i));
      const missing = data.filter((block) => block === null).length + (view(k) === null ? 1 : 0) + (hasQ && view(k + 1) === null ? 1 : 0);
      if (missing > g.parityDisks) return undefined;
      const row = reconstructRow({ data: data.map((block) => block && Buffer.from(block)), p: view(k) && Buffer.from(view(k)!), q: hasQ ? view(k + 1) && Buffer.from(view(k + 1)!) : undefined }, B, map.qExponents);
      row.data.forEach((block, i) => out[i]!.set(block, r * B));
    }
    return out;
  };
  let newRow: Buffer[] | undefined;
  if (decision.action === 'failed') {
    newRow = undefined; // nothing known of the update beyond what the level rebuilds: given up below
  } else if (applyMayHaveStarted) {
    // Parity from the journals' new copies; the data chunk from its journal when it completed.
    const source = (slot: number): Buffer | null => {
      if (slot === dataIndex) return facts.data === 'completed' ? dataView.issued! : null;
      if (slot >= k) {
        const view = parityViews[slot - k]!;
        return view.known ? view.completedParity! : null;
      }
      return inPlace[slot] ?? null;
    };
    newRow = rows(source);
  } else {
    const oldRow = rows((slot) => inPlace[slot] ?? null);
    if (oldRow) {
      let newData: Buffer;
      if (facts.data === 'completed') {
        newData = dataView.issued!;
      } else {
        assert(delta, `a roll-forward without the data side's copy has the delta (${decision.rule})`);
        newData = Buffer.from(oldRow[dataIndex]!);
        xorInto(newData, delta);
      }
      newRow = oldRow.map((chunk, i) => i === dataIndex ? newData : chunk);
    }
  }
  if (!newRow && !force) {
    throw new JraidError('E_ARRAY_DIRTY', `stripe ${stripe}: a member read failed where an interrupted update was writing, on top of a lost member: some of its blocks cannot be rebuilt`, {
      hint: 'run jraid recover --force to record those blocks bad (they read as EIO until rewritten)',
      details: { stripes: [stripe] },
    });
  }
  if (!newRow) {
    // More blocks unknown than parity rebuilds (a read error on top of a lost member): the data
    // blocks that cannot be known are given up (bad-block list, EIO until rewritten) and taken as
    // zeros; the update's new data where known; parity made to match.
    let newData: Buffer | undefined;
    if (facts.data === 'completed') newData = dataView.issued!;
    else if (decision.action !== 'failed' && !applyMayHaveStarted && inPlace[dataIndex] && delta) {
      newData = Buffer.from(inPlace[dataIndex]!);
      xorInto(newData, delta);
    }
    newRow = Array.from({ length: k }, (_, slot) => {
      if (slot === dataIndex && newData) return newData;
      if (slot !== dataIndex && inPlace[slot]) return inPlace[slot]!;
      const range: BadBlockRange = { firstBlock: (stripe * g.stripeDataBytes + slot * g.chunkSizeBytes) / B + rowFirst, blockCount: rowCount, reason: 'lost' };
      (array.readableDisk(map.dataRoles[slot]!, stripe) ? givenUp.unreadableBlocks : givenUp.lostBlocks).push(range);
      return Buffer.alloc(rowCount * B);
    });
  }
  const parity = parityOfRows(newRow, map, rowCount);
  const writes: { view: SideView; bytes: Buffer }[] = [{ view: dataView, bytes: newRow[dataIndex]! }, { view: parityViews[0]!, bytes: parity.p }];
  if (hasQ) writes.push({ view: parityViews[1]!, bytes: parity.q! });
  // Present members whose blocks were given up get the zeros too (rewriting a bad sector repairs it).
  map.dataRoles.forEach((role, slot) => {
    if (slot === dataIndex || inPlace[slot]) return;
    const disk = array.readableDisk(role, stripe);
    if (disk) writes.push({ view: { side: 'data', role, slot, disk, known: false, dataCompleted: false }, bytes: newRow![slot]! });
  });
  for (const { view, bytes } of writes) {
    if (!view.disk) continue;
    try {
      await view.disk.writeData(memberDataOffsetBytes, bytes);
    } catch (error) {
      if (!(error instanceof DeviceIoError)) throw error;
      await array.writeIntent.markStripe(stripe);
      await array.failMember(array.indexOfDisk(view.disk), `write error during recovery: ${error.message}`);
    }
  }
  return decision.rule;
}
