import { checkRange, type BlockDevice } from './block-device.js';

/** A device in memory: the fast backend for tests and crash-state exploration. */
export class MemoryDevice implements BlockDevice {
  readonly path: string;
  readonly sizeBytes: number;
  readonly bytes: Buffer;
  closed = false;

  constructor(sizeBytes: number, path = 'mem', bytes?: Buffer) {
    this.path = path;
    this.sizeBytes = sizeBytes;
    this.bytes = bytes ?? Buffer.alloc(sizeBytes);
  }

  async read(buf: Uint8Array, offsetBytes: number): Promise<void> {
    checkRange(this, buf, offsetBytes);
    buf.set(this.bytes.subarray(offsetBytes, offsetBytes + buf.length));
  }

  async write(buf: Uint8Array, offsetBytes: number): Promise<void> {
    checkRange(this, buf, offsetBytes);
    this.bytes.set(buf, offsetBytes);
  }

  /** Memory has no cache to lose: as write. */
  writeDurable(buf: Uint8Array, offsetBytes: number): Promise<void> {
    return this.write(buf, offsetBytes);
  }

  async flush(): Promise<void> {}

  async close(): Promise<void> {
    this.closed = true;
  }
}
