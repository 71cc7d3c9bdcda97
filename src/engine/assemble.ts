// Assembling an array from its members: read every superblock, group by array uuid, order by
// role, tell fresh from stale by event count, and decide whether the array can run.
//
// Stale rule (docs/FORMAT.md, Events): a member that the newest superblock marks faulty and that
// is behind it, or any member with a role two or more events behind the newest, missed writes;
// it is left out and named in the report. A member one behind and still listed in sync missed
// only the last superblock commit (a crash during it) and is taken. --force takes stale members
// back when the array cannot run without them, and says so: their blocks may be older.

import { DeviceIoError, type BlockDevice } from '../device/block-device.js';
import { probeMember, requireMemberPath } from '../device/member-path.js';
import { openMemberDevice } from '../device/open-member.js';
import { JraidError } from '../errors.js';
import type { Superblock } from '../format/superblock.js';
import { formatUuid } from '../format/uuid.js';
import { MemberDisk } from './member-disk.js';
import { exclusiveHolders, lockAll, type LockedMembers } from './member-locks.js';
import type { HolderProcess } from '../device/lock.js';
import { RaidArray, type ArrayEvent, type JournalOptions } from './raid-array.js';
import { readSuperblocks } from './superblock-io.js';
import { recoverArray, type RecoveryOutcome } from './recover.js';
import { recoveryNeeded, type RecoveryAction } from '../journal/recovery-plan.js';

export interface AssembleOptions {
  readOnly?: boolean;
  /** Take stale members back when needed, and start a dirty degraded array (as mdadm --force). */
  force?: boolean;
  /** Only the second half of force: recover a dirty degraded array, recording unsafe blocks bad. */
  forceRecovery?: boolean;
  /** Paths that do not exist are reported missing instead of refused (config-file assembly). */
  skipMissingPaths?: boolean;
  /** Journal manager tuning (dirty-log): idle period and its timer, clean batch; test-only barrier removal. */
  journal?: JournalOptions;
  /** Report progress of a recovery run during assembly. */
  onRecoveryProgress?: (progress: { doneBytes: number; totalBytes: number }) => void;
  /** 'none' for commands that only look (detail, examine). Defaults: exclusive, or shared when readOnly. */
  lock?: 'exclusive' | 'shared' | 'none';
  /**
   * Cluster mode (seed 004): this node's id. The member lock is taken as a cluster node's, the
   * array writes this node's journal area and locks parity. `beforeRecovery` runs once the array
   * is open and before its journal area is read and recovered (the daemon takes its node lock there).
   */
  cluster?: { node: number; beforeRecovery?: (array: RaidArray) => Promise<void> };
  onEvent?: (event: ArrayEvent) => void;
  /** The uuid a config file's ARRAY line gives: members of another array are refused before anything is written. */
  expectedUuid?: ExpectedUuid;
  /** Wraps each member's device as it is opened (the daemon's write fence); underlyingFile still finds the file. */
  wrapDevice?: (device: BlockDevice) => BlockDevice;
}

/** An ARRAY line's UUID=, and where it was read (`file:line`). */
export interface ExpectedUuid {
  uuid: string;
  configFile: string;
  line: number;
  name: string;
}

/** Refuses members whose array uuid is not the one the config file's line gives. */
export function checkExpectedUuid(expected: ExpectedUuid | undefined, arrayUuid: Buffer): void {
  if (!expected) return;
  const actual = formatUuid(arrayUuid);
  if (actual === expected.uuid) return;
  throw new JraidError('E_CONFIG', `${expected.configFile}:${expected.line}: ARRAY ${expected.name} says UUID=${expected.uuid}, but its members carry array uuid ${actual}`, {
    path: expected.configFile,
    hint: 'correct UUID= (or devices=) on that line so that it names the members of one array',
    details: { configUuid: expected.uuid, membersUuid: actual, line: expected.line },
  });
}

export interface AssembledMember {
  path: string;
  index: number;
  role: number | null;
  state: string;
  events: number;
  /** Why this member is not in use, when it is not. */
  excluded?: string;
  /** Problem with the primary superblock copy when the secondary was used. */
  primaryProblem?: string;
}

