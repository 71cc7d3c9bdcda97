// Takes the array lock on every member that has a file descriptor, or none of them. The lock is
// on the storage, not the name: a loop device's backing file is locked too (through a
// descriptor opened for that purpose), so a writer through /dev/loopN and a writer through the
// image file behind it, or through a second loop device over that file, exclude each other.

import { fstatSync } from 'node:fs';
import type { BlockDevice } from '../device/block-device.js';
import { openForLock, type FileDevice } from '../device/file-device.js';
import { underlyingFile } from '../device/open-member.js';
import { clusterRuns, describeHolders, holderProcesses, readerHolds, tryLockMember, tryLockReader, unlockMember, unlockReader, type HolderProcess, type LockMode } from '../device/lock.js';
import { JraidError } from '../errors.js';

export interface LockedMembers {
  release(): void;
}

/**
 * How long a lock attempt keeps retrying before it names the holder: lock-free readers (detail,
 * status, monitor) take a shared lock for a moment to see whether a writer holds the array, and
 * a writer starting in that moment must not be refused for it.
 */
const MOMENTARY_HOLDER_GRACE_MS = 200;
/**
 * Retries come 1 to 4 ms apart, at random: a fixed interval can fall into step with a prober
 * that polls at the same period (a monitor every 5 ms, say) and find the lock held every time.
 */
const LOCK_RETRY_INTERVAL_MIN_MS = 1;
const LOCK_RETRY_INTERVAL_SPREAD_MS = 3;

async function tryLockPatiently(fd: number, mode: LockMode): Promise<boolean> {
  const deadlineMs = Date.now() + MOMENTARY_HOLDER_GRACE_MS;
  for (;;) {
    if (tryLockMember(fd, mode)) return true;
    if (Date.now() >= deadlineMs) return false;
    const waitMs = LOCK_RETRY_INTERVAL_MIN_MS + Math.random() * LOCK_RETRY_INTERVAL_SPREAD_MS;
    await new Promise((resolve) => setTimeout(resolve, waitMs));
  }
}

/**
 * `cluster`: a cluster node (seed 004). Nodes share the array lock with each other and with
 * nobody that writes: each holds it shared, as readers do. A reader (shared) also marks the
 * reader byte, which a starting node finds held; a node holds its node byte (cluster.ts), which
 * a reader finds held. So a node and a reader that is no node refuse each other, and an
 * exclusive opener is refused by the shared array lock either way.
 */
export async function lockAll(devices: readonly BlockDevice[], lockMode: LockMode | 'cluster'): Promise<LockedMembers> {
  const mode: LockMode = lockMode === 'cluster' ? 'shared' : lockMode;
  const held: number[] = [];
  const readerMarks: number[] = [];
  const release = () => {
    for (const fd of readerMarks.splice(0)) {
      try { unlockReader(fd); } catch { /* the fd may already be closed */ }
    }
    for (const fd of held.splice(0)) {
      try { unlockMember(fd); } catch { /* the fd may already be closed */ }
    }
  };
  for (const device of devices) {
    const file = underlyingFile(device);
    if (!file) continue;
    if (!(await tryLockPatiently(file.fd, mode))) {
      release();
      throw await lockedError(device.path, device.path);
    }
    held.push(file.fd);
    if (lockMode === 'cluster' && readerHolds(file.fd)) {
      release();
      const error = await lockedError(device.path, device.path);
      throw new JraidError(error.code, `${device.path} is being read by a command that is no cluster node (${error.message.replace(/^.* is in use by /, '')})`, {
        path: device.path, hint: 'wait for it to finish, then start the node', details: error.details,
      });
    }
    if (mode === 'shared' && lockMode !== 'cluster') {
      if (clusterRuns(file.fd) || !tryLockReader(file.fd)) {
        release();
        const error = await lockedError(device.path, device.path);
        throw new JraidError(error.code, `${device.path} is served by cluster nodes (${error.message.replace(/^.* is in use by /, '')})`, {
          path: device.path, hint: 'use a node\'s daemon (jraid detail and scrub go through it), or stop every node first', details: error.details,
        });
      }
      readerMarks.push(file.fd);
    }
    const backing = backingLock(file, mode);
    if (!backing) continue;
    if (!(await tryLockPatiently(backing.fd, backing.mode))) {
      release();
      throw await lockedError(device.path, file.probe.backing!.path);
    }
    held.push(backing.fd);
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

/**
 * A descriptor on the file behind a loop device, to lock it. Exclusive needs it open for
 * writing; a user who may write the loop device but not its file gets a shared lock there,
 * which still stops any writer that holds the file itself.
 */
function backingLock(file: FileDevice, mode: LockMode): { fd: number; mode: LockMode } | undefined {
  const backing = file.probe.backing;
  if (!backing) return undefined;
  let lockMode = mode;
  let fd = openForLock(backing.path, mode === 'exclusive');
  if (fd === undefined && mode === 'exclusive') {
    fd = openForLock(backing.path, false);
    lockMode = 'shared';
  }
  if (fd === undefined) return undefined;
  file.lockDescriptors.push(fd);
  const stats = fstatSync(fd);
  // Renamed or replaced since the probe: the file there now is not the loop device's.
  if (`file:${stats.dev}:${stats.ino}` !== backing.identity) return undefined;
  return { fd, mode: lockMode };
}

async function lockedError(path: string, lockedPath: string): Promise<JraidError> {
  const holders = await describeHolders(lockedPath);
  const who = holders.length > 0 ? holders.join(', ') : 'another process';
  const what = lockedPath === path ? path : `${path} (backed by ${lockedPath})`;
  return new JraidError('E_ARRAY_LOCKED', `${what} is in use by ${who}`, {
    path,
    hint: 'wait for it to finish, or use the daemon that serves this array (jraid stop to end it)',
    details: { holders },
  });
}
