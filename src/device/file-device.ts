// File and block-device backend. Paths are looked at first (member-path.ts: a FIFO is never
// opened); a writer opens a block device with O_EXCL, so a mounted device, or one another
// program holds exclusively, is refused instead of written under it. A second descriptor on
// the same open file, with O_DSYNC, carries the durable writes (the journal's records): each
// makes only its own range durable, where fdatasync would write back everything dirty.

import { constants, openSync, closeSync, readSync, writeSync } from 'node:fs';
import { open, readFile, type FileHandle } from 'node:fs/promises';
import { JraidError } from '../errors.js';
import { checkRange, DeviceIoError, type BlockDevice } from './block-device.js';
import { describeHolders } from './lock.js';
import { MemberRing } from './member-ring.js';
import { blockDeviceSizeBytes, pathErrnoError, probeMember, requireMemberPath, type MemberProbe } from './member-path.js';

export { probeMember, type MemberProbe } from './member-path.js';

export interface OpenOptions {
  readOnly?: boolean;
  /** A writer's open: block devices get O_EXCL. */
  exclusive?: boolean;
  /** Creates a new sparse file of this size (the path must not exist). */
  createSizeBytes?: number;
}

/**
 * How reads and writes reach a member (issue 11; bench member-io measures each): `pool`, libuv's
 * thread pool (FileHandle), a round trip per transfer; `ring`, a worker thread per member
 * (member-ring.ts); `sync`, pread/pwrite on the calling thread (an experiment: a read that misses
 * the page cache stalls everything). The daemon asks for `ring`; commands use `pool` (a worker's
 * start-up costs more than a command's few transfers), and so does any read-only open (a probe of
 * a superblock). JRAID_MEMBER_IO overrides both.
 */
export type MemberIoMode = 'pool' | 'ring' | 'sync';
const MEMBER_IO_MODES: readonly MemberIoMode[] = ['pool', 'ring', 'sync'];
const MEMBER_IO_OVERRIDE = MEMBER_IO_MODES.find((mode) => mode === process.env.JRAID_MEMBER_IO);
let memberIoMode: MemberIoMode = 'pool';

/** Sets how members opened from now on are read and written (JRAID_MEMBER_IO, when set, wins). */
export function setMemberIoMode(mode: MemberIoMode): void {
  memberIoMode = mode;
}

function effectiveMemberIoMode(): MemberIoMode {
  return MEMBER_IO_OVERRIDE ?? memberIoMode;
}

export class FileDevice implements BlockDevice {
  readonly path: string;
  readonly sizeBytes: number;
  readonly handle: FileHandle;
  readonly kind: 'file' | 'block';
  readonly probe: MemberProbe;
  /** Descriptors opened only to hold locks for this member (its loop backing file): closed with it. */
  readonly lockDescriptors: number[] = [];
  /** The O_DSYNC descriptor for writeDurable, opened on first use. */
  private durableHandle: Promise<FileHandle> | undefined;
  /** How reads and writes reach this member, fixed when it was opened. */
  readonly ioMode: MemberIoMode;
  /** The member's ring (ioMode `ring`), started on first use. */
  private ring: MemberRing | undefined;

  private constructor(path: string, handle: FileHandle, sizeBytes: number, kind: 'file' | 'block', probe: MemberProbe, readOnly: boolean) {
    const mode = effectiveMemberIoMode();
    this.ioMode = mode === 'ring' && readOnly && !MEMBER_IO_OVERRIDE ? 'pool' : mode;
    this.path = path;
    this.handle = handle;
    this.sizeBytes = sizeBytes;
    this.kind = kind;
    this.probe = probe;
  }

  get fd(): number {
    return this.handle.fd;
  }