export interface AssembleReport {
  arrayUuid: string;
  name: string;
  events: number;
  members: AssembledMember[];
  missingRoles: number[];
  missingPaths: string[];
  stale: string[];
  forced: string[];
  notes: string[];
  /** What recovery found and did at assembly (dirty journal record, dirty flag). */
  recovery: RecoveryOutcome | { action: RecoveryAction; performed: false } | undefined;
  /** Opened without a lock (detail): the processes that held the array for writing meanwhile. */
  holders: HolderProcess[];
}

export interface Assembled {
  array: RaidArray;
  report: AssembleReport;
  /** Every device given, in use or left out, with its member-table index. */
  candidates: { index: number; device: BlockDevice }[];
  release(): Promise<void>;
}

export async function assembleArray(paths: string[], options: AssembleOptions = {}): Promise<Assembled> {
  if (paths.length === 0) throw new JraidError('E_USAGE', 'no member paths given', { hint: 'name the members, or an array from the config file' });
  const present: string[] = [];
  const missingPaths: string[] = [];
  const identities = new Map<string, string>();
  for (const path of paths) {
    const probe = await probeMember(path);
    if (probe.kind === 'missing' && options.skipMissingPaths) {
      missingPaths.push(path);
      continue;
    }
    requireMemberPath(probe, { missingHint: 'check the path; a member that is gone can be left out and the array runs degraded' });
    const twin = identities.get(probe.identity);
    if (twin !== undefined) throw new JraidError('E_MEMBER_DUPLICATE', `${path} and ${twin} are the same member${probe.backing ? ` (${probe.backing.path})` : ''}`, { path, hint: 'list each member once' });
    identities.set(probe.identity, path);
    present.push(path);
  }
  if (present.length === 0) {
    throw new JraidError('E_MEMBER_MISSING', `none of the array's members exists: ${missingPaths.join(', ')}`, {
      path: missingPaths[0], hint: 'check the paths in the config file (attach the devices, or fix devices=)', details: { missingPaths },
    });
  }
  const readOnly = options.readOnly ?? false;
  const devices: BlockDevice[] = [];
  let locked: LockedMembers | undefined;
  try {
    const lockMode = options.cluster ? 'cluster' : options.lock ?? (readOnly ? 'shared' : 'exclusive');
    for (const path of present) {
      const opened = await openMemberDevice(path, { readOnly, exclusive: lockMode === 'exclusive' });
      devices.push(options.wrapDevice ? options.wrapDevice(opened) : opened);
    }
    if (lockMode !== 'none') locked = await lockAll(devices, lockMode);
    const assembled = await assembleDevices(devices, options);
    assembled.report.missingPaths.push(...missingPaths);
    if (lockMode === 'none') assembled.report.holders = await exclusiveHolders(devices);
    const heldLock = locked;
    return {
      ...assembled,
      release: async () => {
        heldLock?.release();
        await assembled.release();
      },
    };
  } catch (error) {
    locked?.release();
    await Promise.all(devices.map((device) => device.close().catch(() => {})));
    throw error;
  }
}

interface Candidate {
  device: BlockDevice;
  sb: Superblock;
  primaryProblem: string | undefined;
}

