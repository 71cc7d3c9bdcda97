// The write fence of a daemon that has a standby (README, "Standby and takeover"). A primary
// writes to its members only while it holds the lease: a file in the run directory naming its
// pid, whose mtime it refreshes every LEASE_RENEW_MS. A write that finds the lease older than
// LEASE_MS renews it first, and a renewal that finds another pid named (a standby claimed the
// array from a primary that stopped renewing: SIGSTOP, a hung host) fences this daemon for
// good. So does a superblock on a member with more events than this daemon knows of (the
// standby commits twice at takeover): that check runs before every write to a member's
// superblock or journal region, so the commit path itself notices a takeover. A fenced daemon
// writes nothing more: every member write and flush fails with EIO, which fails its pending
// requests, and it exits.
//
// Residual window, stated: a write this daemon had already handed to the kernel when it was
// paused can still land after it resumes. Closing that needs the storage to refuse writes
// (SCSI persistent reservations), which files and loop devices cannot.

import { readFile, stat, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { DeviceIoError, type BlockDevice } from '../device/block-device.js';
import { SUPERBLOCK_SIZE_BYTES } from '../format/layout.js';
import { decodeSuperblock } from '../format/superblock.js';
import { removeRunFileIf, replaceRunFile, runDir } from './registry.js';

/** How often the primary refreshes its lease. */
export const LEASE_RENEW_MS = 200;
/** A primary writes only within this long of its last successful renewal. */
export const LEASE_MS = 1000;
/** A standby claims the array from a live primary whose lease is older than this (paused). */
export const LEASE_STALE_MS = 3000;

export interface LeaseRecord {
  pid: number;
  /** Set by a standby's claim: the pid it took the array from. */
  claimedFrom?: number;
}

export function leasePath(uuid: string): string {
  return join(runDir(), `${uuid}.lease`);
}

export async function readLease(uuid: string): Promise<{ record: LeaseRecord; mtimeMs: number } | undefined> {
  const path = leasePath(uuid);
  try {
    const [text, stats] = await Promise.all([readFile(path, 'utf8'), stat(path)]);
    return { record: JSON.parse(text) as LeaseRecord, mtimeMs: stats.mtimeMs };
  } catch {
    return undefined;
  }
}

/** Writes the lease naming `record.pid`, atomically (a rename: a reader sees the old or the new). */
export async function writeLease(uuid: string, record: LeaseRecord): Promise<void> {
  await replaceRunFile(leasePath(uuid), `${JSON.stringify(record)}\n`);
}

/** Removes the lease if it still names `pid` (a standby's claim since then stays). */
export async function removeOwnLease(uuid: string, pid: number): Promise<void> {
  await removeRunFileIf(leasePath(uuid), (text) => (JSON.parse(text) as LeaseRecord).pid === pid);
}

export class Fence {
  private uuid = '';
  private readonly onFenced: (reason: string) => void;
  private fencedReason: string | undefined;
  /** performance.now() until which writes may go without a renewal; Infinity before the lease starts. */
  private leaseUntilMs = Number.POSITIVE_INFINITY;
  private renewing: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** The events this daemon's array knows of, and where its metadata ends; set once it serves. */
  private knownEvents: (() => number) | undefined;
  private metadataEndBytes = 0;
  private firstDevice: BlockDevice | undefined;

  constructor(onFenced: (reason: string) => void) {
    this.onFenced = onFenced;
  }

  get fenced(): boolean {
    return this.fencedReason !== undefined;
  }

  /** Every member device passes through this: its writes and flushes are gated. */
  wrap = (device: BlockDevice): BlockDevice => {
    this.firstDevice ??= device;
    return new FencedDevice(device, this);
  };

  /** From here on a newer superblock on any member fences this daemon. */
  watchEvents(knownEvents: () => number, metadataEndBytes: number): void {
    this.knownEvents = knownEvents;
    this.metadataEndBytes = metadataEndBytes;
  }

  /** Takes the lease (naming this process) and keeps it renewed. */
  async startLease(uuid: string): Promise<void> {
    this.uuid = uuid;
    await writeLease(this.uuid, { pid: process.pid });
    this.leaseUntilMs = performance.now() + LEASE_MS;
    this.timer = setInterval(() => void this.renew().catch(() => {}), LEASE_RENEW_MS);
  }

  stopLease(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** False when a write at `offsetBytes` (undefined: a flush) may go at once: the common case, kept synchronous. */
  needsCheck(offsetBytes: number | undefined): boolean {
    return this.fencedReason !== undefined || performance.now() >= this.leaseUntilMs || (offsetBytes !== undefined && offsetBytes < this.metadataEndBytes);
  }

  /** Called before a member write or flush that needsCheck. */
  async beforeWrite(device: BlockDevice, offsetBytes: number | undefined): Promise<void> {
    this.throwIfFenced(device, offsetBytes ?? 0);
    if (performance.now() >= this.leaseUntilMs) await this.renew();
    if (offsetBytes !== undefined && offsetBytes < this.metadataEndBytes) await this.checkEvents(device);
    this.throwIfFenced(device, offsetBytes ?? 0);
  }

  private throwIfFenced(device: BlockDevice, offsetBytes: number): void {
    if (this.fencedReason !== undefined) {
      throw new DeviceIoError('EIO', device.path, offsetBytes, `EIO: ${device.path}: this daemon is fenced (${this.fencedReason}); it writes nothing more`);
    }
  }

  private renew(): Promise<void> {
    this.renewing ??= (async () => {
      try {
        const startedMs = performance.now();
        if (this.fenced) return;
        const lease = await readLease(this.uuid);
        if (lease && lease.record.pid !== process.pid) {
          this.fence(`the lease names pid ${lease.record.pid}: a standby took the array over`);
          return;
        }
        if (lease) await utimes(leasePath(this.uuid), new Date(), new Date());
        else await writeLease(this.uuid, { pid: process.pid }); // removed (run directory cleaned): nobody claimed it
        if (this.firstDevice) await this.checkEvents(this.firstDevice);
        if (!this.fenced) this.leaseUntilMs = startedMs + LEASE_MS;
      } finally {
        this.renewing = undefined;
      }
    })();
    return this.renewing;
  }

  /** Reads the member's primary superblock copy: more events than ours means another daemon committed. */
  private async checkEvents(device: BlockDevice): Promise<void> {
    if (!this.knownEvents || this.fenced) return;
    const inner = (device as { inner?: BlockDevice }).inner ?? device;
    const bytes = Buffer.alloc(SUPERBLOCK_SIZE_BYTES);
    try {
      await inner.read(bytes, 0);
    } catch {
      return; // a read error is the engine's business, not a takeover
    }
    const decoded = decodeSuperblock(bytes);
    if (!decoded.ok) return; // torn by our own commit in flight: the next check sees it whole
    const known = this.knownEvents();
    if (decoded.value.events > known) this.fence(`${device.path} has events ${decoded.value.events}, this daemon knows ${known}: another daemon took the array over`);
  }

  private fence(reason: string): void {
    if (this.fencedReason !== undefined) return;
    this.fencedReason = reason;
    this.stopLease();
    this.onFenced(reason);
  }
}

/** Forwards everything; writes and flushes pass the fence first. */
class FencedDevice implements BlockDevice {
  readonly inner: BlockDevice;
  private readonly fence: Fence;

  constructor(inner: BlockDevice, fence: Fence) {
    this.inner = inner;
    this.fence = fence;
  }

  get path(): string { return this.inner.path; }
  get sizeBytes(): number { return this.inner.sizeBytes; }

  read(buf: Uint8Array, offsetBytes: number): Promise<void> {
    return this.inner.read(buf, offsetBytes);
  }

  write(buf: Uint8Array, offsetBytes: number): Promise<void> {
    if (!this.fence.needsCheck(offsetBytes)) return this.inner.write(buf, offsetBytes);
    return this.fence.beforeWrite(this, offsetBytes).then(() => this.inner.write(buf, offsetBytes));
  }

  writeDurable(buf: Uint8Array, offsetBytes: number): Promise<void> {
    if (!this.fence.needsCheck(offsetBytes)) return this.inner.writeDurable(buf, offsetBytes);
    return this.fence.beforeWrite(this, offsetBytes).then(() => this.inner.writeDurable(buf, offsetBytes));
  }

  flush(): Promise<void> {
    if (!this.fence.needsCheck(undefined)) return this.inner.flush();
    return this.fence.beforeWrite(this, undefined).then(() => this.inner.flush());
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