  /** Opens an existing file or block device (or creates a sparse file, see OpenOptions). */
  static async open(path: string, options: OpenOptions = {}): Promise<FileDevice> {
    if (options.createSizeBytes !== undefined) {
      const created = await open(path, 'wx', 0o600).catch((error: NodeJS.ErrnoException) => {
        if (error.code === 'EEXIST') throw new JraidError('E_REFUSED', `${path} appeared while it was being created`, { path, hint: 'run the command again' });
        throw pathErrnoError(path, error.code ?? 'EIO', 'write');
      });
      await created.truncate(options.createSizeBytes);
      await created.close();
    }
    const probe = await probeMember(path);
    requireMemberPath(probe);
    if (!options.readOnly && probe.readOnlyDevice) throw pathErrnoError(path, 'EROFS', 'write');
    let flags = options.readOnly ? constants.O_RDONLY : constants.O_RDWR;
    if (options.exclusive && probe.kind === 'block') flags |= constants.O_EXCL;
    const handle = await open(path, flags).catch(async (error: NodeJS.ErrnoException) => {
      if (error.code === 'EBUSY') throw await busyError(path, probe);
      throw pathErrnoError(path, error.code ?? 'EIO', options.readOnly ? 'read' : 'write');
    });
    try {
      const stats = await handle.stat();
      // The path changed between the look and the open: refuse rather than guess.
      if (stats.isBlockDevice() !== (probe.kind === 'block') || (!stats.isBlockDevice() && !stats.isFile())) {
        throw new JraidError('E_MEMBER_NOT_BLOCK_OR_FILE', `${path} changed while it was being opened`, { path, hint: 'run the command again' });
      }
      const readOnly = options.readOnly === true;
      if (stats.isBlockDevice()) return new FileDevice(path, handle, await blockDeviceSizeBytes(stats, path), 'block', probe, readOnly);
      return new FileDevice(path, handle, stats.size, 'file', probe, readOnly);
    } catch (error) {
      await handle.close();
      throw error;
    }
  }

  async read(buf: Uint8Array, offsetBytes: number): Promise<void> {
    checkRange(this, buf, offsetBytes);
    if (this.ioMode === 'ring') return this.memberRing().read(buf, offsetBytes);
    if (this.ioMode === 'sync') return this.transferSync('read', buf, offsetBytes);
    let done = 0;
    while (done < buf.length) {
      const { bytesRead } = await this.handle.read(buf, done, buf.length - done, offsetBytes + done).catch((error) => {
        throw new DeviceIoError(error.code ?? 'EIO', this.path, offsetBytes + done, `${error.code ?? 'EIO'}: read of ${this.path} at byte ${offsetBytes + done} failed: ${error.message}`);
      });
      if (bytesRead === 0) throw new DeviceIoError('EIO', this.path, offsetBytes + done, `short read of ${this.path} at byte ${offsetBytes + done}`);
      done += bytesRead;
    }
  }

  async write(buf: Uint8Array, offsetBytes: number): Promise<void> {
    checkRange(this, buf, offsetBytes);
    if (this.ioMode === 'ring') return this.memberRing().write(buf, offsetBytes);
    if (this.ioMode === 'sync') return this.transferSync('write', buf, offsetBytes);
    let done = 0;
    while (done < buf.length) {
      const { bytesWritten } = await this.handle.write(buf, done, buf.length - done, offsetBytes + done).catch((error) => {
        throw new DeviceIoError(error.code ?? 'EIO', this.path, offsetBytes + done, `${error.code ?? 'EIO'}: write to ${this.path} at byte ${offsetBytes + done} failed: ${error.message}`);
      });
      if (bytesWritten === 0) throw new DeviceIoError('EIO', this.path, offsetBytes + done, `short write to ${this.path}`);
      done += bytesWritten;
    }
  }

  private memberRing(): MemberRing {
    this.ring ??= new MemberRing(this.handle.fd, this.path);
    return this.ring;
  }

  private transferSync(op: 'read' | 'write', buf: Uint8Array, offsetBytes: number): void {
    let done = 0;
    while (done < buf.length) {
      let moved: number;
      try {
        moved = op === 'read' ? readSync(this.handle.fd, buf, done, buf.length - done, offsetBytes + done) : writeSync(this.handle.fd, buf, done, buf.length - done, offsetBytes + done);
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code ?? 'EIO';
        throw new DeviceIoError(code, this.path, offsetBytes + done, `${code}: ${op} of ${this.path} at byte ${offsetBytes + done} failed: ${(error as Error).message}`);
      }
      if (moved === 0) throw new DeviceIoError('EIO', this.path, offsetBytes + done, `short ${op} of ${this.path} at byte ${offsetBytes + done}`);
      done += moved;
    }
  }

