// Plain-object views of an array and of one member, for `detail` and `examine`. The CLI
// prints them as tables or JSON; their keys are the stable --json schema (man page, JSON).

import { FLAG_DIRTY, isFreeSlot, type Superblock } from '../format/superblock.js';
import { formatUuid } from '../format/uuid.js';
import { FileDevice } from '../device/file-device.js';
import { JraidError } from '../errors.js';
import { missingRoleNote, type AssembleReport } from '../engine/assemble.js';
import type { ArrayState, RaidArray } from '../engine/raid-array.js';
import { readSuperblocks } from '../engine/superblock-io.js';
import { journalAreas, journalLayoutFor, readJournalSlots } from '../journal/store.js';
import { MemberDisk } from '../engine/member-disk.js';

export interface MemberDetail {
  number: number;
  role: number | null;
  state: string;
  path: string | null;
  uuid: string;
  events: number | null;
  recoveryOffsetBytes: number;
  readErrorsCorrected: number;
}

/** Work on the array by some process (this daemon, or another that holds the array's lock). */
export interface Activity {
  /** The jraid command doing it: scrub, rebuild, re-add, daemon, write, ... */
  operation: string;
  pid: number;
  command: string;
  /** Live progress, when the work runs in this process. */
  progress?: { doneBytes: number; totalBytes: number };
  /** When it started (with progress: the rate and ETA). */
  startedAtMs?: number;
}

/** A scrub or rebuild that is under way: running now, or stopped part-way (resumable). */
export interface WorkStatus {
  state: 'running' | 'interrupted';
  percent: number;
  operation: string | null;
  pid: number | null;
  command: string | null;
  /** Bytes per second since it started, and seconds left at that rate (known for work running in this process). */
  rateBytesPerSecond: number | null;
  etaSeconds: number | null;
}

export interface ArrayDetail {
  name: string;
  uuid: string;
  level: number;
  layout: string;
  chunkSizeBytes: number;
  raidDevices: number;
  totalDevices: number;
  arraySizeBytes: number;
  memberDataSizeBytes: number;
  memberSizeBytes: number;
  consistencyPolicy: string;
  state: ArrayState;
  clean: boolean;
  events: number;
  createdAt: string;
  updatedAt: string;
  activeDevices: number;
  workingDevices: number;
  failedDevices: number;
  spareDevices: number;
  resyncOffsetBytes: number;
  scrubOffsetBytes: number;
  /** The dirty-log journal's newest record (null for the resync policy). */
  journal: { generation: number | null; clean: boolean; dirtyStripes: number[] } | null;
  /** The journal policy's data journals (null for the other policies). */
  dataJournal: DataJournalDetail | null;
  /** Array blocks recorded bad (read as EIO until rewritten). */
  badBlocks: { firstBlock: number; blockCount: number; reason: string }[];
  /** Percent of the rebuild done on the member being rebuilt, or null. */
  rebuildPercent: number | null;
  rebuildStatus: WorkStatus | null;
  scrubStatus: WorkStatus | null;
  members: MemberDetail[];
  notes: string[];
}

/**
 * The array as it is now. Members in use are described from the live array (path, the events
 * on their own superblock); members left out at assembly from the assembly report. Notes about
 * missing roles are recomputed, so a long-lived array (the daemon) never shows stale ones.
 * `activities` say which work runs, so a checkpoint is not mistaken for an interruption.
 */