/** Assembles already-open devices (files, or memory devices in tests). Closes nothing on failure. */
export async function assembleDevices(devices: BlockDevice[], options: AssembleOptions = {}): Promise<Assembled> {
  const candidates: Candidate[] = [];
  for (const device of devices) {
    const read = await readSuperblocks(device).catch((error: unknown) => {
      if (!(error instanceof DeviceIoError)) throw error;
      throw new JraidError('E_IO', `${device.path}: its superblocks cannot be read (${error.message})`, {
        path: device.path, hint: 'leave this member out to run degraded, then rebuild onto a replacement',
      });
    });
    if (!read.superblock) {
      if (read.hasMagic) {
        throw new JraidError('E_MEMBER_CORRUPT', `${device.path}: both superblock copies are damaged (primary: ${read.primaryProblem}; secondary: ${read.secondaryProblem})`, {
          path: device.path, hint: 'leave this member out to run degraded, then rebuild onto it',
        });
      }
      throw new JraidError('E_MEMBER_NOT_JRAID', `${device.path} carries no jraid superblock`, { path: device.path, hint: 'check the path, or create an array on it' });
    }
    const neededBytes = Math.max(...read.superblock.regions.map((region) => region.offsetBytes + region.sizeBytes));
    if (device.sizeBytes < neededBytes) {
      throw new JraidError('E_MEMBER_CORRUPT', `${device.path} is ${device.sizeBytes} bytes but its superblock describes ${neededBytes} (a truncated image?)`, {
        path: device.path, hint: 'restore the member to its full size, or leave it out and rebuild',
      });
    }
    candidates.push({ device, sb: read.superblock, primaryProblem: read.primaryProblem });
  }

  // One array only: the uuid most members carry (the first member's on a tie).
  const counts = new Map<string, number>();
  for (const candidate of candidates) counts.set(candidate.sb.arrayUuid.toString('hex'), (counts.get(candidate.sb.arrayUuid.toString('hex')) ?? 0) + 1);
  let chosen = candidates[0]!.sb.arrayUuid.toString('hex');
  for (const [uuid, count] of counts) if (count > counts.get(chosen)!) chosen = uuid;
  const foreign = candidates.find((candidate) => candidate.sb.arrayUuid.toString('hex') !== chosen);
  if (foreign) {
    const sample = candidates.find((candidate) => candidate.sb.arrayUuid.toString('hex') === chosen)!;
    throw new JraidError('E_MIXED_ARRAYS',
      `${foreign.device.path} belongs to array ${describe(foreign.sb)}, not to ${describe(sample.sb)} like ${sample.device.path}`, {
        path: foreign.device.path, hint: 'leave it out: assemble the members of one array at a time',
      });
  }
  checkExpectedUuid(options.expectedUuid, candidates.find((candidate) => candidate.sb.arrayUuid.toString('hex') === chosen)!.sb.arrayUuid);
  const memberUuids = new Map<string, string>();
  for (const candidate of candidates) {
    const key = candidate.sb.memberUuid.toString('hex');
    const twin = memberUuids.get(key);
    if (twin) {
      throw new JraidError('E_MEMBER_DUPLICATE', `${candidate.device.path} and ${twin} carry the same member uuid (a copied image?)`, {
        path: candidate.device.path, hint: 'use only one of them',
      });
    }
    memberUuids.set(key, candidate.device.path);
  }

  const newest = candidates.reduce((best, candidate) => candidate.sb.events > best.sb.events ? candidate : best);
  const template: Superblock = { ...newest.sb, members: newest.sb.members.map((member) => ({ ...member })) };
  const report: AssembleReport = {
    arrayUuid: formatUuid(template.arrayUuid), name: template.name, events: template.events,
    members: [], missingRoles: [], missingPaths: [], stale: [], forced: [], notes: [], recovery: undefined, holders: [],
  };
  const disks = new Map<number, MemberDisk>();
  const indexed: { index: number; device: BlockDevice }[] = [];
  const staleCandidates: { candidate: Candidate; index: number }[] = [];
  for (const candidate of candidates) {
    const index = template.members.findIndex((member) => member.uuid.equals(candidate.sb.memberUuid));
    if (index < 0) {
      throw new JraidError('E_MEMBER_UNKNOWN', `${candidate.device.path} was removed from array ${describe(template)} (events ${candidate.sb.events} < ${template.events})`, {
        path: candidate.device.path, hint: 'leave it out, or add it back with jraid add',
      });
    }
    indexed.push({ index, device: candidate.device });
    const entry = template.members[index]!;
    const member: AssembledMember = { path: candidate.device.path, index, role: entry.role, state: entry.state, events: candidate.sb.events };
    if (candidate.primaryProblem) {
      member.primaryProblem = candidate.primaryProblem;
      // A read-only command writes nothing: repairing the copy is a writing command's job.
      report.notes.push(`${candidate.device.path}: primary superblock is bad (${candidate.primaryProblem}); ${options.readOnly
        ? 'using the secondary copy; a writing command (jraid assemble) rewrites it'
        : 'rewritten from the secondary copy'}`);
    }
    report.members.push(member);
    if (entry.state === 'faulty') {
      const behind = candidate.sb.events < template.events;
      member.excluded = behind ? `stale: events ${candidate.sb.events} < ${template.events}` : 'marked faulty';
      if (behind) {
        report.stale.push(candidate.device.path);
        staleCandidates.push({ candidate, index });
      }
      continue;
    }
    // The events rule (docs/FORMAT.md, Events): one behind missed at most the last superblock
    // commit, in a crash; two or more behind missed a commit that finished everywhere else, and
    // so the writes after it. A spare holds no data: its events do not matter.
    if (entry.role !== null && candidate.sb.events + 1 < template.events) {
      member.excluded = `stale: events ${candidate.sb.events} < ${template.events}`;
      report.stale.push(candidate.device.path);
      staleCandidates.push({ candidate, index });
      report.notes.push(`${candidate.device.path} is stale (events ${candidate.sb.events} < ${template.events}): it missed writes and is left out; jraid re-add brings it back`);
      continue;
    }
    const disk = new MemberDisk(candidate.device, candidate.sb);
    disk.primaryProblem = candidate.primaryProblem;
    disks.set(index, disk);
  }

  const missingRoles = () => {
    const missing: number[] = [];
    for (let role = 0; role < template.raidDevices; role++) {
      const index = template.members.findIndex((member) => member.role === role);
      if (index < 0 || !disks.has(index) || template.members[index]!.state === 'faulty') missing.push(role);
    }
    return missing;
  };
  const tolerance = template.level === 6 ? 2 : 1;
  // A member still being rebuilt is not in sync either (past its checkpoint it holds nothing):
  // missing and rebuilding roles together beyond the level's redundancy leave stripes that no
  // member can give, and nothing in sync to read the journal, bitmap and bad-block list from.
  const rebuildingRoles = template.members.filter((member, index) => member.role !== null && member.state === 'rebuilding' && disks.has(index)).map((member) => member.role!);
  if (missingRoles().length + rebuildingRoles.length > tolerance && options.force) {
    // Take stale members back, freshest first, until the array can run.
    staleCandidates.sort((a, b) => b.candidate.sb.events - a.candidate.sb.events);
    for (const { candidate, index } of staleCandidates) {
      if (missingRoles().length + rebuildingRoles.length <= tolerance) break;
      if (template.members[index]!.role === null) continue;
      template.members[index]!.state = 'active';
      template.members[index]!.recoveryOffsetBytes = 0;
      disks.set(index, new MemberDisk(candidate.device, candidate.sb));
      report.forced.push(candidate.device.path);
      const member = report.members.find((m) => m.index === index)!;
      member.state = 'active';
      delete member.excluded;
      report.notes.push(`${candidate.device.path}: forced back in although stale (events ${candidate.sb.events} < ${template.events}); blocks written since it left may read old`);
    }
    report.stale = report.stale.filter((path) => !report.forced.includes(path));
  }
  report.missingRoles = missingRoles();
  if (report.missingRoles.length > tolerance) {
    const staleHint = report.stale.length > 0 ? `; stale members (${report.stale.join(', ')}) can be forced back with --force` : '';
    throw new JraidError('E_ARRAY_FAILED',
      `array ${describe(template)} cannot run: ${report.missingRoles.length} of ${template.raidDevices} raid devices missing (roles ${report.missingRoles.join(', ')}), RAID-${template.level} survives ${tolerance}`, {
        hint: `give the missing members${staleHint}`,
        details: { missingRoles: report.missingRoles, stale: report.stale },
      });
  }
  if (report.missingRoles.length + rebuildingRoles.length > tolerance) {
    throw new JraidError('E_ARRAY_FAILED',
      `array ${describe(template)} cannot run: roles ${report.missingRoles.join(', ')} missing and roles ${rebuildingRoles.join(', ')} still being rebuilt, RAID-${template.level} survives ${tolerance} out of sync`, {
        hint: 'give the missing members (a stale one can be forced back with --force); the rebuild cannot finish without them',
        details: { missingRoles: report.missingRoles, rebuildingRoles, stale: report.stale },
      });
  }
  for (const role of report.missingRoles) report.notes.push(missingRoleNote(role));
  if (options.cluster) checkClusterNode(template, options.cluster.node);
  const array = new RaidArray(template, disks, { readOnly: options.readOnly ?? false, onEvent: options.onEvent, clusterNode: options.cluster?.node });
  // A cluster node reads its journal area only once it holds its node lock (no other node recovers that area then).
  await options.cluster?.beforeRecovery?.(array);
  await array.loadRegions();
  // Members that missed the last superblock update (a crash between copies of a state change)
  // get it now: otherwise losing the members that have it would bring the older state back.
  const needsRewrite = report.forced.length > 0
    || [...disks.values()].some((disk) => disk.primaryProblem !== undefined || disk.sb.events !== template.events);
  if (needsRewrite && !array.readOnly) {
    await array.commitSuperblocks(() => {});
    report.events = array.sb.events;
  }
  const needed = recoveryNeeded(array);
  if (needed !== 'none' && array.readOnly) {
    report.recovery = { action: needed, performed: false };
    array.markUnrecovered(needed);
    report.notes.push(needed === 'dirty-stripes'
      ? `the array was not shut down cleanly: ${array.journalRecord!.entries.length} stripe(s) await recovery`
      : needed === 'data-journal'
        ? `the array was not shut down cleanly: ${array.dataJournalLive} interrupted update(s) in the data journals await recovery`
        : 'the array was not shut down cleanly: a full resync awaits');
  } else if (needed !== 'none') {
    const outcome = await recoverArray(array, { force: options.force || options.forceRecovery, onProgress: options.onRecoveryProgress });
    report.recovery = outcome;
    report.notes.push(describeRecovery(outcome));
  }
  if (!array.readOnly) array.startJournal(options.journal);
  return {
    array,
    report,
    candidates: indexed,
    release: async () => {
      await Promise.all(devices.map((device) => device.close().catch(() => {})));
    },
  };
}

