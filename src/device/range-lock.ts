// Exclusive byte-range locks over a member, the way seed 004 locks parity without messages
// between nodes: lock and read as one step, write and unlock as one step. The implementation is
// an OFD lock (fcntl F_OFD_SETLK through fs-native-extensions): it belongs to the open file
// description, so it conflicts with every other description of the same file or block device
// (another process, another host through a file system whose byte-range locks are coherent:
// NFSv4, GFS2, OCFS2) and the kernel drops it when its holder dies. Two locks taken through one
// description never conflict: a node keeps its own ranges apart with its in-process stripe
// locks.
//
// Waiting polls tryLock with a growing pause (up to RANGE_LOCK_POLL_MS_MAX) instead of a
// blocking F_OFD_SETLKW: a blocking wait would hold one of libuv's few pool threads, which the
// member reads and writes need too. Polling is not fair; a waiter gives up after timeoutMs.

import fsx from 'fs-native-extensions';
import { performance } from 'node:perf_hooks';
import type { BlockDevice } from './block-device.js';
import { DeviceIoError } from './block-device.js';

/** The longest pause between two tries of a contended lock. */
export const RANGE_LOCK_POLL_MS_MAX = 4;
/** A waiter gives up (EIO) after this long: a holder that lives but never releases is a bug or a hung node. */
export const RANGE_LOCK_TIMEOUT_MS_DEFAULT = 60_000;

export interface ByteRange {
  offsetBytes: number;
  lengthBytes: number;
}

/** Counters of one lock's use: how often a lock had to wait, and for how long in all. */
export interface RangeLockStats {
  acquired: number;
  contended: number;
  waitMs: number;
}

/** Exclusive byte-range locks over one member. */
export interface RangeLock {
  readonly path: string;
  readonly stats: RangeLockStats;
  /** Takes the lock over `range` now, or returns false. */
  tryLock(range: ByteRange): boolean;
  /** Takes the lock over `range`, waiting while another holder has it. */
  lock(range: ByteRange): Promise<void>;
  unlock(range: ByteRange): void;
  /** Lock and read as one step: the lock over the bytes read, then the read; no lock is kept if the read fails. */
  lockRead(device: BlockDevice, buf: Uint8Array, offsetBytes: number): Promise<void>;
  /** Write and unlock as one step: the write, then the lock over those bytes is released (also when the write fails). */
  writeUnlock(device: BlockDevice, buf: Uint8Array, offsetBytes: number): Promise<void>;
}

export class OfdRangeLock implements RangeLock {
  readonly path: string;
  readonly stats: RangeLockStats = { acquired: 0, contended: 0, waitMs: 0 };
  private readonly fd: number;
  private readonly timeoutMs: number;

  /** `fd`: a descriptor of the member opened for writing (an exclusive OFD lock needs one). */
  constructor(fd: number, path: string, options: { timeoutMs?: number } = {}) {
    this.fd = fd;
    this.path = path;
    this.timeoutMs = options.timeoutMs ?? RANGE_LOCK_TIMEOUT_MS_DEFAULT;
  }

  tryLock(range: ByteRange): boolean {
    const taken = fsx.tryLock(this.fd, range.offsetBytes, range.lengthBytes);
    if (taken) this.stats.acquired++;
    return taken;
  }

  async lock(range: ByteRange): Promise<void> {
    if (this.tryLock(range)) return;
    const startedMs = performance.now();
    this.stats.contended++;
    try {
      for (let pauseMs = 0.25; ; pauseMs = Math.min(pauseMs * 2, RANGE_LOCK_POLL_MS_MAX)) {
        await pause(pauseMs);
        if (this.tryLock(range)) return;
        if (performance.now() - startedMs > this.timeoutMs) {
          throw new DeviceIoError('EIO', this.path, range.offsetBytes,
            `EIO: ${this.path}: the byte-range lock over ${range.offsetBytes}+${range.lengthBytes} was not free within ${this.timeoutMs} ms (a hung node holds it?)`);
        }
      }
    } finally {
      this.stats.waitMs += performance.now() - startedMs;
    }
  }

  unlock(range: ByteRange): void {
    fsx.unlock(this.fd, range.offsetBytes, range.lengthBytes);
  }

  async lockRead(device: BlockDevice, buf: Uint8Array, offsetBytes: number): Promise<void> {
    const range = { offsetBytes, lengthBytes: buf.length };
    await this.lock(range);
    try {
      await device.read(buf, offsetBytes);
    } catch (error) {
      this.unlock(range);
      throw error;
    }
  }

  async writeUnlock(device: BlockDevice, buf: Uint8Array, offsetBytes: number): Promise<void> {
    try {
      await device.write(buf, offsetBytes);
    } finally {
      this.unlock({ offsetBytes, lengthBytes: buf.length });
    }
  }
}

/** Sub-millisecond pauses yield to the event loop only; longer ones sleep. */
function pause(ms: number): Promise<void> {
  return ms < 1 ? new Promise((done) => setImmediate(done)) : new Promise((done) => setTimeout(done, ms));
}
