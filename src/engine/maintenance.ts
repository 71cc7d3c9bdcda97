// Member failures and their repair: fail-disk, add (spares), rebuild onto a replacement or a
// spare, re-add of a returning member (only the regions marked while it was away), all
// checkpointed in the superblocks so an interrupted rebuild resumes where it stopped.

import { DeviceIoError, type BlockDevice } from '../device/block-device.js';
import { FileDevice } from '../device/file-device.js';
import { probeMember, requireMemberPath } from '../device/member-path.js';
import { openMemberDevice, underlyingFile } from '../device/open-member.js';
import { releaseRebuild, tryClaimRebuild, unlockMember } from '../device/lock.js';
import { JraidError } from '../errors.js';
import { DATA_OFFSET_BYTES, regionsEndBytes } from '../format/layout.js';
import { freeSlot, isFreeSlot, type MemberEntry, type Superblock } from '../format/superblock.js';
import { MAX_MEMBERS } from '../format/types.js';
import { formatUuid, newUuid, parseUuid } from '../format/uuid.js';
import { BLOCK_SIZE_BYTES, assert } from '../units.js';
import type { Assembled } from './assemble.js';
import { refuseOccupied } from './create.js';
import { MemberDisk, zeroMetadata } from './member-disk.js';
import { lockAll } from './member-locks.js';
import type { RaidArray } from './raid-array.js';
import { readSuperblocks, writeSuperblocks } from './superblock-io.js';
import { clearJournalSlots } from '../journal/store.js';
import { decideReAdd, type ReAddWhy } from './re-add-plan.js';

export interface MaintenanceProgress {
  doneBytes: number;
  totalBytes: number;
}

export interface MaintenanceOptions {
  /** --max-speed: bytes of array data per second (see Throttle), the same quantity for rebuild, re-add and scrub. */
  maxSpeedBytesPerSecond?: number;
  onProgress?: (progress: MaintenanceProgress) => void;
  /** How often the checkpoint reaches the superblocks. */
  checkpointIntervalMs?: number;
}

/**
 * Finds the member `path` names, by file identity: first among the members in use now (which
 * include those that joined since assembly, in a daemon), then among those left out at assembly.
 */
export async function findAssembledMember(assembled: Assembled, path: string): Promise<{ index: number; device: BlockDevice; inUse: boolean } | undefined> {
  // Members given at assembly, and those enrolled since (a replacement rebuilt while a daemon serves).
  const known = [...assembled.candidates];
  for (const [index, disk] of assembled.array.disks) if (!known.some((candidate) => candidate.index === index)) known.push({ index, device: disk.device });
  // The same path names the same member: no need to ask the file system (memory devices have no file).
  const named = known.find((candidate) => candidate.device.path === path);
  if (named) return { index: named.index, device: named.device, inUse: assembled.array.disks.has(named.index) };
  const wanted = await probeMember(path);
  const same = async (device: BlockDevice) => device.path === path
    || (wanted.kind !== 'missing' && (await probeMember(device.path)).identity === wanted.identity);
  for (const [index, disk] of assembled.array.disks) {
    if (await same(disk.device)) return { index, device: disk.device, inUse: true };
  }
  for (const candidate of assembled.candidates) {
    if (await same(candidate.device)) return { index: candidate.index, device: candidate.device, inUse: false };
  }
  return undefined;
}

// ---- fail-disk ------------------------------------------------------------------------

export async function failDisk(assembled: Assembled, path: string, force: boolean): Promise<{ index: number; role: number | null; arrayState: string }> {
  const { array } = assembled;
  const found = await findAssembledMember(assembled, path);
  if (!found) throw new JraidError('E_MEMBER_UNKNOWN', `${path} is not a member of this array`, { path, hint: 'name one of the paths shown by jraid detail' });
  const entry = array.sb.members[found.index]!;
  if (entry.state === 'faulty') throw new JraidError('E_REFUSED', `${path} is already faulty`, { path, hint: 'rebuild onto a replacement with jraid rebuild' });
  if (entry.role !== null && entry.state === 'active') {
    const lostAfter = array.lostRoles().length + 1;
    if (lostAfter > array.geometry.parityDisks && !force) {
      throw new JraidError('E_REFUSED', `failing ${path} would leave the array unusable: ${lostAfter} members lost, RAID-${array.sb.level} survives ${array.geometry.parityDisks}`, {
        path, hint: 'rebuild the lost member first; --force fails it anyway and stops all I/O',
      });
    }
  }
  await array.failMember(found.index, 'failed by fail-disk');
  return { index: found.index, role: entry.role, arrayState: array.health() };
}

