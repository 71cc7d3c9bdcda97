// A member path, looked at before anything opens it: what it names (an image file, a block
// device, or something jraid refuses), how large it is, and which storage it is. Every command
// that takes member paths asks here, and only here, so:
//   - a FIFO is never opened (opening one blocks until a writer comes, forever);
//   - a symlink loop, a path through a regular file or a path we may not reach is one clear
//     error, not a stack trace;
//   - a loop device and its backing file, or two loop devices over one file, are one member:
//     the identity of a loop device is its backing file's (sysfs loop/backing_file, then the
//     file's st_dev/st_ino), so duplicates are refused and locks land on the same object.
// fstat reports size 0 for a block device, so its size comes from sysfs
// (/sys/dev/block/MAJ:MIN/size, in 512-byte sectors), as lsblk reads it.

import { open, readFile, realpath, stat } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { JraidError } from '../errors.js';
import { SECTOR_SIZE_BYTES } from '../units.js';

export type MemberKind = 'file' | 'block' | 'missing' | 'directory' | 'fifo' | 'char-device' | 'socket' | 'bad-path';

/** The file behind a loop device. */
export interface LoopBacking {
  path: string;
  identity: string;
  /** Where the loop device starts in the file (losetup --offset). */
  offsetBytes: number;
}

export interface MemberProbe {
  path: string;
  kind: MemberKind;
  sizeBytes: number;
  /** The storage object: two paths naming one file or device (or a loop device and its file) compare equal. */
  identity: string;
  /** For a loop device over a file that still exists. */
  backing: LoopBacking | undefined;
  /** For 'bad-path': the errno that stat reported (ELOOP, ENOTDIR, EACCES, ENAMETOOLONG, ...). */
  errno: string | undefined;
  /** Major and minor numbers, for devices. */
  device: { major: number; minor: number } | undefined;
  /** A block device the kernel marks read-only (sysfs ro: losetup -r, a write-protected disk). */
  readOnlyDevice: boolean;
}

export function devMajor(rdev: number): number {
  return ((rdev >> 8) & 0xfff) | (Math.floor(rdev / 2 ** 32) & ~0xfff);
}

export function devMinor(rdev: number): number {
  return (rdev & 0xff) | ((rdev >> 12) & ~0xff & 0xfffff);
}

function sysfsDir(stats: Stats): string {
  return `/sys/dev/block/${devMajor(stats.rdev)}:${devMinor(stats.rdev)}`;
}

export async function blockDeviceSizeBytes(stats: Stats, path: string): Promise<number> {
  try {
    const sectors = Number((await readFile(`${sysfsDir(stats)}/size`, 'utf8')).trim());
    if (Number.isSafeInteger(sectors)) return sectors * SECTOR_SIZE_BYTES;
  } catch {
    // fall through: no sysfs (a container without it); measure by opening instead
  }
  const handle = await open(path, 'r');
  try {
    // Binary search for the last readable byte: slow but exact, only without sysfs.
    let low = 0;
    let high = 2 ** 50;
    const probe = Buffer.alloc(1);
    while (low < high) {
      const mid = Math.floor((low + high + 1) / 2);
      const { bytesRead } = await handle.read(probe, 0, 1, mid - 1);
      if (bytesRead === 1) low = mid; else high = mid - 1;
    }
    return low;
  } finally {
    await handle.close();
  }
}

/** The file behind a loop device, from sysfs; undefined for other devices or a deleted backing file. */
async function loopBacking(stats: Stats): Promise<LoopBacking | undefined> {
  const dir = `${sysfsDir(stats)}/loop`;
  const text = await readFile(`${dir}/backing_file`, 'utf8').catch(() => undefined);
  if (text === undefined) return undefined;
  const path = text.replace(/\n$/, '');
  // The kernel prints the file's current path, or "PATH (deleted)" once it is unlinked.
  if (path === '' || path.endsWith(' (deleted)')) return undefined;
  const backingStats = await stat(path).catch(() => undefined);
  if (!backingStats?.isFile()) return undefined;
  const offsetBytes = Number((await readFile(`${dir}/offset`, 'utf8').catch(() => '0')).trim()) || 0;
  return { path, identity: fileIdentity(backingStats), offsetBytes };
}

function fileIdentity(stats: Stats): string {
  return `file:${stats.dev}:${stats.ino}`;
}

/** Looks at `path` without opening it. Never throws for a bad path: the kind says what it is. */
export async function probeMember(path: string): Promise<MemberProbe> {
  const base = { path, sizeBytes: 0, backing: undefined, errno: undefined, device: undefined, readOnlyDevice: false };
  let stats: Stats;
  try {
    stats = await stat(path);
  } catch (error) {
    const errno = (error as NodeJS.ErrnoException).code ?? 'EIO';
    if (errno === 'ENOENT') return { ...base, kind: 'missing', identity: await missingIdentity(path) };
    return { ...base, kind: 'bad-path', identity: `bad:${resolve(path)}`, errno };
  }
  const device = { major: devMajor(stats.rdev), minor: devMinor(stats.rdev) };
  if (stats.isFile()) return { ...base, kind: 'file', sizeBytes: stats.size, identity: fileIdentity(stats) };
  if (stats.isBlockDevice()) {
    const backing = await loopBacking(stats);
    // The kernel lets a read-only device be opened for writing and fails the writes: look first.
    const readOnlyDevice = (await readFile(`${sysfsDir(stats)}/ro`, 'utf8').catch(() => '0')).trim() === '1';
    return {
      ...base, kind: 'block', sizeBytes: await blockDeviceSizeBytes(stats, path), device, backing, readOnlyDevice,
      identity: backing?.identity ?? `blk:${device.major}:${device.minor}`,
    };
  }
  const other = `other:${stats.dev}:${stats.ino}`;
  if (stats.isDirectory()) return { ...base, kind: 'directory', identity: other };
  if (stats.isFIFO()) return { ...base, kind: 'fifo', identity: other };
  if (stats.isCharacterDevice()) return { ...base, kind: 'char-device', identity: other, device };
  return { ...base, kind: 'socket', identity: other };
}

