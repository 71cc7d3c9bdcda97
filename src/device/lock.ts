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
  // "node --enable-source-maps /x/dist/src/cli/main.js write ..." reads better as "jraid write ...".
  const main = argv.findIndex((arg) => arg.endsWith('/cli/main.js'));
  const words = main >= 0 ? ['jraid', ...argv.slice(main + 1)] : argv;
  const text = words.join(' ');
  return { pid, command: text.length > 100 ? `${text.slice(0, 97)}...` : text, operation: main >= 0 ? argv[main + 1] : undefined };
}