// ---- add a spare ----------------------------------------------------------------------

/** Opens a new member path for the array: size and foreign-superblock checks, locked. */
export async function openNewMember(array: RaidArray, path: string, force: boolean): Promise<BlockDevice> {
  const probe = await probeMember(path);
  requireMemberPath(probe, { missingHint: 'create the image file first (truncate -s SIZE FILE) or check the path' });
  for (const disk of array.disks.values()) {
    if ((await probeMember(disk.path)).identity === probe.identity) {
      throw new JraidError('E_MEMBER_DUPLICATE', `${path} is already a member of this array (as ${disk.path})`, { path });
    }
  }
  const neededBytes = Math.max(DATA_OFFSET_BYTES + array.sb.dataSizeBytes, regionsEndBytes(array.sb.regions));
  if (probe.sizeBytes < neededBytes) {
    throw new JraidError('E_MEMBER_TOO_SMALL', `${path} is ${probe.sizeBytes} bytes; this array needs members of at least ${neededBytes}`, { path, hint: 'use a member at least as large as the others' });
  }
  // A cluster node shares its members with the other nodes, which open this one too (cluster.ts).
  const device = await openMemberDevice(path, { exclusive: !array.clustered });
  try {
    if (!force) await refuseOccupied(device, array.sb.arrayUuid, array.sb.members.map((entry) => entry.uuid));
    await lockAll([device], array.clustered ? 'cluster' : 'exclusive');
    return device;
  } catch (error) {
    await device.close();
    throw error;
  }
}

/**
 * Writes a blank member's metadata and enters it in the member table (as a spare, or as given):
 * in the first free slot a removed member left, else at the end. The new member always gets a
 * new uuid, so the superblock a removed member still carries never matches the slot's new entry.
 */
export async function enrolMember(array: RaidArray, device: BlockDevice, entry: Partial<MemberEntry> = {}): Promise<number> {
  const uuid = newUuid();
  const member: MemberEntry = { uuid, role: null, state: 'spare', recoveryOffsetBytes: 0, partialRebuild: false, readErrorsCorrected: 0, ...entry };
  const free = array.sb.members.findIndex(isFreeSlot);
  const index = free >= 0 ? free : array.sb.members.length;
  if (index >= MAX_MEMBERS) {
    const faulty = array.sb.members.filter((other) => other.state === 'faulty').length;
    throw new JraidError('E_MEMBER_TABLE_FULL', `the member table is full (${MAX_MEMBERS} entries, ${faulty} of them faulty)`, {
      hint: `remove faulty members first: jraid remove ${array.sb.name || 'ARRAY'} failed (or jraid remove ARRAY MEMBER)`,
    });
  }
  assert(!array.disks.has(index), `slot ${index} has no open member`);
  // Clear the metadata regions, then give it a superblock before it joins the table.
  const members = [...array.sb.members];
  members[index] = { ...member };
  const sb: Superblock = { ...array.sb, memberUuid: uuid, thisIndex: index, members };
  try {
    await zeroMetadata(device);
    await writeSuperblocks(device, sb);
  } catch (error) {
    if (!(error instanceof DeviceIoError)) throw error;
    throw new JraidError('E_IO', `${device.path} cannot be written (${error.message}): it was not added`, { path: device.path, hint: 'use another member' });
  }
  // It joins the member table and the open members in one step, when the commit runs.
  await array.members.enrol(index, new MemberDisk(device, sb), member);
  return index;
}

// ---- remove ---------------------------------------------------------------------------

export interface RemovedMember {
  number: number;
  path: string | null;
  uuid: string;
  state: 'faulty' | 'spare';
  role: number | null;
}

