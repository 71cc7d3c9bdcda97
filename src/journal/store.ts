// Where journal records live. Each record is written to `copies` members (parity count + 1:
// the journal stays readable after losing as many members as the level survives), starting
// at role generation mod n and skipping members that are not in sync (assembly reads the
// journal from in-sync members only), so consecutive records land on different members. A
// member whose record write fails is failed, and the record goes to the next in-sync member
// instead, within the same write: the newest record keeps its copies. Each member's journal
// region holds copies + 1 slots and record g uses slot g mod (copies + 1): writing g never
// overwrites g - 1, so a torn newest record always leaves its predecessor intact. On restart
// the newest valid generation wins.

import { DeviceIoError } from '../device/block-device.js';
import { decodeJournalRecord, peekRecordSizeBytes, type JournalRecord } from '../format/journal-record.js';
import type { JournalStore } from './manager.js';
import type { JournalMember, JournalMemberSet } from './members.js';
import { JraidError } from '../errors.js';
import { BLOCK_SIZE_BYTES, alignDown, alignUp, assert } from '../units.js';
import { findRegion } from '../format/layout.js';
import type { Superblock } from '../format/superblock.js';
import { parityCount } from '../format/types.js';

export interface JournalLayout {
  copies: number;
  slotsPerMember: number;
  slotBytes: number;
  /** The cluster node whose area this is (0 outside cluster mode), and where that area starts in the region. */
  node: number;
  areaOffsetBytes: number;
}

type LayoutSource = Pick<Superblock, 'level' | 'raidDevices' | 'regions' | 'clusterNodes'>;

export function journalLayout(array: { sb: LayoutSource }, node = 0): JournalLayout {
  return journalLayoutFor(array.sb, node);
}

/** Node areas the journal region is cut into: one per cluster node id (format 1.2), else one. */
export function journalAreas(sb: Pick<Superblock, 'clusterNodes'>): number {
  return Math.max(1, sb.clusterNodes ?? 0);
}

/**
 * The journal layout a superblock implies for cluster node `node` (docs/FORMAT.md, "Journal
 * region"): the region is cut into one area per node, and each area into copies + 1 slots.
 */
export function journalLayoutFor(sb: LayoutSource, node = 0): JournalLayout {
  const areas = journalAreas(sb);
  assert(Number.isInteger(node) && node >= 0 && node < areas, `journal area of node ${node} of ${areas}`);
  const copies = Math.min(parityCount(sb.level) + 1, sb.raidDevices);
  const slotsPerMember = copies + 1;
  const regionBytes = findRegion(sb.regions, 'journal')?.sizeBytes ?? 0;
  const areaBytes = alignDown(Math.floor(regionBytes / areas), BLOCK_SIZE_BYTES);
  const slotBytes = alignDown(Math.floor(areaBytes / slotsPerMember), BLOCK_SIZE_BYTES);
  assert(slotBytes >= 64 * 1024, 'journal slots of at least 64 KiB');
  return { copies, slotsPerMember, slotBytes, node, areaOffsetBytes: node * areaBytes };
}

/** Where slot `slot` starts in a member's journal region (inside the layout's node area). */
export function slotOffsetBytes(layout: JournalLayout, slot: number): number {
  assert(Number.isInteger(slot) && slot >= 0 && slot < layout.slotsPerMember, `slot ${slot} of ${layout.slotsPerMember}`);
  return layout.areaOffsetBytes + slot * layout.slotBytes;
}

/** The slot record `generation` goes to: writing g never overwrites g - 1. */
export function slotOfGeneration(layout: JournalLayout, generation: number): number {
  return generation % layout.slotsPerMember;
}

export class MemberJournalStore<M extends JournalMember = JournalMember> implements JournalStore {
  private readonly array: JournalMemberSet<M>;
  readonly layout: JournalLayout;
  /** Record writes that reached disk, per member path (for stats and tests). */
  readonly writesByPath = new Map<string, number>();

  constructor(array: JournalMemberSet<M>, node = 0) {
    this.array = array;
    this.layout = journalLayout(array, node);
  }

  /** In-sync roles in the order record `generation` tries them: rotating from generation mod n. */
  candidates(generation: number): { role: number; disk: M }[] {
    const n = this.array.sb.raidDevices;
    const out: { role: number; disk: M }[] = [];
    for (let step = 0; step < n; step++) {
      const role = (generation + step) % n;
      const index = this.array.memberIndexForRole(role);
      const disk = index >= 0 && this.array.sb.members[index]!.state === 'active' ? this.array.disks.get(index) : undefined;
      if (disk) out.push({ role, disk });
    }
    return out;
  }

  /** Roles that get record `generation` when every write succeeds. */
  targets(generation: number): { role: number; disk: M }[] {
    return this.candidates(generation).slice(0, this.layout.copies);
  }

