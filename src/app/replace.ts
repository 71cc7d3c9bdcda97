// replace: copy one active member's role onto a new member while the old one stays active (as
// mdadm --replace), so the array never loses redundancy. During the copy every data write to
// the old member is also written to the new one; the copy itself runs stripe by stripe under
// the stripe lock, so a write and the copy of its stripe never interleave. When the copy is
// complete, one superblock commit gives the new member the role and makes the old one a spare.
// A copy that is interrupted (a crash) leaves the new member a spare: run replace again.

import { resolve } from 'node:path';
import type { BlockDevice } from '../device/block-device.js';
import { probeMember } from '../device/member-path.js';
import { JraidError } from '../errors.js';
import { assert } from '../units.js';
import type { Assembled } from '../engine/assemble.js';
import { enrolMember, findAssembledMember, openNewMember, Throttle, type MaintenanceOptions } from '../engine/maintenance.js';
import type { MemberDisk } from '../engine/member-disk.js';
import { currentMemberPaths, tracked, type OpContext } from './operations.js';

export interface ReplaceOutcome {
  role: number;
  /** The old member (now a spare) and the new one (now active in the role), absolute paths. */
  old: { path: string; number: number; state: 'spare' };
  new: { path: string; number: number; state: 'active' };
  stripesCopied: number;
  bytesCopied: number;
  /** Chunks the old member could not read, rebuilt from the others instead. */
  chunksReconstructed: number;
  seconds: number;
}

export interface ReplaceOptions extends MaintenanceOptions {
  force?: boolean;
  /** Called when the new member has joined as a spare, before the copy (the config file names it). */
  onTargetsReady?: () => Promise<void>;
}

/** Checks everything and opens the new member; nothing is written until every check has passed. */
async function prepare(assembled: Assembled, oldPath: string, newPath: string, force: boolean): Promise<{ oldIndex: number; role: number; newIndex: number | undefined; device: BlockDevice | undefined }> {
  const { array } = assembled;
  const old = await findAssembledMember(assembled, oldPath);
  if (!old || !old.inUse) {
    throw new JraidError('E_MEMBER_UNKNOWN', `${oldPath} is not a member in use in this array`, { path: oldPath, hint: 'name the member to replace by a path jraid detail shows' });
  }
  const entry = array.sb.members[old.index]!;
  if (entry.state !== 'active' || entry.role === null) {
    throw new JraidError('E_REFUSED', `${oldPath} is ${entry.state}, not active: only an active member is replaced`, {
      path: oldPath, hint: entry.state === 'faulty' ? 'rebuild a faulty member with jraid rebuild --replacement PATH' : 'jraid detail shows the members and their states',
    });
  }
  const [oldProbe, newProbe] = [await probeMember(oldPath), await probeMember(newPath)];
  if (newProbe.kind !== 'missing' && newProbe.identity === oldProbe.identity) {
    throw new JraidError('E_REFUSED', `${newPath} is the member being replaced`, { path: newPath, hint: 'give a different member with --with' });
  }
  if (array.state() === 'failed') throw new JraidError('E_ARRAY_FAILED', 'the array has lost too many members to copy from', { hint: 'jraid status says what to do' });
  const existing = await findAssembledMember(assembled, newPath);
  if (existing?.inUse) {
    const state = array.sb.members[existing.index]!.state;
    if (state !== 'spare') throw new JraidError('E_MEMBER_DUPLICATE', `${newPath} is already ${state} in this array`, { path: newPath, hint: 'give a spare or a new member with --with' });
    return { oldIndex: old.index, role: entry.role, newIndex: existing.index, device: undefined };
  }
  return { oldIndex: old.index, role: entry.role, newIndex: undefined, device: await openNewMember(array, newPath, force) };
}

export async function replaceMember(assembled: Assembled, oldPath: string, newPath: string, options: ReplaceOptions = {}): Promise<ReplaceOutcome> {
  const startedMs = Date.now();
  const { array } = assembled;
  const plan = await prepare(assembled, oldPath, newPath, !!options.force);
  let newIndex = plan.newIndex;
  if (newIndex === undefined) {
    try {
      newIndex = await enrolMember(array, plan.device!);
    } catch (error) {
      await plan.device!.close();
      throw error;
    }
  }
  await options.onTargetsReady?.();
  const oldDisk = array.disks.get(plan.oldIndex)!;
  const newDisk = array.disks.get(newIndex)!;
  const { stripesCopied, chunksReconstructed } = await copyRole(array, plan.role, oldDisk, newDisk, newIndex, plan.oldIndex, options);
  const outcome: ReplaceOutcome = {
    role: plan.role,
    old: { path: resolve(oldDisk.path), number: plan.oldIndex, state: 'spare' },
    new: { path: resolve(newDisk.path), number: newIndex, state: 'active' },
    stripesCopied, bytesCopied: stripesCopied * array.geometry.chunkSizeBytes, chunksReconstructed,
    seconds: (Date.now() - startedMs) / 1000,
  };
  return outcome;
}