/**
 * Takes faulty members and spares out of the member table (as mdadm --remove): `target` is a
 * member's path, its uuid, or `failed` for every faulty member. Their entries become free slots
 * (trailing ones leave the table), their devices are closed, and the array forgets them: a
 * later member may reuse the slot under a new uuid. Active and rebuilding members are refused.
 */
export async function removeMembers(assembled: Assembled, target: string): Promise<RemovedMember[]> {
  const { array } = assembled;
  const targets = await removalTargets(assembled, target);
  const indexes = targets.map(({ index }) => index);
  const removed: RemovedMember[] = targets.map(({ index, path }) => {
    const entry = array.sb.members[index]!;
    const known = array.disks.get(index)?.path ?? assembled.candidates.find((c) => c.index === index)?.device.path;
    return { number: index, path: known ?? path ?? null, uuid: formatUuid(entry.uuid), state: entry.state as 'faulty' | 'spare', role: entry.role };
  });
  const devices: BlockDevice[] = [];
  // Forget them as assembly candidates (and in the assembly report) too: a freed slot's index
  // will name another member.
  for (let i = assembled.candidates.length - 1; i >= 0; i--) {
    if (indexes.includes(assembled.candidates[i]!.index)) {
      devices.push(assembled.candidates[i]!.device);
      assembled.candidates.splice(i, 1);
    }
  }
  assembled.report.members = assembled.report.members.filter((member) => !indexes.includes(member.index));
  devices.push(...await array.members.remove(indexes, freeSlot));
  // Their array locks go with them, so the same path can be added back (the lock is per open file).
  for (const device of new Set(devices)) {
    const file = underlyingFile(device);
    if (file) unlockMember(file.fd);
    await device.close();
  }
  return removed;
}

/** The member-table index of the member whose superblock `path` carries, or -1. */
async function tableIndexOf(array: RaidArray, path: string): Promise<number> {
  const probe = await probeMember(path);
  if (probe.kind !== 'file' && probe.kind !== 'block') return -1;
  const device = await FileDevice.open(path, { readOnly: true });
  const own = (await readSuperblocks(device).catch(() => undefined).finally(() => device.close()))?.superblock;
  if (!own || !own.arrayUuid.equals(array.sb.arrayUuid)) return -1;
  return array.sb.members.findIndex((entry) => entry.uuid.equals(own.memberUuid));
}

/** The members `target` names, with the path it named them by (none for a uuid or `failed`). */
async function removalTargets(assembled: Assembled, target: string): Promise<{ index: number; path?: string }[]> {
  const { array } = assembled;
  if (target === 'failed') {
    const faulty = array.sb.members.flatMap((entry, index) => entry.state === 'faulty' && !isFreeSlot(entry) ? [{ index }] : []);
    if (faulty.length === 0) throw new JraidError('E_REFUSED', 'there is no faulty member to remove', { hint: 'jraid detail lists the members and their states' });
    return faulty;
  }
  const uuid = parseUuid(target);
  let index = uuid ? array.sb.members.findIndex((entry) => entry.uuid.equals(uuid) && !isFreeSlot(entry)) : -1;
  if (index < 0) index = (await findAssembledMember(assembled, target))?.index ?? -1;
  // A faulty member is dropped from the config file's list once rebuilt around: know it by the
  // member uuid its own superblock carries.
  if (index < 0) index = await tableIndexOf(array, target);
  if (index < 0) {
    throw new JraidError('E_MEMBER_UNKNOWN', `${target} is not a member of this array`, {
      path: target, hint: 'name a member by the path or uuid jraid detail shows, or use failed for every faulty member',
    });
  }
  const entry = array.sb.members[index]!;
  if (entry.state === 'active') {
    throw new JraidError('E_REFUSED', `${target} is active in the array${entry.role === null ? '' : ` (role ${entry.role})`}: only faulty members and spares can be removed`, {
      path: target, hint: 'fail it first with jraid fail-disk (the array runs degraded until a rebuild)',
    });
  }
  if (entry.state === 'rebuilding') {
    const percent = Math.floor((1000 * entry.recoveryOffsetBytes) / array.sb.dataSizeBytes) / 10;
    throw new JraidError('E_REFUSED', `${target} is being rebuilt (role ${entry.role}, ${percent}% done): only faulty members and spares can be removed`, {
      path: target, hint: 'let jraid rebuild finish, or fail it first with jraid fail-disk',
    });
  }
  return [uuid ? { index } : { index, path: target }];
}