/** A cluster node needs an array made with node journal areas (format 1.2), and an id among them. */
function checkClusterNode(sb: Superblock, node: number): void {
  const nodes = sb.clusterNodes ?? 0;
  if (nodes === 0) {
    throw new JraidError('E_USAGE', `array ${describe(sb)} has no cluster node journal areas: it cannot be served in cluster mode`, {
      hint: 'create the array with --cluster-nodes N to serve it from several nodes',
    });
  }
  if (!Number.isInteger(node) || node < 0 || node >= nodes) {
    throw new JraidError('E_USAGE', `--node-id ${node} is not a node of array ${describe(sb)}: it has node ids 0 to ${nodes - 1}`, {
      hint: `pick a node id below ${nodes} that no other node uses`,
    });
  }
}

/** The note for a role no member serves (describeArray recomputes these as the array changes). */
export function missingRoleNote(role: number): string {
  return `role ${role} is missing: the array runs degraded`;
}

export function describeRecovery(outcome: RecoveryOutcome): string {
  const what = outcome.action === 'full-resync'
    ? `full resync of ${outcome.stripes.length} stripe(s)`
    : outcome.action === 'data-journal'
      ? `settled ${outcome.dataJournal?.updates ?? 0} interrupted update(s) from the data journals, ${outcome.dataJournal?.rolledForward ?? 0} rolled forward`
      : `resynced ${outcome.stripes.length} dirty stripe(s) from journal generation ${outcome.generation}`;
  const torn = outcome.tornBlocks.length ? `; ${outcome.tornBlocks.length} torn block range(s) recorded bad` : '';
  const lost = outcome.lostBlocks.length ? `; ${outcome.lostBlocks.length} lost chunk(s) recorded bad` : '';
  const unreadable = outcome.unreadableBlocks.length ? `; ${outcome.unreadableBlocks.length} unreadable block(s) in rows being written recorded bad` : '';
  return `recovered from an unclean shutdown: ${what} in ${outcome.seconds.toFixed(2)} s${torn}${lost}${unreadable}`;
}

function describe(sb: Superblock): string {
  return `${sb.name || '(unnamed)'} (uuid ${formatUuid(sb.arrayUuid)})`;
}
