// Array locks: an OFD byte-range lock on each member's primary superblock block. OFD locks
// belong to the open file description, so they are released when the holder dies, work on
// block devices as well as files, and conflict between processes and within one process.
// /proc/locks shows OFD locks with pid -1, so the holder is named by finding who has the
// member open (/proc/PID/fd).

import fsx from 'fs-native-extensions';
import { readdir, readFile, readlink, stat } from 'node:fs/promises';
import { BLOCK_SIZE_BYTES } from '../units.js';

const LOCK_OFFSET_BYTES = 0;
/** The first block of a member: its primary superblock (docs/FORMAT.md). */
const LOCK_LENGTH_BYTES = BLOCK_SIZE_BYTES;

export type LockMode = 'exclusive' | 'shared';

export function tryLockMember(fd: number, mode: LockMode): boolean {
  return fsx.tryLock(fd, LOCK_OFFSET_BYTES, LOCK_LENGTH_BYTES, { shared: mode === 'shared' });
}

// Cluster mode's lock bytes (docs/FORMAT.md, "Cluster locks"): single bytes in the unused gap
// between the secondary superblock (ends at 8 KiB) and the bad-block region (64 KiB). Nothing
// is ever read or written there; only locked.
/** Held shared by a reader that is no cluster node (it holds the array lock shared too): a node that starts finds it held and refuses. */
export const READER_LOCK_OFFSET_BYTES = 8 * 1024;
/** Held exclusive by a node while it commits superblocks (membership changes). */
export const SUPERBLOCK_LOCK_OFFSET_BYTES = 8 * 1024 + 1;
/** On each member itself: held shared by every node that may write to it; fail-disk waits to take it exclusive (every node followed). */
export const MEMBER_USE_OFFSET_BYTES = 8 * 1024 + 2;
/** On each in-sync member, in member order: held exclusive by the one node that runs an automatic spare takeover. */
export const TAKEOVER_LOCK_OFFSET_BYTES = 8 * 1024 + 3;
/** On a member being rebuilt: held exclusive by the node that copies onto it (no two nodes rebuild one member). */
export const REBUILD_LOCK_OFFSET_BYTES = 8 * 1024 + 4;

/** Claims the rebuild of the member open on `fd` for this process; false when another node rebuilds it. */
export function tryClaimRebuild(fd: number): boolean {
  return fsx.tryLock(fd, REBUILD_LOCK_OFFSET_BYTES, 1);
}

export function releaseRebuild(fd: number): void {
  fsx.unlock(fd, REBUILD_LOCK_OFFSET_BYTES, 1);
}

/** Node n holds byte NODE_LOCK_OFFSET_BYTES + n exclusive while it runs: its journal area is its own. */
export const NODE_LOCK_OFFSET_BYTES = 8 * 1024 + 256;
/**
 * Node n holds byte NODE_USE_OFFSET_BYTES + n exclusive on each member it writes to (active or
 * rebuilding in the state it follows): a node that brings a member in waits until every running
 * node holds its byte there (every node followed, and its writes reach the member).
 */
export const NODE_USE_OFFSET_BYTES = 8 * 1024 + 512;
/** Node ids 0 .. CLUSTER_NODES_MAX - 1 (the superblock's u8 node count). */
export const CLUSTER_NODES_MAX = 255;

/** A reader's mark (shared; works on a descriptor opened read-only). */
export function tryLockReader(fd: number): boolean {
  return fsx.tryLock(fd, READER_LOCK_OFFSET_BYTES, 1, { shared: true });
}

export function unlockReader(fd: number): void {
  fsx.unlock(fd, READER_LOCK_OFFSET_BYTES, 1);
}

/** Whether a reader that is no node holds the member (a node's probe: an exclusive try on a writable descriptor, let go at once). */
export function readerHolds(fd: number): boolean {
  if (!fsx.tryLock(fd, READER_LOCK_OFFSET_BYTES, 1)) return true;
  fsx.unlock(fd, READER_LOCK_OFFSET_BYTES, 1);
  return false;
}

/** Whether a cluster node runs on the member (a reader's probe: a shared try over every node byte, let go at once). */
export function clusterRuns(fd: number): boolean {
  if (!fsx.tryLock(fd, NODE_LOCK_OFFSET_BYTES, CLUSTER_NODES_MAX, { shared: true })) return true;
  fsx.unlock(fd, NODE_LOCK_OFFSET_BYTES, CLUSTER_NODES_MAX);
  return false;
}

export function unlockMember(fd: number): void {
  fsx.unlock(fd, LOCK_OFFSET_BYTES, LOCK_LENGTH_BYTES);
}

/** A process that has a member open: its pid and command line ("jraid scrub r5 ..."). */
export interface HolderProcess {
  pid: number;
  command: string;
  /** The jraid command it runs (scrub, rebuild, daemon, ...), when it is jraid. */
  operation: string | undefined;
}

/** "pid 1234 (jraid write --offset 0 r5)" for every other process that has `path` open. */
export async function describeHolders(path: string): Promise<string[]> {
  return (await holderProcesses(path)).map((holder) => `pid ${holder.pid} (${holder.command})`);
}

/** This process, described as a holder is. */
export function thisProcess(): HolderProcess {
  return describeProcess(process.pid, process.argv);
}

/** Every other process that has `path` open. */
export async function holderProcesses(path: string): Promise<HolderProcess[]> {
  let target: string;
  try {
    const stats = await stat(path);
    target = stats.isBlockDevice() ? `b${stats.rdev}` : `f${stats.dev}:${stats.ino}`;
  } catch {
    return [];
  }
  const holders: HolderProcess[] = [];
  const pids = (await readdir('/proc').catch(() => [] as string[])).filter((name) => /^\d+$/.test(name) && Number(name) !== process.pid);
  for (const pid of pids) {
    const fds = await readdir(`/proc/${pid}/fd`).catch(() => [] as string[]);
    for (const fd of fds) {
      const link = `/proc/${pid}/fd/${fd}`;
      const linked = await readlink(link).catch(() => '');
      if (!linked.startsWith('/')) continue;
      const stats = await stat(link).catch(() => undefined);
      if (!stats) continue;
      const identity = stats.isBlockDevice() ? `b${stats.rdev}` : `f${stats.dev}:${stats.ino}`;
      if (identity !== target) continue;
      const cmdline = (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).split('\0').filter(Boolean);
      holders.push(describeProcess(Number(pid), cmdline));
      break;
    }
  }
  return holders;
}

function describeProcess(pid: number, argv: string[]): HolderProcess {
  // "node /x/dist/src/cli/jraid.mjs write ..." (or main.js) reads better as "jraid write ...".
  const main = argv.findIndex((arg) => arg.endsWith('/cli/main.js') || arg.endsWith('/cli/jraid.mjs'));
  const words = main >= 0 ? ['jraid', ...argv.slice(main + 1)] : argv;
  const text = words.join(' ');
  return { pid, command: text.length > 100 ? `${text.slice(0, 97)}...` : text, operation: main >= 0 ? argv[main + 1] : undefined };
}