export async function addSpare(array: RaidArray, path: string, force: boolean): Promise<{ index: number }> {
  const device = await openNewMember(array, path, force);
  try {
    return { index: await enrolMember(array, device) };
  } catch (error) {
    await device.close();
    throw error;
  }
}

// ---- rebuild --------------------------------------------------------------------------

export interface RebuildOutcome {
  path: string;
  index: number;
  role: number;
  mode: 'full' | 'partial';
  resumedFromBytes: number;
  stripesRebuilt: number;
  bytesWritten: number;
  seconds: number;
}

/**
 * Picks what to rebuild: members already rebuilding resume; each lost role gets the
 * replacement (first) or a spare. Returns member indexes, ready for runRebuild.
 */
export async function prepareRebuild(array: RaidArray, replacement: BlockDevice | undefined): Promise<number[]> {
  // In a cluster a member another node rebuilds (it holds its rebuild claim) is left to it.
  const targets = array.sb.members.map((entry, index) => ({ entry, index }))
    .filter(({ entry, index }) => entry.state === 'rebuilding' && array.disks.has(index) && claimRebuild(array, index)).map(({ index }) => index);
  const claimed = new Set(array.sb.members.filter((entry) => entry.state === 'rebuilding').map((entry) => entry.role));
  const lost = array.lostRoles().filter((role) => !claimed.has(role));
  let pendingReplacement = replacement;
  for (const role of lost) {
    let index: number;
    if (pendingReplacement) {
      index = await enrolMember(array, pendingReplacement);
      pendingReplacement = undefined;
    } else {
      index = array.sb.members.findIndex((entry, i) => entry.state === 'spare' && array.disks.has(i));
      if (index < 0) {
        if (targets.length > 0) break;
        throw new JraidError('E_NO_SPARE', `role ${role} is lost and there is no spare to rebuild onto`, { hint: 'give --replacement PATH, or add a spare with jraid add' });
      }
    }
    claimRebuild(array, index);
    await array.commitSuperblocks((sb) => {
      const old = sb.members.findIndex((entry) => entry.role === role);
      if (old >= 0) sb.members[old] = { ...sb.members[old]!, role: null, state: 'faulty' };
      sb.members[index] = { ...sb.members[index]!, role, state: 'rebuilding', recoveryOffsetBytes: 0, partialRebuild: false };
    });
    targets.push(index);
  }
  if (pendingReplacement) {
    throw new JraidError('E_REFUSED', 'the array has no lost member to rebuild onto the replacement', { hint: 'add it as a spare with jraid add' });
  }
  return targets;
}

/**
 * Rebuilds member `index` (state rebuilding) from its checkpoint to the end. Stops with E_IO when
 * the member fails meanwhile (its own write error, or failed by anyone): it is never made active
 * unless every stripe reached it.
 */
