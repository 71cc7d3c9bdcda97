// BlockDevice: the only door to storage. Backends are small; wrappers forward what they
// do not change. Reads and writes are whole: a short transfer is an error, never a result.

import { assert } from '../units.js';

export interface BlockDevice {
  /** A name for messages: the path for files and block devices. */
  readonly path: string;
  readonly sizeBytes: number;
  read(buf: Uint8Array, offsetBytes: number): Promise<void>;
  write(buf: Uint8Array, offsetBytes: number): Promise<void>;
  /**
   * Writes `buf` and makes that write alone durable before resolving (a descriptor opened with
   * O_DSYNC: write-back of this range, then a device cache flush). Other writes completed on the
   * device are not made durable by it: that is flush's job. The journal's record barrier.
   */
  writeDurable(buf: Uint8Array, offsetBytes: number): Promise<void>;
  /** Makes every completed write durable (fdatasync). */
  flush(): Promise<void>;
  close(): Promise<void>;
}

/** An I/O error from a device, carrying errno-like code so callers can tell EIO apart. */
export class DeviceIoError extends Error {
  readonly code: string;
  readonly path: string;
  readonly offsetBytes: number;
  constructor(code: string, path: string, offsetBytes: number, message?: string) {
    super(message ?? `${code} on ${path} at byte ${offsetBytes}`);
    this.name = 'DeviceIoError';
    this.code = code;
    this.path = path;
    this.offsetBytes = offsetBytes;
  }
}

export function checkRange(device: BlockDevice, buf: Uint8Array, offsetBytes: number): void {
  assert(Number.isSafeInteger(offsetBytes) && offsetBytes >= 0 && offsetBytes + buf.length <= device.sizeBytes,
    `I/O of ${buf.length} bytes at ${offsetBytes} inside ${device.path} (${device.sizeBytes} bytes)`);
}
