// Takes the array lock on every member that has a file descriptor, or none of them.

import type { BlockDevice } from '../device/block-device.js';
import { underlyingFile } from '../device/open-member.js';
import { describeHolders, holderProcesses, tryLockMember, unlockMember, type HolderProcess, type LockMode } from '../device/lock.js';
import { JraidError } from '../errors.js';

export interface LockedMembers {
  release(): void;
}

export async function lockAll(devices: readonly BlockDevice[], mode: LockMode): Promise<LockedMembers> {
  const held: number[] = [];
  const release = () => {
    for (const fd of held.splice(0)) {
      try { unlockMember(fd); } catch { /* the fd may already be closed */ }
    }
  };
  for (const device of devices) {
    const file = underlyingFile(device);
    if (!file) continue;
    if (tryLockMember(file.fd, mode)) {
      held.push(file.fd);
      continue;
    }
    release();
    const holders = await describeHolders(device.path);
    const who = holders.length > 0 ? holders.join(', ') : 'another process';
    throw new JraidError('E_ARRAY_LOCKED', `${device.path} is in use by ${who}`, {
      path: device.path,
      hint: 'wait for it to finish, or use the daemon that serves this array (jraid stop to end it)',
      details: { holders },
    });
  }
  return { release };
}

/**
 * For commands that take no lock (detail): the processes holding the array for writing, found
 * by trying a shared lock on each member and letting it go at once. Empty when none does.
 */
export async function exclusiveHolders(devices: readonly BlockDevice[]): Promise<HolderProcess[]> {
  for (const device of devices) {
    const file = underlyingFile(device);
    if (!file) continue;
    if (tryLockMember(file.fd, 'shared')) {
      unlockMember(file.fd);
      continue;
    }
    return holderProcesses(device.path);
  }
  return [];
}