export async function runRebuild(array: RaidArray, index: number, options: MaintenanceOptions = {}): Promise<RebuildOutcome> {
  const startedMs = Date.now();
  const disk = array.disks.get(index)!;
  const chunkSizeBytes = array.geometry.chunkSizeBytes;
  const initial = array.sb.members[index]!;
  const role = initial.role!;
  const partial = initial.partialRebuild;
  const resumedFromBytes = initial.recoveryOffsetBytes;
  const firstStripe = Math.floor(resumedFromBytes / chunkSizeBytes);
  const total = array.geometry.stripeCount;
  const throttle = new Throttle(options.maxSpeedBytesPerSecond);
  const checkpointMs = options.checkpointIntervalMs ?? 1000;
  let lastCheckpointMs = Date.now();
  let stripesRebuilt = 0;
  const stillRebuilding = () => array.sb.members[index]?.state === 'rebuilding' && array.disks.get(index) === disk;
  const stopped = (why: string) => new JraidError('E_IO', `rebuild of role ${role} onto ${disk.path} stopped: ${why}`, {
    path: disk.path, hint: 'see jraid detail; rebuild onto another member with jraid rebuild --replacement PATH',
  });
  /** A write or flush of the member being rebuilt failed: it is failed, and the rebuild stops. */
  const targetFailed = async (error: DeviceIoError): Promise<JraidError> => {
    await array.failMember(index, `rebuild write failed: ${error.message}`);
    return stopped(`it failed (${error.message})`);
  };
  const flushTarget = async () => {
    try {
      await disk.flush();
    } catch (error) {
      if (!(error instanceof DeviceIoError)) throw error;
      throw await targetFailed(error);
    }
  };
  for (let stripe = firstStripe; stripe < total; stripe++) {
    if (!stillRebuilding()) throw stopped('the member was failed meanwhile');
    // Judged under the stripe's lock: a writer that finds the member not yet writable marks the
    // stripe before it lets go, so a partial rebuild never passes a stripe written without it.
    let skipped = false;
    if (partial && !array.writeIntent.isStripeMarked(stripe)) {
      await array.withStripe(stripe, async () => {
        if (!stillRebuilding() || array.writeIntent.isStripeMarked(stripe)) return;
        array.members.setRebuildProgress(index, (stripe + 1) * chunkSizeBytes);
        skipped = true;
      });
    }
    if (!skipped) {
      let writeError: DeviceIoError | undefined;
      await array.withStripe(stripe, async () => {
        if (!stillRebuilding()) return;
        // The survivors are read into chunks lent by the pool and the lost one rebuilt in place.
        const lent = await array.lendStripeChunks(stripe);
        try {
          const bytes = await array.reconstructChunk(stripe, role, lent);
          // Not journaled: this write changes only the member being rebuilt, above its checkpoint,
          // so it cannot leave in-sync members' parity inconsistent; a torn one is redone on resume.
          await disk.writeData(array.geometry.memberDataOffsetBytes(stripe, 0), bytes).catch((error) => {
            if (!(error instanceof DeviceIoError)) throw error;
            writeError = error;
          });
        } finally {
          array.giveBackStripeChunks(lent);
        }
        if (writeError) return;
        if (stillRebuilding()) array.members.setRebuildProgress(index, (stripe + 1) * chunkSizeBytes);
      });
      if (writeError) throw await targetFailed(writeError);
      stripesRebuilt++;
      await throttle.account(array.geometry.stripeDataBytes);
    }
    options.onProgress?.({ doneBytes: (stripe + 1) * chunkSizeBytes, totalBytes: total * chunkSizeBytes });
    if (Date.now() - lastCheckpointMs >= checkpointMs) {
      // The checkpoint reaches the superblocks only once what it covers is durable.
      const progress = array.rebuiltBytes(index);
      await flushTarget();
      await array.commitSuperblocks((sb) => {
        if (sb.members[index]?.state === 'rebuilding') sb.members[index]!.recoveryOffsetBytes = progress;
      });
      lastCheckpointMs = Date.now();
    }
  }
  await flushTarget();
  await prepareToJoin(array, disk);
  let joined = false;
  await array.commitSuperblocks((sb) => {
    if (sb.members[index]?.state !== 'rebuilding') return;
    sb.members[index] = { ...sb.members[index]!, state: 'active', recoveryOffsetBytes: 0, partialRebuild: false };
    array.members.dropRebuildProgress(index);
    joined = true;
  });
  if (!joined) throw stopped('the member was failed meanwhile');
  if (array.degradedRoles().length === 0 && array.writeIntent.tracking) await array.writeIntent.clear();
  // The rebuilt member's journal region was blank: give the newest record its full set of copies.
  await array.journal?.rewrite();
  return {
    path: disk.path, index, role, mode: partial ? 'partial' : 'full', resumedFromBytes,
    stripesRebuilt, bytesWritten: stripesRebuilt * chunkSizeBytes, seconds: (Date.now() - startedMs) / 1000,
  };
}

/**
 * Before a rebuilt member counts as in sync, the regions read from in-sync members at assembly
 * must be true on it too: the whole write-intent bitmap (if tracking goes on, it only received
 * the marks made during its rebuild), the current bad-block list, and no journal record older
 * than the array's (a returning member may hold records of a generation the array has written
 * again since).
 */