/** The copy, with the old member's data writes mirrored to the new one until the role has moved. */
async function copyRole(array: Assembled['array'], role: number, oldDisk: MemberDisk, newDisk: MemberDisk, newIndex: number, oldIndex: number, options: ReplaceOptions): Promise<{ stripesCopied: number; chunksReconstructed: number }> {
  let mirrorFailure: Error | undefined;
  // What writeData is now (the class method, or a wrapper such as the daemon's I/O counting), restored afterwards.
  const ownWrite = Object.prototype.hasOwnProperty.call(oldDisk, 'writeData');
  const plainWrite = oldDisk.writeData;
  // Instance override, undone in finally: every engine write path reaches the old member through
  // this one method, so no other code needs to know a replace is running.
  oldDisk.writeData = async (memberDataOffsetBytes: number, buf: Uint8Array) => {
    await plainWrite.call(oldDisk, memberDataOffsetBytes, buf);
    if (mirrorFailure) return;
    await newDisk.writeData(memberDataOffsetBytes, buf).catch((error: Error) => { mirrorFailure = error; });
  };
  try {
    const chunkSizeBytes = array.geometry.chunkSizeBytes;
    const total = array.geometry.stripeCount;
    const throttle = new Throttle(options.maxSpeedBytesPerSecond);
    let chunksReconstructed = 0;
    for (let stripe = 0; stripe < total; stripe++) {
      await array.withStripe(stripe, async () => {
        const offset = array.geometry.memberDataOffsetBytes(stripe, 0);
        let bytes: Buffer = Buffer.alloc(chunkSizeBytes);
        try {
          await oldDisk.readData(offset, bytes);
        } catch {
          // The old member cannot read it: rebuild it from the others, as a rebuild would.
          bytes = await array.reconstructChunk(stripe, role);
          chunksReconstructed++;
        }
        await newDisk.writeData(offset, bytes);
      });
      if (mirrorFailure) break;
      await throttle.account(array.geometry.stripeDataBytes); // --max-speed counts array data, as rebuild does
      options.onProgress?.({ doneBytes: (stripe + 1) * chunkSizeBytes, totalBytes: total * chunkSizeBytes });
    }
    if (mirrorFailure) {
      throw new JraidError('E_IO', `writing to ${newDisk.path} failed during the copy: ${mirrorFailure.message}; ${oldDisk.path} stays active`, {
        path: newDisk.path, hint: 'the new member stays a spare; replace onto another one, or jraid remove it',
      });
    }
    await newDisk.flush();
    assert(array.sb.members[oldIndex]!.role === role, 'the old member kept its role during the copy');
    await array.commitSuperblocks((sb) => {
      sb.members[newIndex] = { ...sb.members[newIndex]!, role, state: 'active', recoveryOffsetBytes: 0, partialRebuild: false };
      sb.members[oldIndex] = { ...sb.members[oldIndex]!, role: null, state: 'spare', recoveryOffsetBytes: 0, partialRebuild: false };
    });
    // The new member's journal region was blank: give the newest record its full set of copies.
    await array.journal?.rewrite();
    return { stripesCopied: total, chunksReconstructed };
  } finally {
    if (ownWrite) oldDisk.writeData = plainWrite;
    else delete (oldDisk as { writeData?: unknown }).writeData;
  }
}

export interface ReplaceResult extends ReplaceOutcome { arrayState: string; degraded: boolean; memberPaths: string[] }

export async function opReplace(assembled: Assembled, args: { old: string; with: string; maxSpeed?: number; force?: boolean }, context: OpContext = {}): Promise<ReplaceResult> {
  const { array } = assembled;
  const outcome = await tracked(array, 'replace', context, (onProgress) => replaceMember(assembled, args.old, args.with, {
    force: args.force, maxSpeedBytesPerSecond: args.maxSpeed, onProgress,
    onTargetsReady: async () => { await context.onMembersChanged?.(currentMemberPaths(array)); },
  }));
  return { ...outcome, arrayState: array.health(), degraded: array.degradedRoles().length > 0, memberPaths: currentMemberPaths(array) };
}
