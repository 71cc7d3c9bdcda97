// Records every completed write and flush, in one log shared by all members, so that a crash
// can be simulated at any point afterwards (the crash-state explorer). Forwards everything.

import type { BlockDevice } from './block-device.js';

export type RecordedOp =
  /** durable: written with writeDurable, so on the medium once it completed (other writes are not). */
  | { kind: 'write'; device: number; offsetBytes: number; data: Buffer; durable: boolean }
  /**
   * Logged when the flush completed; it made durable the device's writes logged before
   * `coversBefore`, the log's length when the flush began (a write that completed while it ran
   * may or may not be durable).
   */
  | { kind: 'flush'; device: number; coversBefore: number };

export class RecordingDevice implements BlockDevice {
  readonly inner: BlockDevice;
  readonly id: number;
  readonly log: RecordedOp[];

  constructor(inner: BlockDevice, id: number, log: RecordedOp[]) {
    this.inner = inner;
    this.id = id;
    this.log = log;
  }

  get path(): string { return this.inner.path; }
  get sizeBytes(): number { return this.inner.sizeBytes; }

  read(buf: Uint8Array, offsetBytes: number): Promise<void> {
    return this.inner.read(buf, offsetBytes);
  }

  async write(buf: Uint8Array, offsetBytes: number): Promise<void> {
    await this.inner.write(buf, offsetBytes);
    this.log.push({ kind: 'write', device: this.id, offsetBytes, data: Buffer.from(buf), durable: false });
  }

  async writeDurable(buf: Uint8Array, offsetBytes: number): Promise<void> {
    await this.inner.writeDurable(buf, offsetBytes);
    this.log.push({ kind: 'write', device: this.id, offsetBytes, data: Buffer.from(buf), durable: true });
  }

  async flush(): Promise<void> {
    const coversBefore = this.log.length;
    await this.inner.flush();
    this.log.push({ kind: 'flush', device: this.id, coversBefore });
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