async function prepareToJoin(array: RaidArray, disk: MemberDisk): Promise<void> {
  if (array.writeIntent.tracking) await array.writeIntent.persistAll();
  // The bad-block list too: a returning member may hold an older one, and after enough
  // replacements the members that hold the current one may all be gone.
  await array.persistBadBlocks();
  if (array.sb.policy !== 'dirty-log') return;
  try {
    await clearJournalSlots(disk, array.sb);
  } catch (error) {
    if (!(error instanceof DeviceIoError)) throw error;
    await array.failMember(array.indexOfDisk(disk), `rebuild write failed: ${error.message}`);
  }
}

// ---- re-add ---------------------------------------------------------------------------

export interface ReAddPlan {
  index: number;
  mode: 'partial' | 'full';
  reason: string;
}

/**
 * Takes a returning member back into its old role. Partial when the write-intent bitmap has
 * tracked every write since it left; otherwise a full rebuild, and the reason says why.
 */
export async function prepareReAdd(assembled: Assembled, path: string): Promise<ReAddPlan> {
  const { array } = assembled;
  const found = await findAssembledMember(assembled, path);
  if (!found) {
    throw new JraidError('E_MEMBER_UNKNOWN', `${path} is not one of this array's members`, {
      path, hint: 'name the array with this member among its paths (MEMBER,MEMBER,...), or add it as a new member with jraid add',
    });
  }
  // A failure of this member still being handled (a write it missed, not yet marked) would be
  // missed by a partial rebuild: decide once it is settled.
  await array.failuresSettled();
  const entry = array.sb.members[found.index]!;
  if (found.inUse && entry.state !== 'faulty') throw new JraidError('E_REFUSED', `${path} is already ${entry.state} in the array`, { path });
  if (entry.role === null || array.sb.members.some((other, i) => i !== found.index && other.role === entry.role)) {
    throw new JraidError('E_REFUSED', `${path}'s old role has been given to another member`, { path, hint: 'add it as a spare with jraid add --force' });
  }
  const own = await readSuperblocks(found.device).then((read) => read.superblock, (error: unknown) => {
    if (!(error instanceof DeviceIoError)) throw error;
    throw new JraidError('E_IO', `${path}: its superblock cannot be read (${error.message})`, { path, hint: 'check the member; rebuild onto a replacement instead' });
  });
  const intent = array.writeIntent;
  const { mode, why } = decideReAdd(own, intent);
  const reasons: Record<ReAddWhy, () => string> = {
    'unreadable': () => 'its superblock is unreadable',
    'not-in-sync': () => `it was ${own!.members[own!.thisIndex]?.state ?? 'not in the array'} when it left, not in sync`,
    'no-marks': () => 'no write-intent marks are kept for it (the array was made whole since it left)',
    'older-than-marks': () => `it is older (events ${own!.events}) than the write-intent marks (since events ${intent.startEvents})`,
    'marks-cover': () => `${intent.markedBitCount()} region(s) of ${array.sb.writeIntentChunkBytes} bytes were written while it was away`,
  };
  // In a cluster each node keeps write-intent marks of its own writes only: no node's bitmap
  // covers every write the member missed, so it comes back in full.
  const reason = array.clustered && mode === 'partial' ? 'in a cluster each node tracks only its own writes: rebuilt in full' : reasons[why]();
  const modeHere = array.clustered ? 'full' : mode;
  if (array.disks.get(found.index)?.device !== found.device) array.members.attach(found.index, new MemberDisk(found.device, own ?? array.sb));
  await array.commitSuperblocks((sb) => {
    sb.members[found.index] = { ...sb.members[found.index]!, state: 'rebuilding', recoveryOffsetBytes: 0, partialRebuild: modeHere === 'partial' };
  });
  return { index: found.index, mode: modeHere, reason };
}

/**
 * Sleeps as needed to keep the rate at or under --max-speed. The rate is in bytes of array data
 * per second, for rebuild, re-add and scrub alike: a stripe counts its stripeDataBytes, whatever
 * the work reads or writes on the members to handle it.
 */
export class Throttle {
  private readonly arrayBytesPerSecondMax: number | undefined;
  private readonly startedMs = Date.now();
  private arrayBytes = 0;

