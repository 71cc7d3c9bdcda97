// Fault injection: forwards every call, failing chosen or random reads and writes with EIO,
// adding latency, or tearing a write. Seeded, so a failing run replays.

import { Rng } from '../rng.js';
import { DeviceIoError, type BlockDevice } from './block-device.js';

export interface FaultPlan {
  seed?: number;
  /** Probability that any one read (write) fails with EIO. */
  readErrorRate?: number;
  writeErrorRate?: number;
  /** Byte ranges [start, end) whose reads fail with EIO (latent sector errors). */
  badReadRanges?: Array<[number, number]>;
  /** Every write fails once this many writes have succeeded. */
  failWritesAfter?: number;
  /** Added before each operation completes. */
  latencyMs?: number;
}

export class FaultDevice implements BlockDevice {
  readonly inner: BlockDevice;
  readonly plan: FaultPlan;
  private readonly rng: Rng;
  writesDone = 0;
  readErrors = 0;
  writeErrors = 0;
  /** When true every operation fails: the member has vanished. */
  dead = false;

  constructor(inner: BlockDevice, plan: FaultPlan = {}) {
    this.inner = inner;
    this.plan = { ...plan, badReadRanges: [...(plan.badReadRanges ?? [])] };
    this.rng = new Rng(plan.seed ?? 1);
  }

  get path(): string { return this.inner.path; }
  get sizeBytes(): number { return this.inner.sizeBytes; }

  addBadRange(startBytes: number, endBytes: number): void {
    this.plan.badReadRanges!.push([startBytes, endBytes]);
  }

  clearBadRanges(): void {
    this.plan.badReadRanges!.length = 0;
  }

  private async delay(): Promise<void> {
    if (this.plan.latencyMs) await new Promise((resolve) => setTimeout(resolve, this.plan.latencyMs));
  }

  async read(buf: Uint8Array, offsetBytes: number): Promise<void> {
    await this.delay();
    const end = offsetBytes + buf.length;
    const hitsBad = this.plan.badReadRanges!.some(([start, stop]) => offsetBytes < stop && start < end);
    if (this.dead || hitsBad || (this.plan.readErrorRate && this.rng.next() < this.plan.readErrorRate)) {
      this.readErrors++;
      throw new DeviceIoError('EIO', this.path, offsetBytes, `EIO (injected): read of ${this.path} at byte ${offsetBytes}`);
    }
    return this.inner.read(buf, offsetBytes);
  }

  write(buf: Uint8Array, offsetBytes: number): Promise<void> {
    return this.faultyWrite(buf, offsetBytes, (b, at) => this.inner.write(b, at));
  }

  /** Faults as write (a journal record write can fail like any other). */
  writeDurable(buf: Uint8Array, offsetBytes: number): Promise<void> {
    return this.faultyWrite(buf, offsetBytes, (b, at) => this.inner.writeDurable(b, at));
  }

  private async faultyWrite(buf: Uint8Array, offsetBytes: number, write: (buf: Uint8Array, offsetBytes: number) => Promise<void>): Promise<void> {
    await this.delay();
    const failByCount = this.plan.failWritesAfter !== undefined && this.writesDone >= this.plan.failWritesAfter;
    if (this.dead || failByCount || (this.plan.writeErrorRate && this.rng.next() < this.plan.writeErrorRate)) {
      this.writeErrors++;
      throw new DeviceIoError('EIO', this.path, offsetBytes, `EIO (injected): write to ${this.path} at byte ${offsetBytes}`);
    }
    await write(buf, offsetBytes);
    this.writesDone++;
    // A successful write over a bad range remaps it, as a disk reallocates a sector.
    const end = offsetBytes + buf.length;
    this.plan.badReadRanges = this.plan.badReadRanges!.filter(([start, stop]) => !(offsetBytes <= start && stop <= end));
  }

  async flush(): Promise<void> {
    if (this.dead) throw new DeviceIoError('EIO', this.path, 0, `EIO (injected): flush of ${this.path}`);
    return this.inner.flush();
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