export function describeArray(array: RaidArray, report: AssembleReport, activities: Activity[] = []): ArrayDetail {
  const sb = array.sb;
  const leftOut = new Map(report.members.map((member) => [member.index, member]));
  const members: MemberDetail[] = sb.members.flatMap((entry, index) => {
    if (isFreeSlot(entry)) return []; // a removed member's slot, free for the next one
    const disk = array.disks.get(index);
    const seen = disk ? undefined : leftOut.get(index);
    let state: string = entry.state;
    if (!disk && !seen && entry.state !== 'faulty') state = 'missing';
    if (seen?.excluded?.startsWith('stale') && entry.role !== null && entry.state !== 'faulty') state = 'stale';
    return [{
      number: index,
      role: entry.role,
      state,
      path: disk?.path ?? seen?.path ?? null,
      uuid: formatUuid(entry.uuid),
      events: disk ? disk.sb.events : seen?.events ?? null,
      recoveryOffsetBytes: entry.recoveryOffsetBytes,
      readErrorsCorrected: entry.readErrorsCorrected,
    }];
  });
  const active = sb.members.filter((entry, index) => entry.role !== null && entry.state === 'active' && array.disks.has(index)).length;
  const spare = sb.members.filter((entry, index) => entry.state === 'spare' && array.disks.has(index)).length;
  const failed = sb.members.filter((entry) => entry.state === 'faulty' && !isFreeSlot(entry)).length;
  const rebuildingEntries = sb.members.filter((entry) => entry.state === 'rebuilding');
  const rebuilding = sb.members.filter((entry, index) => entry.state === 'rebuilding' && array.disks.has(index)).length;
  const rebuildPercent = rebuildingEntries.length > 0
    ? Math.floor((1000 * Math.min(...rebuildingEntries.map((entry) => entry.recoveryOffsetBytes))) / sb.dataSizeBytes) / 10
    : null;
  const missingNotes = new Set(Array.from({ length: sb.raidDevices }, (_, role) => missingRoleNote(role)));
  const notes = [...report.notes.filter((note) => !missingNotes.has(note)), ...array.lostRoles().map(missingRoleNote)];
  // The journal's own word, whatever else the array's state says (a dirty array may be degraded too).
  const journalClean = array.journal ? array.journal.clean : !(array.journalRecord && !array.journalRecord.clean);
  return {
    name: sb.name,
    uuid: formatUuid(sb.arrayUuid),
    level: sb.level,
    layout: sb.layout,
    chunkSizeBytes: sb.chunkSizeBytes,
    raidDevices: sb.raidDevices,
    totalDevices: new Set([...array.disks.keys(), ...leftOut.keys()]).size,
    arraySizeBytes: sb.arraySizeBytes,
    memberDataSizeBytes: sb.dataSizeBytes,
    memberSizeBytes: sb.memberSizeBytes,
    consistencyPolicy: sb.policy,
    state: array.state(),
    clean: !(sb.flags & FLAG_DIRTY) && (sb.policy !== 'dirty-log' || journalClean) && (array.dataJournalLive ?? 0) === 0,
    events: sb.events,
    createdAt: new Date(sb.createdAtMs).toISOString(),
    updatedAt: new Date(sb.updatedAtMs).toISOString(),
    activeDevices: active,
    workingDevices: active + spare + rebuilding,
    failedDevices: failed,
    spareDevices: spare,
    resyncOffsetBytes: sb.resyncOffsetBytes,
    scrubOffsetBytes: sb.scrubOffsetBytes,
    journal: sb.policy === 'dirty-log'
      ? {
        generation: array.journal ? array.journal.currentGeneration : array.journalRecord?.generation ?? null,
        clean: journalClean,
        dirtyStripes: array.journalRecord && !array.journalRecord.clean ? [...new Set(array.journalRecord.entries.map((entry) => entry.stripe))].sort((a, b) => a - b) : [],
      }
      : null,
    dataJournal: dataJournalDetail(array),
    badBlocks: array.badBlocks.ranges.map((range) => ({ ...range })),
    rebuildPercent,
    rebuildStatus: rebuildPercent === null ? null : workStatus(rebuildPercent, activities.find((work) => work.operation === 'rebuild' || work.operation === 're-add')),
    scrubStatus: scrubStatus(sb, activities.find((work) => work.operation === 'scrub')),
    members,
    notes,
  };
}

function workStatus(percent: number, running: Activity | undefined): WorkStatus {
  return running
    ? { state: 'running', percent, operation: running.operation, pid: running.pid, command: running.command, ...rateOf(running) }
    : { state: 'interrupted', percent, operation: null, pid: null, command: null, rateBytesPerSecond: null, etaSeconds: null };
}

