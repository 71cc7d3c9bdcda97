// File and block-device backend. fstat reports size 0 for a block device, so its size
// comes from sysfs (/sys/dev/block/MAJ:MIN/size, in 512-byte sectors), as lsblk reads it.

import { open, readFile, stat, type FileHandle } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { SECTOR_SIZE_BYTES } from '../units.js';
import { checkRange, DeviceIoError, type BlockDevice } from './block-device.js';

export type MemberKind = 'file' | 'block' | 'directory' | 'other' | 'missing';

export interface MemberProbe {
  path: string;
  kind: MemberKind;
  sizeBytes: number;
  /** Identity of the underlying object: two paths naming one file or device compare equal. */
  identity: string;
}

function devMajor(rdev: number): number {
  return ((rdev >> 8) & 0xfff) | (Math.floor(rdev / 2 ** 32) & ~0xfff);
}

function devMinor(rdev: number): number {
  return (rdev & 0xff) | ((rdev >> 12) & ~0xff & 0xfffff);
}

export async function blockDeviceSizeBytes(stats: Stats, path: string): Promise<number> {
  const sysfs = `/sys/dev/block/${devMajor(stats.rdev)}:${devMinor(stats.rdev)}/size`;
  try {
    const sectors = Number((await readFile(sysfs, 'utf8')).trim());
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

export async function probeMember(path: string): Promise<MemberProbe> {
  let stats: Stats;
  try {
    stats = await stat(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { path, kind: 'missing', sizeBytes: 0, identity: `missing:${path}` };
    throw error;
  }
  if (stats.isDirectory()) return { path, kind: 'directory', sizeBytes: 0, identity: `dir:${stats.dev}:${stats.ino}` };
  if (stats.isBlockDevice()) {
    return { path, kind: 'block', sizeBytes: await blockDeviceSizeBytes(stats, path), identity: `blk:${stats.rdev}` };
  }
  if (stats.isFile()) return { path, kind: 'file', sizeBytes: stats.size, identity: `file:${stats.dev}:${stats.ino}` };
  return { path, kind: 'other', sizeBytes: 0, identity: `other:${stats.dev}:${stats.ino}` };
}

export class FileDevice implements BlockDevice {
  readonly path: string;
  readonly sizeBytes: number;
  readonly handle: FileHandle;
  readonly kind: 'file' | 'block';

  private constructor(path: string, handle: FileHandle, sizeBytes: number, kind: 'file' | 'block') {
    this.path = path;
    this.handle = handle;
    this.sizeBytes = sizeBytes;
    this.kind = kind;
  }

  get fd(): number {
    return this.handle.fd;
  }

  /** Opens an existing file or block device. `createSizeBytes` creates a sparse file of that size when missing. */
  static async open(path: string, options: { readOnly?: boolean; createSizeBytes?: number } = {}): Promise<FileDevice> {
    if (options.createSizeBytes !== undefined) {
      const created = await open(path, 'wx', 0o600).catch((error: NodeJS.ErrnoException) => {
        if (error.code === 'EEXIST') return undefined;
        throw error;
      });
      if (created) {
        await created.truncate(options.createSizeBytes);
        await created.close();
      }
    }
    const handle = await open(path, options.readOnly ? 'r' : 'r+');
    try {
      const stats = await handle.stat();
      if (stats.isBlockDevice()) return new FileDevice(path, handle, await blockDeviceSizeBytes(stats, path), 'block');
      if (!stats.isFile()) {
        throw Object.assign(new Error(`${path} is neither a regular file nor a block device`), { code: stats.isDirectory() ? 'EISDIR' : 'ENOTBLK' });
      }
      return new FileDevice(path, handle, stats.size, 'file');
    } catch (error) {
      await handle.close();
      throw error;
    }
  }

  async read(buf: Uint8Array, offsetBytes: number): Promise<void> {
    checkRange(this, buf, offsetBytes);
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
    let done = 0;
    while (done < buf.length) {
      const { bytesWritten } = await this.handle.write(buf, done, buf.length - done, offsetBytes + done).catch((error) => {
        throw new DeviceIoError(error.code ?? 'EIO', this.path, offsetBytes + done, `${error.code ?? 'EIO'}: write to ${this.path} at byte ${offsetBytes + done} failed: ${error.message}`);
      });
      if (bytesWritten === 0) throw new DeviceIoError('EIO', this.path, offsetBytes + done, `short write to ${this.path}`);
      done += bytesWritten;
    }
  }

  async flush(): Promise<void> {
    await this.handle.datasync().catch((error) => {
      throw new DeviceIoError(error.code ?? 'EIO', this.path, 0, `fdatasync of ${this.path} failed: ${error.message}`);
    });
  }

  async close(): Promise<void> {
    await this.handle.close();
  }
}