  constructor(arrayBytesPerSecondMax: number | undefined) {
    this.arrayBytesPerSecondMax = arrayBytesPerSecondMax && arrayBytesPerSecondMax > 0 ? arrayBytesPerSecondMax : undefined;
  }

  /** Counts `arrayBytes` of array data handled; resolves once the rate allows more. */
  async account(arrayBytes: number): Promise<void> {
    this.arrayBytes += arrayBytes;
    if (!this.arrayBytesPerSecondMax) return;
    const aheadMs = (this.arrayBytes / this.arrayBytesPerSecondMax) * 1000 - (Date.now() - this.startedMs);
    if (aheadMs > 0) await new Promise((resolve) => setTimeout(resolve, aheadMs));
  }
}


/**
 * Rebuilds every lost role: resumes members already rebuilding; otherwise rebuilds onto the
 * replacement (a new path, an old member of this array, or a replacement whose rebuild was
 * interrupted, which resumes) or a spare.
 */
export async function rebuildArray(assembled: Assembled, options: MaintenanceOptions & { replacementPath?: string; force?: boolean; onTargetsReady?: () => Promise<void> } = {}): Promise<RebuildOutcome[]> {
  const { array } = assembled;
  let replacement: BlockDevice | undefined;
  if (options.replacementPath) {
    const path = options.replacementPath;
    const found = await findAssembledMember(assembled, path);
    if (found?.inUse) {
      if (array.sb.members[found.index]!.state !== 'rebuilding') {
        throw new JraidError('E_MEMBER_DUPLICATE', `${path} is already ${array.sb.members[found.index]!.state} in this array`, { path, hint: 'give a new member as the replacement' });
      }
    } else if (found) {
      replacement = found.device; // an old member of this array, named as the replacement: rebuilt in full
    } else {
      const attached = await attachInterrupted(array, path);
      if (!attached) replacement = await openNewMember(array, path, !!options.force);
    }
  }
  if (array.lostRoles().length === 0 && !array.sb.members.some((entry) => entry.state === 'rebuilding')) {
    if (replacement && options.replacementPath && !assembled.candidates.some((c) => c.device === replacement)) await replacement.close();
    return [];
  }
  const targets = await prepareRebuild(array, replacement);
  // The replacement is a member now (rebuilding): the caller records it, so that a rebuild
  // killed from here on is found again through the config file.
  await options.onTargetsReady?.();
  const outcomes: RebuildOutcome[] = [];
  try {
    for (const index of targets) outcomes.push(await runRebuild(array, index, options));
  } finally {
    for (const index of targets) releaseRebuildClaim(array, index);
  }
  return outcomes;
}

/**
 * Cluster mode: claims the rebuild of member `index` for this node (a byte-range lock on the
 * member, docs/FORMAT.md "Cluster locks"); false when another node holds the claim. Always
 * true outside a cluster.
 */
function claimRebuild(array: RaidArray, index: number): boolean {
  const file = array.clustered ? underlyingFile(array.disks.get(index)!.device) : undefined;
  return !file || tryClaimRebuild(file.fd);
}

function releaseRebuildClaim(array: RaidArray, index: number): void {
  const disk = array.disks.get(index);
  const file = array.clustered && disk ? underlyingFile(disk.device) : undefined;
  if (file) releaseRebuild(file.fd);
}

/** A replacement whose rebuild was interrupted carries this array's superblock as a rebuilding member: attach it. */
async function attachInterrupted(array: RaidArray, path: string): Promise<boolean> {
  const probe = await probeMember(path);
  if (probe.kind !== 'file' && probe.kind !== 'block') return false;
  const device = await openMemberDevice(path, { exclusive: !array.clustered });
  const own = (await readSuperblocks(device).catch(() => undefined))?.superblock;
  const index = own && own.arrayUuid.equals(array.sb.arrayUuid) ? array.sb.members.findIndex((entry) => entry.uuid.equals(own.memberUuid)) : -1;
  if (index < 0 || array.sb.members[index]!.state !== 'rebuilding' || array.disks.has(index)) {
    await device.close();
    return false;
  }
  try {
    await lockAll([device], array.clustered ? 'cluster' : 'exclusive');
  } catch (error) {
    await device.close();
    throw error;
  }
  array.members.attach(index, new MemberDisk(device, own!));
  return true;
}