function rateOf(work: Activity): { rateBytesPerSecond: number | null; etaSeconds: number | null } {
  if (!work.progress || work.startedAtMs === undefined) return { rateBytesPerSecond: null, etaSeconds: null };
  const seconds = (Date.now() - work.startedAtMs) / 1000;
  if (seconds <= 0 || work.progress.doneBytes <= 0) return { rateBytesPerSecond: null, etaSeconds: null };
  const rate = work.progress.doneBytes / seconds;
  return { rateBytesPerSecond: Math.round(rate), etaSeconds: Math.round((work.progress.totalBytes - work.progress.doneBytes) / rate) };
}

/** A running scrub (from its live progress, or its last checkpoint), or one stopped part-way. */
function scrubStatus(sb: Superblock, running: Activity | undefined): WorkStatus | null {
  if (!running && sb.scrubOffsetBytes === 0) return null;
  const fraction = running?.progress && running.progress.totalBytes > 0
    ? running.progress.doneBytes / running.progress.totalBytes
    : sb.scrubOffsetBytes / sb.dataSizeBytes;
  return workStatus(Math.floor(1000 * fraction) / 10, running);
}

export interface DataJournalDetail {
  /** The data-journal region on each member. */
  sizeBytes: number;
  /** The fullest member's journal in use, in percent (space of updates not yet checkpointed). */
  usedPercent: number;
  /** Writers are waiting for journal space right now. */
  full: boolean;
  writersWaiting: number;
  updatesInFlight: number;
  /** Interrupted updates in the journals that recovery has yet to settle. */
  pendingRecovery: number;
  /** The proxy managers serving failed members' roles (seed 002 claims 3, 19-21). */
  proxies: ProxyDetail[];
}

export interface ProxyDetail {
  role: number;
  /** The failed member whose manager the proxy replaced. */
  path: string;
  /** Updates in flight at the failure, handed over by the surviving managers. */
  published: number;
  /** Updates begun since, served by the proxy. */
  served: number;
  /** Stripes marked in the write-intent map for the member's return. */
  stripesMarked: number;
}

function dataJournalDetail(array: RaidArray): DataJournalDetail | null {
  if (array.sb.policy !== 'journal') return null;
  const journal = array.dataJournal;
  return {
    sizeBytes: array.sb.regions.find((region) => region.kind === 'data-journal')?.sizeBytes ?? 0,
    usedPercent: journal ? Math.round(journal.usedFraction * 1000) / 10 : 0,
    full: (journal?.waitingForRoom ?? 0) > 0,
    writersWaiting: journal?.waitingForRoom ?? 0,
    updatesInFlight: journal?.updatesInFlight ?? 0,
    pendingRecovery: array.dataJournalLive ?? 0,
    proxies: array.journalProxies.map((proxy) => ({
      role: proxy.role, path: proxy.path, published: proxy.stats.published, served: proxy.stats.served, stripesMarked: proxy.stripesMarked.size,
    })),
  };
}

export interface MemberExamination {
  path: string;
  /** The member is damaged beyond its superblock copies (truncated): shown, and the command fails. */
  problem: JraidError | null;
  superblock: SuperblockView | null;
  /** This member's journal slots (dirty-log policy). */
  journal: { slot: number; generation: number | null; clean: boolean | null; stripes: number[]; problem: string | null }[];
  primaryProblem: string | null;
  secondaryProblem: string | null;
}

export interface SuperblockView {
  version: string;
  arrayUuid: string;
  memberUuid: string;
  name: string;
  level: number;
  layout: string;
  consistencyPolicy: string;
  raidDevices: number;
  chunkSizeBytes: number;
  memberSizeBytes: number;
  dataSizeBytes: number;
  arraySizeBytes: number;
  events: number;
  flags: number;
  createdAt: string;
  updatedAt: string;
  thisIndex: number;
  role: number | null;
  state: string;
  resyncOffsetBytes: number;
  scrubOffsetBytes: number;
  writeIntentChunkBytes: number;
  regions: { kind: string; offsetBytes: number; sizeBytes: number }[];
  members: { number: number; uuid: string; role: number | null; state: string; recoveryOffsetBytes: number }[];
}

