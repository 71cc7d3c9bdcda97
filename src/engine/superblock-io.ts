// Reading and writing the two superblock copies, through the member door (member-disk.ts). A
// torn or corrupt copy falls back to the other; when both are valid the one with more events
// wins (a crash between the two writes leaves the primary newer). Writes go primary, flush,
// secondary, flush, so at every instant at least one copy is whole.

import type { BlockDevice } from '../device/block-device.js';
import { SUPERBLOCK_SIZE_BYTES } from '../format/layout.js';
import { decodeSuperblock, SUPERBLOCK_MAGIC, type Superblock } from '../format/superblock.js';
import { memberIo, SUPERBLOCKS_ZONE, writeSuperblockCopies } from './member-disk.js';

export const PRIMARY_OFFSET_BYTES = 0;
export const SECONDARY_OFFSET_BYTES = SUPERBLOCK_SIZE_BYTES;

export interface SuperblockRead {
  superblock: Superblock | undefined;
  primaryProblem: string | undefined;
  secondaryProblem: string | undefined;
  /** True when either copy starts with the jraid magic, valid or not. */
  hasMagic: boolean;
}

export async function readSuperblocks(device: BlockDevice): Promise<SuperblockRead> {
  if (device.sizeBytes < 2 * SUPERBLOCK_SIZE_BYTES) {
    return { superblock: undefined, primaryProblem: 'device smaller than two superblocks', secondaryProblem: 'device smaller than two superblocks', hasMagic: false };
  }
  const bytes = Buffer.alloc(2 * SUPERBLOCK_SIZE_BYTES);
  await memberIo(device, 'read', SUPERBLOCKS_ZONE, PRIMARY_OFFSET_BYTES, bytes);
  const primaryBytes = bytes.subarray(0, SUPERBLOCK_SIZE_BYTES);
  const secondaryBytes = bytes.subarray(SUPERBLOCK_SIZE_BYTES);
  const primary = decodeSuperblock(primaryBytes);
  const secondary = decodeSuperblock(secondaryBytes);
  const hasMagic = [primaryBytes, secondaryBytes].some((copy) => copy.subarray(0, SUPERBLOCK_MAGIC.length).equals(SUPERBLOCK_MAGIC));
  let superblock: Superblock | undefined;
  if (primary.ok && secondary.ok) superblock = secondary.value.events > primary.value.events ? secondary.value : primary.value;
  else if (primary.ok) superblock = primary.value;
  else if (secondary.ok) superblock = secondary.value;
  return {
    superblock,
    primaryProblem: primary.ok ? undefined : primary.reason,
    secondaryProblem: secondary.ok ? undefined : secondary.reason,
    hasMagic,
  };
}

/** Writes both copies of `sb` on a device not yet open as a MemberDisk (create, enrolment). */
export function writeSuperblocks(device: BlockDevice, sb: Superblock): Promise<void> {
  return writeSuperblockCopies(device, sb);
}