/** A path that does not exist yet, by where it would be: "x.img" and "./x.img" are one path. */
async function missingIdentity(path: string): Promise<string> {
  const dir = await realpath(dirname(resolve(path))).catch(() => dirname(resolve(path)));
  return `missing:${dir}/${basename(path)}`;
}

/**
 * The one table from what a path names to the error a command gives. `missing` is an error
 * unless the command may create the file or leave the member out.
 */
export function memberPathError(probe: MemberProbe, options: { missingHint?: string } = {}): JraidError | undefined {
  const path = probe.path;
  switch (probe.kind) {
    case 'file':
    case 'block':
      return undefined;
    case 'missing':
      return new JraidError('E_MEMBER_MISSING', `${path} does not exist`, { path, hint: options.missingHint ?? 'check the path' });
    case 'directory':
      return new JraidError('E_MEMBER_IS_DIRECTORY', `${path} is a directory, not a member`, { path, hint: 'name an image file or a block device' });
    case 'fifo':
      return new JraidError('E_MEMBER_NOT_BLOCK_OR_FILE', `${path} is a FIFO (named pipe), not a member`, { path, hint: 'name an image file or a block device' });
    case 'char-device':
      return new JraidError('E_MEMBER_NOT_BLOCK_OR_FILE', `${path} is a character device (${probe.device!.major}:${probe.device!.minor}), not a block device or image file`, {
        path, hint: 'name an image file or a block device',
      });
    case 'socket':
      return new JraidError('E_MEMBER_NOT_BLOCK_OR_FILE', `${path} is a socket, not a member`, { path, hint: 'name an image file or a block device' });
    case 'bad-path':
      return pathErrnoError(path, probe.errno!, 'reach');
  }
}

/** Throws the member-path error when `probe` is not an image file or a block device. */
export function requireMemberPath(probe: MemberProbe, options: { missingHint?: string } = {}): void {
  const problem = memberPathError(probe, options);
  if (problem) throw problem;
}

/** An errno from stat or open on a member path, as the error a command prints. */
export function pathErrnoError(path: string, errno: string, action: 'reach' | 'read' | 'write'): JraidError {
  switch (errno) {
    case 'ENOENT':
      return new JraidError('E_MEMBER_MISSING', `${path} does not exist`, { path, hint: 'check the path' });
    case 'ELOOP':
      return new JraidError('E_MEMBER_BAD_PATH', `${path}: too many levels of symbolic links (a symlink loop?)`, { path, hint: 'check where the links point (readlink -f)' });
    case 'ENOTDIR':
      return new JraidError('E_MEMBER_BAD_PATH', `${path}: a component of the path is not a directory (the path passes through a file)`, { path, hint: 'check the path' });
    case 'ENAMETOOLONG':
      return new JraidError('E_MEMBER_BAD_PATH', `${path}: the path is too long`, { path, hint: 'check the path' });
    case 'EISDIR':
      return new JraidError('E_MEMBER_IS_DIRECTORY', `${path} is a directory, not a member`, { path, hint: 'name an image file or a block device' });
    case 'EACCES':
    case 'EPERM':
      return new JraidError('E_PERMISSION', action === 'reach'
        ? `${path}: permission denied (a directory on the way may not be searched)`
        : `cannot open ${path} for ${action === 'write' ? 'writing' : 'reading'}: permission denied`, {
        path, hint: action === 'write' ? 'run as a user who may write it (often root), or use a read-only command (detail, examine, read, scrub)' : 'run as a user who may read it (often root), or fix its mode',
      });
    case 'EROFS':
      return new JraidError('E_PERMISSION', `${path} is read-only (a read-only device or file system): it cannot be opened for writing`, {
        path, hint: 'read-only commands (detail, examine, read, scrub without --repair) work on it; writing needs it writable',
      });
    case 'ENXIO':
    case 'ENODEV':
    case 'ENOMEDIUM':
      return new JraidError('E_MEMBER_MISSING', `${path} names no device (an unattached loop device, or removed media)`, { path, hint: 'attach the device (losetup) or check the path' });
    case 'EMFILE':
    case 'ENFILE':
      return new JraidError('E_IO', `cannot open ${path}: too many open files`, { path, hint: 'raise the limit (ulimit -n) or close other programs' });
    default:
      return new JraidError('E_IO', `cannot ${action === 'reach' ? 'look at' : 'open'} ${path}: ${errno}`, { path, hint: 'check the path and the device' });
  }
}
