// Copy-on-write over a frozen base image, in 4 KiB blocks: a crashed member costs only the
// blocks that differ from the base, so thousands of crash states fit in memory and time.

import { BLOCK_SIZE_BYTES } from '../units.js';
import { checkRange, type BlockDevice } from './block-device.js';

export class OverlayDevice implements BlockDevice {
  readonly path: string;
  readonly sizeBytes: number;
  private readonly base: Buffer;
  readonly blocks = new Map<number, Buffer>();

  constructor(base: Buffer, path: string) {
    this.base = base;
    this.path = path;
    this.sizeBytes = base.length;
  }

  private block(index: number): Buffer {
    return this.blocks.get(index) ?? this.base.subarray(index * BLOCK_SIZE_BYTES, (index + 1) * BLOCK_SIZE_BYTES);
  }

  async read(buf: Uint8Array, offsetBytes: number): Promise<void> {
    checkRange(this, buf, offsetBytes);
    this.readSync(buf, offsetBytes);
  }

  readSync(buf: Uint8Array, offsetBytes: number): void {
    forEachBlockPiece(offsetBytes, buf.length, (index, within, done, piece) => {
      buf.set(this.block(index).subarray(within, within + piece), done);
    });
  }

  async write(buf: Uint8Array, offsetBytes: number): Promise<void> {
    checkRange(this, buf, offsetBytes);
    this.writeSync(buf, offsetBytes);
  }

  /** Applies bytes at any offset (a torn write may end mid-block). */
  writeSync(buf: Uint8Array, offsetBytes: number): void {
    forEachBlockPiece(offsetBytes, buf.length, (index, within, done, piece) => {
      let block = this.blocks.get(index);
      if (!block) {
        block = Buffer.from(this.block(index));
        this.blocks.set(index, block);
      }
      block.set(buf.subarray(done, done + piece), within);
    });
  }

  writeDurable(buf: Uint8Array, offsetBytes: number): Promise<void> {
    return this.write(buf, offsetBytes);
  }

  async flush(): Promise<void> {}
  async close(): Promise<void> {}
}

/** Calls `fn` for each piece of [offset, offset + length) that lies within one block. */
function forEachBlockPiece(offsetBytes: number, lengthBytes: number, fn: (index: number, within: number, done: number, piece: number) => void): void {
  let done = 0;
  while (done < lengthBytes) {
    const at = offsetBytes + done;
    const index = Math.floor(at / BLOCK_SIZE_BYTES);
    const within = at - index * BLOCK_SIZE_BYTES;
    const piece = Math.min(lengthBytes - done, BLOCK_SIZE_BYTES - within);
    fn(index, within, done, piece);
    done += piece;
  }
}