  async writeRecord(generation: number, bytes: Buffer): Promise<void> {
    assert(bytes.length <= this.layout.slotBytes, 'record fits a slot');
    const padded = Buffer.alloc(alignUp(bytes.length, BLOCK_SIZE_BYTES));
    bytes.copy(padded);
    const slotOffset = slotOffsetBytes(this.layout, slotOfGeneration(this.layout, generation));
    const tried = new Set<M>();
    let written = 0;
    // Bounded: each round tries members not tried before, so at most one round per member.
    for (let round = 0; round <= this.array.sb.raidDevices && written < this.layout.copies; round++) {
      const targets = this.candidates(generation).filter(({ disk }) => !tried.has(disk)).slice(0, this.layout.copies - written);
      if (targets.length === 0) break;
      const failed: { disk: M; error: DeviceIoError }[] = [];
      await Promise.all(targets.map(async ({ disk }) => {
        tried.add(disk);
        try {
          // The barrier: the record alone is made durable (O_DSYNC), not the member's data
          // written since its last flush; the manager flushes data where a promise needs it.
          await disk.writeRegionDurable('journal', slotOffset, padded);
          written++;
          this.writesByPath.set(disk.path, (this.writesByPath.get(disk.path) ?? 0) + 1);
        } catch (error) {
          if (!(error instanceof DeviceIoError)) throw error;
          failed.push({ disk, error });
        }
      }));
      // Durably faulty before the record counts: the next round's candidates leave it out.
      for (const { disk, error } of failed) await this.array.failMember(this.array.indexOfDisk(disk), `journal write failed: ${error.message}`);
    }
    if (written === 0) {
      throw new JraidError('E_ARRAY_FAILED', 'no member took the journal record: writes stop', { hint: 'too many members failed; nothing acknowledged was lost' });
    }
  }

  flushMembers(): Promise<void> {
    return this.array.flushMembers();
  }
}

export interface RecordCopy {
  path: string;
  slot: number;
  generation: number | null;
  clean: boolean | null;
  stripes: number;
  problem: string | null;
}

export interface NewestRecord {
  record: JournalRecord | undefined;
  copies: RecordCopy[];
}

/** What one slot of one member's journal region holds: a record of this array, or why it is unusable. */
export type SlotContent =
  | { slot: number; record: JournalRecord; problem: null }
  | { slot: number; record: null; problem: string };

/**
 * Reads every slot of one member's journal region (the one slot walk: assembly, examine). Empty
 * slots and records of another array (left by an earlier array on this member) are left out.
 */
export async function readJournalSlots(member: Pick<JournalMember, 'readRegion'>, arrayUuid: Buffer, layout: JournalLayout): Promise<SlotContent[]> {
  const slots: SlotContent[] = [];
  for (let slot = 0; slot < layout.slotsPerMember; slot++) {
    const at = slotOffsetBytes(layout, slot);
    const head = Buffer.alloc(BLOCK_SIZE_BYTES);
    try {
      await member.readRegion('journal', at, head);
    } catch (error) {
      if (!(error instanceof DeviceIoError)) throw error;
      slots.push({ slot, record: null, problem: `unreadable: ${error.message}` });
      continue;
    }
    const size = peekRecordSizeBytes(head);
    if (size === undefined) continue; // an empty slot
    if (size > layout.slotBytes) {
      slots.push({ slot, record: null, problem: `record size ${size} does not fit its slot` });
      continue;
    }
    let bytes = head;
    if (size > head.length) {
      bytes = Buffer.alloc(alignUp(size, BLOCK_SIZE_BYTES));
      try {
        await member.readRegion('journal', at, bytes);
      } catch (error) {
        if (!(error instanceof DeviceIoError)) throw error;
        slots.push({ slot, record: null, problem: `unreadable: ${error.message}` });
        continue;
      }
    }
    const decoded = decodeJournalRecord(bytes);
    if (!decoded.ok) {
      slots.push({ slot, record: null, problem: decoded.reason });
      continue;
    }
    if (!decoded.value.arrayUuid.equals(arrayUuid)) continue;
    slots.push({ slot, record: decoded.value, problem: null });
  }
  return slots;
}

/** Reads every slot of every given member; the newest valid record of this array wins. */
export async function readJournal(disks: readonly JournalMember[], arrayUuid: Buffer, layout: JournalLayout): Promise<NewestRecord> {
  let newest: JournalRecord | undefined;
  const copies: RecordCopy[] = [];
  for (const disk of disks) {
    for (const { slot, record, problem } of await readJournalSlots(disk, arrayUuid, layout)) {
      copies.push(record
        ? { path: disk.path, slot, generation: record.generation, clean: record.clean, stripes: record.entries.length, problem: null }
        : { path: disk.path, slot, generation: null, clean: null, stripes: 0, problem });
      if (record && (!newest || record.generation > newest.generation)) newest = record;
    }
  }
  return { record: newest, copies };
}

/** Blanks every slot of every node area of a member's journal region, so no record older than the array's stays there. */
export async function clearJournalSlots(member: JournalMember, sb: LayoutSource): Promise<void> {
  const empty = Buffer.alloc(BLOCK_SIZE_BYTES);
  for (let node = 0; node < journalAreas(sb); node++) {
    const layout = journalLayoutFor(sb, node);
    for (let slot = 0; slot < layout.slotsPerMember; slot++) await member.writeRegion('journal', slotOffsetBytes(layout, slot), empty);
  }
  await member.flush();
}