  async writeDurable(buf: Uint8Array, offsetBytes: number): Promise<void> {
    checkRange(this, buf, offsetBytes);
    const handle = await this.openDurable();
    let done = 0;
    while (done < buf.length) {
      const { bytesWritten } = await handle.write(buf, done, buf.length - done, offsetBytes + done).catch((error) => {
        throw new DeviceIoError(error.code ?? 'EIO', this.path, offsetBytes + done, `${error.code ?? 'EIO'}: durable write to ${this.path} at byte ${offsetBytes + done} failed: ${error.message}`);
      });
      if (bytesWritten === 0) throw new DeviceIoError('EIO', this.path, offsetBytes + done, `short write to ${this.path}`);
      done += bytesWritten;
    }
  }

  /**
   * Reopens the file this device has open (through /proc/self/fd, so the same inode even if the
   * path changed since), read-write with O_DSYNC and without O_EXCL (the first descriptor holds
   * a block device exclusively for this process already).
   */
  private openDurable(): Promise<FileHandle> {
    this.durableHandle ??= open(`/proc/self/fd/${this.handle.fd}`, constants.O_RDWR | constants.O_DSYNC).catch((error: NodeJS.ErrnoException) => {
      this.durableHandle = undefined;
      throw new DeviceIoError(error.code ?? 'EIO', this.path, 0, `${error.code ?? 'EIO'}: opening ${this.path} for durable writes failed: ${error.message}`);
    });
    return this.durableHandle;
  }

  /** The O_DSYNC descriptor's number, once a durable write opened it (tests check its flags). */
  async durableFd(): Promise<number | undefined> {
    return this.durableHandle ? (await this.durableHandle).fd : undefined;
  }

  async flush(): Promise<void> {
    await this.handle.datasync().catch((error) => {
      throw new DeviceIoError(error.code ?? 'EIO', this.path, 0, `fdatasync of ${this.path} failed: ${error.message}`);
    });
  }

  async close(): Promise<void> {
    for (const fd of this.lockDescriptors.splice(0)) {
      try { closeSync(fd); } catch { /* already closed */ }
    }
    const ring = this.ring;
    this.ring = undefined;
    await ring?.close(); // settles what is in flight before the descriptor it uses is closed
    const durable = this.durableHandle;
    this.durableHandle = undefined;
    if (durable) await durable.then((handle) => handle.close(), () => {});
    await this.handle.close();
  }
}

/** EBUSY on an exclusive open: who holds the device (a jraid process, a mount, the kernel). */
async function busyError(path: string, probe: MemberProbe): Promise<JraidError> {
  const holders = await describeHolders(path);
  if (holders.length > 0) {
    return new JraidError('E_ARRAY_LOCKED', `${path} is in use by ${holders.join(', ')}`, {
      path, hint: 'wait for it to finish, or use the daemon that serves this array (jraid stop to end it)', details: { holders },
    });
  }
  const mounts = probe.device ? await mountPoints(probe.device) : [];
  const what = mounts.length > 0 ? `mounted on ${mounts.join(', ')}` : 'held exclusively by the kernel (a mount, md, device-mapper, swap)';
  return new JraidError('E_MEMBER_BUSY', `${path} is in use: ${what}; jraid will not write under it`, {
    path, hint: mounts.length > 0 ? 'unmount it first' : 'stop what holds it (see lsblk and /sys/block/*/holders)',
  });
}

async function mountPoints(device: { major: number; minor: number }): Promise<string[]> {
  const text = await readFile('/proc/self/mountinfo', 'utf8').catch(() => '');
  // Fields: id parent MAJ:MIN root mount-point ...
  return text.split('\n').map((line) => line.split(' ')).filter((fields) => fields[2] === `${device.major}:${device.minor}`).map((fields) => fields[4]!);
}

/** Opens a descriptor on `path` only to hold a lock; the caller closes it. Undefined when it cannot be opened. */
export function openForLock(path: string, write: boolean): number | undefined {
  try {
    return openSync(path, write ? constants.O_RDWR : constants.O_RDONLY);
  } catch {
    return undefined;
  }
}