export function viewSuperblock(sb: Superblock): SuperblockView {
  const self = sb.members[sb.thisIndex]!;
  return {
    version: `${sb.versionMajor}.${sb.versionMinor}`,
    arrayUuid: formatUuid(sb.arrayUuid),
    memberUuid: formatUuid(sb.memberUuid),
    name: sb.name,
    level: sb.level,
    layout: sb.layout,
    consistencyPolicy: sb.policy,
    raidDevices: sb.raidDevices,
    chunkSizeBytes: sb.chunkSizeBytes,
    memberSizeBytes: sb.memberSizeBytes,
    dataSizeBytes: sb.dataSizeBytes,
    arraySizeBytes: sb.arraySizeBytes,
    events: sb.events,
    flags: sb.flags,
    createdAt: new Date(sb.createdAtMs).toISOString(),
    updatedAt: new Date(sb.updatedAtMs).toISOString(),
    thisIndex: sb.thisIndex,
    role: self.role,
    state: self.state,
    resyncOffsetBytes: sb.resyncOffsetBytes,
    scrubOffsetBytes: sb.scrubOffsetBytes,
    writeIntentChunkBytes: sb.writeIntentChunkBytes,
    regions: sb.regions.map((region) => ({ ...region })),
    members: sb.members.map((member, number) => ({ number, uuid: formatUuid(member.uuid), role: member.role, state: isFreeSlot(member) ? 'free' : member.state, recoveryOffsetBytes: member.recoveryOffsetBytes })),
  };
}

export async function examineMember(path: string): Promise<MemberExamination> {
  const device = await FileDevice.open(path, { readOnly: true });
  try {
    const read = await readSuperblocks(device);
    if (!read.superblock && !read.hasMagic) {
      throw new JraidError('E_MEMBER_NOT_JRAID', `${path} carries no jraid superblock`, { path });
    }
    const neededBytes = read.superblock ? Math.max(...read.superblock.regions.map((region) => region.offsetBytes + region.sizeBytes)) : 0;
    const truncated = device.sizeBytes < neededBytes;
    const journal = read.superblock && read.superblock.policy === 'dirty-log' && !truncated ? await examineJournal(device, read.superblock) : [];
    return {
      path,
      problem: truncated
        ? new JraidError('E_MEMBER_CORRUPT', `${path} is ${device.sizeBytes} bytes but its superblock describes ${neededBytes} (a truncated image?)`, {
          path, hint: 'restore the member to its full size, or leave it out and rebuild',
        })
        : null,
      superblock: read.superblock ? viewSuperblock(read.superblock) : null,
      journal,
      primaryProblem: read.primaryProblem ?? null,
      secondaryProblem: read.secondaryProblem ?? null,
    };
  } finally {
    await device.close();
  }
}

async function examineJournal(device: FileDevice, sb: Superblock): Promise<MemberExamination['journal']> {
  // A cluster array (format 1.2) has one area per node: slots are numbered on across areas.
  const slots: Awaited<ReturnType<typeof readJournalSlots>> = [];
  for (let node = 0; node < journalAreas(sb); node++) {
    const layout = journalLayoutFor(sb, node);
    for (const content of await readJournalSlots(new MemberDisk(device, sb), sb.arrayUuid, layout)) slots.push({ ...content, slot: node * layout.slotsPerMember + content.slot });
  }
  return slots.map(({ slot, record, problem }) => record
    ? { slot, generation: record.generation, clean: record.clean, stripes: record.entries.map((entry) => entry.stripe), problem: null }
    : { slot, generation: null, clean: null, stripes: [], problem });
}
